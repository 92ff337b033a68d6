"""Score a folder of new images with the current model.onnx as a Prefect flow run
(graft.pipeline.flows.batch_predict); needs onnxruntime, NumPy and Pillow for the scoring.

    python flows/predict.py IMAGES_DIR [MODEL] [OUT]

MODEL defaults to this project's published model.onnx (params.yaml's paths.export), OUT to
reports/predictions.csv (.json for JSON).
"""

from __future__ import annotations

import sys
from pathlib import Path

from graft.cli import published_model
from graft.pipeline.flows import batch_predict

PROJECT = Path(__file__).resolve().parents[1]


def main(argv: list[str]) -> dict:
    if not 1 <= len(argv) <= 3:
        raise SystemExit(__doc__)
    images, model, out = (argv + [None, None])[:3]
    model = model or str(PROJECT / published_model(PROJECT / "params.yaml"))
    return batch_predict(images, model, out or str(PROJECT / "reports/predictions.csv"))


if __name__ == "__main__":
    main(sys.argv[1:])

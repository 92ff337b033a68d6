"""Prefect flow for ONNX consumers: score a folder of new images with the current model.onnx.

Writes one row per image (CSV or JSON; unreadable files get an error, the rest still score)
and publishes a summary artifact. Needs onnxruntime, NumPy and Pillow only.

    python flows/predict.py IMAGES_DIR [models/export/model.onnx] [reports/predictions.csv]
"""

from __future__ import annotations

import collections
import csv
import json
import os
import sys
from pathlib import Path

import graft  # noqa: F401  (Prefect telemetry off before it is imported)

os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_ENABLED", "true")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")

from prefect import flow  # noqa: E402
from prefect.artifacts import create_markdown_artifact  # noqa: E402

from graft.atomic import atomic_path  # noqa: E402
from graft.predict import Predictor, expand  # noqa: E402

PROJECT = Path(__file__).resolve().parents[1]


@flow(name="graft-batch-predict", log_prints=True)
def batch_predict(images: str, model: str = str(PROJECT / "models/export/model.onnx"),
                  out: str = str(PROJECT / "reports/predictions.csv")) -> dict:
    """Score every image under ``images``; write ``out`` (.csv or .json); return the summary."""
    results = Predictor(model).predict(expand([images]))
    out_path = Path(out)
    with atomic_path(out_path) as tmp:
        if out_path.suffix == ".json":
            tmp.write_text(json.dumps(results, indent=2))
        else:
            with open(tmp, "w", newline="") as f:
                writer = csv.writer(f)
                writer.writerow(["path", "label", "confidence", "error"])
                for r in results:
                    writer.writerow([r["path"], r.get("label", ""), r.get("confidence", ""), r.get("error", "")])
    labels = collections.Counter(r["label"] for r in results if "label" in r)
    errors = [r for r in results if "error" in r]
    summary = {"images": len(results), "labels": dict(labels), "errors": len(errors), "out": str(out_path)}
    rows = "\n".join(f"| {label} | {n} |" for label, n in labels.most_common())
    bad = "\n".join(f"- `{r['path']}`: {r['error']}" for r in errors[:20])
    create_markdown_artifact(key="graft-batch-predictions", description=f"{len(results)} images scored",
                             markdown=f"## Batch prediction\n\n{len(results)} images from `{images}` with `{model}`; "
                                      f"results in `{out_path}`.\n\n| label | images |\n|---|---:|\n{rows}\n\n"
                                      + (f"**{len(errors)} files could not be read:**\n\n{bad}\n" if errors else ""))
    print(f"scored {len(results) - len(errors)} images, {len(errors)} unreadable; results in {out_path}")
    return summary


if __name__ == "__main__":
    batch_predict(*sys.argv[1:4])

"""Score images with ``model.onnx``: onnxruntime, NumPy and Pillow only (no TensorFlow).

    >>> from graft.predict import Predictor
    >>> Predictor("models/export/model.onnx").predict(["shoe.png"], top_k=1)
    [{'path': 'shoe.png', 'label': 'Sandal', 'confidence': 0.998, 'top': [...]}]

Images are decoded exactly as in training (graft.data.decode): EXIF orientation, mode
conversion, bilinear resize to the size the model's metadata states.
"""

from __future__ import annotations

import csv
import json
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TextIO

import numpy as np

from graft.data.decode import IMAGE_SUFFIXES, Rules, decode, is_image_candidate, special_file
from graft.errors import BadImage, ModelFileError, PredictError
from graft.export import contract
from graft.files import atomic_path

CSV_COLUMNS = ("path", "label", "confidence", "error")


class Predictor:
    def __init__(self, model: str | Path):
        import onnxruntime as ort

        if (problem := special_file(model)) is not None:
            raise ModelFileError(f"{model}: {problem if Path(model).exists() else 'no such model'}; run `make run` "
                                 "(or `dvc repro`) first, or pass --model")
        try:
            self.session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
        except Exception as err:  # onnxruntime's own exception types: the file is not a model it can run
            raise ModelFileError(f"{model}: not an ONNX model onnxruntime can load ({str(err).splitlines()[0]}); "
                                 "pass the model.onnx graft exported") from None
        meta = contract.read(self.session)
        missing = [k for k in ("classes", "input") if k not in meta]
        if missing or not all(k in meta["input"] for k in ("height", "width", "channels", "formats", "max_pixels")):
            raise ModelFileError(f"{model}: no graft metadata ({', '.join(f'graft.{k}' for k in missing) or 'graft.input'} "
                                 "incomplete); pass a model.onnx exported by this graft version")
        self.classes: list[str] = meta["classes"]
        self.input: dict = meta["input"]
        self.rules = Rules(formats=tuple(self.input["formats"]), max_pixels=int(self.input["max_pixels"]))

    def predict(self, paths: Iterable[str | Path], *, top_k: int = 1, batch_size: int = 32) -> list[dict]:
        """One dict per path; a file that cannot be read gets an ``error`` instead of a label."""
        if not 1 <= top_k <= len(self.classes):
            raise PredictError(f"--top-k {top_k}: give a number from 1 to the model's {len(self.classes)} classes")
        shape = {k: self.input[k] for k in ("height", "width", "channels")}
        results, batch = [], []

        def flush():
            if batch:
                x = np.stack([pixels for _, pixels in batch])
                probs = self.session.run([contract.OUTPUT_NAME], {contract.INPUT_NAME: x})[0]
                for (index, _), p in zip(batch, probs):
                    order = np.argsort(-p)[:top_k]
                    results[index].update(label=self.classes[order[0]], confidence=round(float(p[order[0]]), 6),
                                          top=[{"label": self.classes[i], "probability": round(float(p[i]), 6)}
                                               for i in order])
                batch.clear()

        for path in paths:
            results.append({"path": str(path)})
            try:
                batch.append((len(results) - 1, decode(path, **shape, rules=self.rules)))
            except BadImage as err:  # one bad file must not sink the batch: it is reported in its row
                results[-1]["error"] = str(err)
            if len(batch) == batch_size:
                flush()
        flush()
        return results


def expand(targets: Iterable[str | Path]) -> list[Path]:
    """Files as given; folders walked for image files, sorted. A folder without any, or a path
    that is not there, is an error that names it."""
    out: list[Path] = []
    for target in map(Path, targets):
        if target.is_dir():
            found = sorted(p for p in target.rglob("*") if is_image_candidate(p))
            if not found:
                raise PredictError(f"{target}: no image files in this folder (looked for {', '.join(sorted(IMAGE_SUFFIXES))})")
            out += found
        elif os.path.lexists(target):
            out.append(target)  # a bad file is reported in its row
        else:
            raise PredictError(f"{target}: no such file or folder")
    return out


def write_csv(results: list[dict], stream: TextIO) -> None:
    """One row a result: path, label, confidence, error (empty where there is none)."""
    writer = csv.writer(stream)
    writer.writerow(CSV_COLUMNS)
    for r in results:
        writer.writerow([r.get(column, "") for column in CSV_COLUMNS])


def write_results(path: Path, results: list[dict]) -> None:
    """``path`` ending in .json: the results as JSON; else CSV. Written atomically."""
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        if path.suffix == ".json":
            f.write(json.dumps(results, indent=2))
        else:
            write_csv(results, f)


def print_results(results: list[dict], *, fmt: str) -> None:
    if fmt == "json":
        print(json.dumps(results, indent=2))
    else:
        write_csv(results, sys.stdout)

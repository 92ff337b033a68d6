"""Score images with ``model.onnx``: onnxruntime, NumPy and Pillow only (no TensorFlow).

    >>> from graft.predict import Predictor
    >>> Predictor("models/export/model.onnx").predict(["shoe.png"], top_k=1)
    [{'path': 'shoe.png', 'label': 'Sandal', 'confidence': 0.998, 'top': [...]}]

Images are decoded exactly as in training (graft.images.decode): EXIF orientation, mode
conversion, bilinear resize to the size the model's metadata states.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np

from graft import images, onnx_meta


class Predictor:
    def __init__(self, model: str | Path = "models/export/model.onnx"):
        import onnxruntime as ort

        if not Path(model).is_file():
            raise FileNotFoundError(f"{model}: no such model; run `make run` (or `dvc repro`) first, or pass --model")
        self.session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
        meta = onnx_meta.read(self.session)
        self.classes: list[str] = meta["classes"]
        self.input: dict = meta["input"]

    def predict(self, paths: Iterable[str | Path], *, top_k: int = 1, batch_size: int = 32) -> list[dict]:
        """One dict per path; a file that cannot be read gets an ``error`` instead of a label."""
        shape = {k: self.input[k] for k in ("height", "width", "channels")}
        results, batch = [], []

        def flush():
            if batch:
                x = np.stack([pixels for _, pixels in batch])
                probs = self.session.run([onnx_meta.OUTPUT_NAME], {onnx_meta.INPUT_NAME: x})[0]
                for (index, _), p in zip(batch, probs):
                    order = np.argsort(-p)[:top_k]
                    results[index].update(label=self.classes[order[0]], confidence=round(float(p[order[0]]), 6),
                                          top=[{"label": self.classes[i], "probability": round(float(p[i]), 6)}
                                               for i in order])
                batch.clear()

        for path in paths:
            results.append({"path": str(path)})
            try:
                batch.append((len(results) - 1, images.decode(path, **shape)))
            except Exception as err:  # one bad file must not sink the batch
                results[-1]["error"] = f"{err.__class__.__name__}: {err}"
            if len(batch) == batch_size:
                flush()
        flush()
        return results


def expand(targets: Iterable[str | Path]) -> list[Path]:
    """Files as given; folders walked for image files, sorted."""
    out: list[Path] = []
    for target in map(Path, targets):
        out += sorted(p for p in target.rglob("*") if images.is_image_candidate(p)) if target.is_dir() else [target]
    return out

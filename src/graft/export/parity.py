"""onnxruntime against Keras on the same images: the check every export must pass."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from graft.errors import ParityError
from graft.export import contract


def onnx_predict(path: Path, x: np.ndarray, *, batch_size: int) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return np.concatenate([session.run([contract.OUTPUT_NAME], {contract.INPUT_NAME: x[i:i + batch_size]})[0]
                           for i in range(0, len(x), batch_size)])


def check_parity(path: Path, *, expected: np.ndarray, x: np.ndarray, y: np.ndarray | None,
                 tolerance: float, batch_sizes=(1, 32)) -> dict:
    """onnxruntime against Keras' probabilities ``expected`` at each batch size: max |diff| within
    ``tolerance``, the same top-1 on every image (and so the same accuracy). Raises :class:`ParityError`."""
    result: dict = {"images": int(len(x)), "tolerance": tolerance}
    for batch_size in batch_sizes:
        ours = onnx_predict(path, x, batch_size=batch_size)
        diff = float(np.abs(ours - expected).max()) if len(x) else 0.0
        same = int((ours.argmax(1) == expected.argmax(1)).sum())
        entry = {"max_abs_diff": diff, "same_top1": same}
        if y is not None and len(y):
            entry["accuracy"] = float((ours.argmax(1) == y).mean())
        result[f"batch_{batch_size}"] = entry
        if diff > tolerance or same != len(x):
            raise ParityError(f"onnxruntime at batch size {batch_size} differs from Keras by up to {diff:.3g} "
                              f"(tolerance {tolerance}); top-1 agrees on {same}/{len(x)} test images. "
                              "Nothing was published.")
    result["max_abs_diff"] = max(result[f"batch_{b}"]["max_abs_diff"] for b in batch_sizes)
    return result

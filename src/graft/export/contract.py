"""The contract between graft's ONNX file and its consumers, readable with onnxruntime alone."""

from __future__ import annotations

import json

INPUT_NAME = "pixels"
OUTPUT_NAME = "probabilities"


def describe(*, classes, height: int, width: int, channels: int, formats, max_pixels: int,
             extra: dict | None = None) -> dict[str, str]:
    """``metadata_props`` of the exported model: every value a string, structured ones JSON.
    ``formats`` and ``max_pixels``: the image files the model was trained on (validate.*), which
    ``graft predict`` opens under the same rules."""
    return {
        "graft.classes": json.dumps(list(classes)),
        "graft.input": json.dumps({"name": INPUT_NAME, "layout": "NHWC", "dtype": "uint8",
                                   "height": height, "width": width, "channels": channels,
                                   "value_range": [0, 255],
                                   "resize": "bilinear to height x width; EXIF orientation applied first",
                                   "formats": list(formats), "max_pixels": max_pixels}),
        "graft.output": json.dumps({"name": OUTPUT_NAME, "meaning": "softmax probabilities in graft.classes order"}),
        **{f"graft.{k}": v if isinstance(v, str) else json.dumps(v) for k, v in (extra or {}).items()},
    }


def read(session) -> dict:
    """Decode the graft metadata of an ``onnxruntime.InferenceSession``."""
    props = session.get_modelmeta().custom_metadata_map
    out = {}
    for key, value in props.items():
        if key.startswith("graft."):
            try:
                out[key.removeprefix("graft.")] = json.loads(value)
            except json.JSONDecodeError:
                out[key.removeprefix("graft.")] = value
    return out

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


def doc_string(*, classes, height: int, width: int, channels: int) -> str:
    """The ONNX model's ``doc_string``: what it classifies and its input contract, in words (the
    same facts as the ``graft.*`` metadata, which a program reads)."""
    return (f"graft image classifier: one of {len(classes)} classes ({', '.join(classes)}). Input {INPUT_NAME!r}: "
            f"uint8 pixels 0-255, NHWC [batch, {height}, {width}, {channels}], any batch size; resize bilinearly to "
            f"{height}x{width} after applying EXIF orientation (graft predict does this). Output {OUTPUT_NAME!r}: "
            f"softmax probabilities [batch, {len(classes)}] in the order of the classes above (metadata "
            "graft.classes). Provenance, test metrics and the gate's verdict: the graft.* metadata and "
            "model_card.md.")


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

"""The base networks graft can build, and what each needs (no TensorFlow: graft.config checks
``base.kind`` against these names)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Kind:
    application: str | None  # keras.applications constructor, None for the compact CNN
    mode: str  # how PixelAdapter scales pixels for this base
    channels: int  # channels the base takes
    min_size: int


KINDS = {
    "compact_cnn": Kind(None, "unit", 0, 8),  # channels 0: whatever image.channels says
    "mobilenet_v2": Kind("MobileNetV2", "tf", 3, 32),
    "efficientnet_b0": Kind("EfficientNetB0", "raw", 3, 32),
    "resnet50": Kind("ResNet50", "caffe", 3, 32),
    "vgg16": Kind("VGG16", "caffe", 3, 32),
}


def layer_names(*, kind: str, filters, convs_per_block: int) -> list[str]:
    """The names of the base's layers, bottom to top, as ``finetune.unfreeze`` counts and matches
    them (graft.model.surgery.unfreeze_top; the input layer left out). The compact CNN's follow from
    its params; a keras.applications base's are in layers.json (tests/unit/test_backbones.py checks
    them against Keras)."""
    if KINDS[kind].application is not None:
        return json.loads(Path(__file__).with_name("layers.json").read_text())[kind]
    names = []
    for block in range(1, len(filters) + 1):
        for conv in range(1, convs_per_block + 1):
            names += [f"block{block}_conv{conv}", f"block{block}_bn{conv}", f"block{block}_relu{conv}"]
        if block < len(filters):
            names.append(f"block{block}_pool")
    return names

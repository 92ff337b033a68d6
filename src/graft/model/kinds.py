"""The base networks graft can build, and what each needs (no TensorFlow: graft.config checks
``base.kind`` against these names)."""

from __future__ import annotations

from dataclasses import dataclass


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

"""Raw pixels in, what a base expects out: the adapter that keeps preprocessing inside the model."""

from __future__ import annotations

import keras
from keras import layers, ops

from graft.export.contract import INPUT_NAME

ADAPTER_NAME = "pixels_to_base"
_MEANS = {"caffe": (103.939, 116.779, 123.68), "torch": (0.485, 0.456, 0.406)}
_TORCH_STD = (0.229, 0.224, 0.225)


@keras.saving.register_keras_serializable(package="graft")
class PixelAdapter(layers.Layer):
    """Raw pixels in, what the base expects out: cast, channel adaptation, resize, scaling.

    Living inside the model, it makes the exported ONNX file take raw 0-255 pixels, so that
    consumers cannot drift from training. Modes follow keras.applications' preprocess_input:
    ``unit`` (x/255), ``tf`` (x/127.5-1), ``caffe`` (BGR, mean subtracted), ``torch``, ``raw``.
    """

    def __init__(self, *, size: tuple[int, int], channels: int, mode: str, **kwargs):
        super().__init__(**kwargs)
        if mode not in ("unit", "tf", "caffe", "torch", "raw"):
            raise ValueError(f"unknown pixel mode {mode!r}")
        self.size, self.channels, self.mode = tuple(size), int(channels), mode

    def call(self, x):
        x = ops.cast(x, "float32")
        if x.shape[-1] == 1 and self.channels == 3:
            x = ops.repeat(x, 3, axis=-1)
        elif x.shape[-1] == 3 and self.channels == 1:
            x = ops.sum(x * ops.convert_to_tensor([0.299, 0.587, 0.114]), axis=-1, keepdims=True)
        if tuple(x.shape[1:3]) != self.size:
            x = ops.image.resize(x, self.size, interpolation="bilinear")
        if self.mode == "unit":
            return x / 255.0
        if self.mode == "tf":
            return x / 127.5 - 1.0
        if self.mode == "caffe":
            return ops.flip(x, axis=-1) - ops.convert_to_tensor(_MEANS["caffe"])
        if self.mode == "torch":
            return (x / 255.0 - ops.convert_to_tensor(_MEANS["torch"])) / ops.convert_to_tensor(_TORCH_STD)
        return x

    def compute_output_shape(self, input_shape):
        return (input_shape[0], *self.size, self.channels)

    def get_config(self):
        return {**super().get_config(), "size": list(self.size), "channels": self.channels, "mode": self.mode}


def pixel_input(image) -> keras.KerasTensor:
    """The model's input: uint8 NHWC at the ``image`` params' size; the batch axis is dynamic."""
    return keras.Input(shape=(image.height, image.width, image.channels), dtype="uint8", name=INPUT_NAME)

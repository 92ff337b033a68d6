"""Test-time augmentation: the scored and shipped model averages its probabilities over the image
and its mirror image (``tta: horizontal_flip``), inside one Keras model, so the ONNX export
and its consumers get the same predictions as evaluate (the flip is part of the graph)."""

from __future__ import annotations

import keras
from keras import layers, ops

TTA_NAME = "tta_average"


@keras.saving.register_keras_serializable(package="graft")
class FlipWidth(layers.Layer):
    """The image mirrored left to right (NHWC: the width axis), pixels unchanged."""

    def call(self, x):
        return ops.flip(x, axis=2)


def with_tta(model: keras.Model, tta: str) -> keras.Model:
    """``model`` itself for ``none``; for ``horizontal_flip``, a model with the same input that
    returns the mean of ``model``'s probabilities on the image and on its mirror image. The
    wrapped model is shared, not copied, and never trained through this wrapper."""
    if tta == "none":
        return model
    if tta != "horizontal_flip":
        raise ValueError(f"unknown tta {tta!r}")
    x = keras.Input(shape=model.input_shape[1:], dtype=model.inputs[0].dtype, name=model.inputs[0].name)
    probs = layers.Average(name=TTA_NAME)([model(x), model(FlipWidth(name="mirror")(x))])
    return keras.Model(x, probs, name=f"{model.name}_tta")

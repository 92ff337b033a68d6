"""Augmentation in training only: random transforms of the uint8 pixels in a training wrapper
that shares the model's weights, so the saved (and exported) model never has them."""

from __future__ import annotations

import keras

from graft.export.contract import INPUT_NAME


@keras.saving.register_keras_serializable(package="graft")
class ToPixels(keras.layers.Layer):
    """Back to the uint8 pixels the model takes, after augmentation worked in float."""

    def call(self, x):
        return keras.ops.cast(keras.ops.clip(keras.ops.round(x), 0, 255), "uint8")


def augmenter(augment, *, seed: int) -> keras.Sequential:
    """Keras augmentation layers; they live only in the training wrapper, never in the saved model."""
    steps: list[keras.layers.Layer] = []
    if augment.flip != "none":
        steps.append(keras.layers.RandomFlip(augment.flip, seed=seed))
    if augment.rotation:
        steps.append(keras.layers.RandomRotation(augment.rotation, fill_mode="nearest", seed=seed + 1))
    if augment.zoom:
        steps.append(keras.layers.RandomZoom(augment.zoom, fill_mode="nearest", seed=seed + 2))
    if augment.translation:
        steps.append(keras.layers.RandomTranslation(augment.translation, augment.translation, fill_mode="nearest",
                                                    seed=seed + 3))
    return keras.Sequential([*steps, ToPixels()], name="augment")


def with_augmentation(model: keras.Model, augment, *, seed: int) -> keras.Model:
    """A training wrapper: pixels -> augmentation -> ``model``; it shares ``model``'s weights."""
    inputs = keras.Input(shape=model.input_shape[1:], dtype="uint8", name=INPUT_NAME)
    return keras.Model(inputs, model(augmenter(augment, seed=seed)(inputs)), name=f"{model.name}_training")

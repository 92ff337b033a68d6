"""The source model used as a classifier of the target classes (strategy ``as_classifier``)."""

from __future__ import annotations

import keras
from keras import layers, ops

from graft.errors import ModelMismatch
from graft.export.contract import INPUT_NAME, OUTPUT_NAME


@keras.saving.register_keras_serializable(package="graft")
class ClassSubset(layers.Layer):
    """Probabilities over a subset of a classifier's classes: the chosen columns, renormalised to sum to 1.

    It is exact for a softmax: softmax restricted to a subset of its logits equals the full
    softmax's probabilities of that subset divided by their sum."""

    def __init__(self, *, indices, **kwargs):
        super().__init__(**kwargs)
        self.indices = [int(i) for i in indices]

    def call(self, probabilities):
        chosen = ops.take(probabilities, ops.convert_to_tensor(self.indices, dtype="int32"), axis=-1)
        return chosen / ops.sum(chosen, axis=-1, keepdims=True)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], len(self.indices))

    def get_config(self):
        return {**super().get_config(), "indices": self.indices}


def as_classifier(source: keras.Model, *, source_classes, target_classes) -> keras.Model:
    """The source model used as it is, restricted to the target classes (a subset of its own):
    pixels -> source model -> those classes' probabilities, renormalised. No training; the
    source model's weights are shared, not copied, and never changed."""
    missing = [c for c in target_classes if c not in source_classes]
    if missing:
        raise ModelMismatch(f"the source model has no class {missing}; its classes are {list(source_classes)}")
    inputs = keras.Input(shape=source.input_shape[1:], dtype="uint8", name=INPUT_NAME)
    subset = ClassSubset(indices=[list(source_classes).index(c) for c in target_classes], name=OUTPUT_NAME, dtype="float32")
    return keras.Model(inputs, subset(source(inputs)), name="source_as_classifier")

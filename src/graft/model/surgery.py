"""Model surgery: a clone of a base (the source is never touched), freezing, unfreezing the top
of a base by the plan, and the frozen part of model B as a feature extractor."""

from __future__ import annotations

import math

import keras

from graft.errors import ModelMismatch
from graft.model import precision
from graft.model.backbones import BASE_NAME
from graft.model.head import POOL_NAME


def clone_base(source: keras.Model) -> keras.Model:
    """A copy of the source model's base with the same weights, computing in the current dtype
    policy (graft.model.precision.policy); the source is never touched."""
    return precision.cast(source.get_layer(BASE_NAME), keras.config.dtype_policy().name)


def freeze(model: keras.Model) -> None:
    """Freeze every layer of ``model``. Keras 3 runs frozen BatchNorm layers in inference mode."""
    model.trainable = False


def unfreeze_top(base: keras.Model, *, unfreeze: int | float | str) -> list[str]:
    """Unfreeze the top of ``base``: the last ``unfreeze`` layers (an int), that fraction of its
    weight layers other than BatchNorm, counted from the top (a float in (0, 1]: 0.5 of a
    VGG-style base unfreezes the top half of its convolutions), or every layer whose name
    starts with ``unfreeze`` (a block name,
    e.g. ``block3`` or VGG16's ``block5``) and every layer above the first of them. BatchNorm
    layers stay frozen, so their moving statistics are kept and they keep running in inference
    mode. Returns the names of the trainable layers."""
    body = [layer for layer in base.layers if not isinstance(layer, keras.layers.InputLayer)]
    if isinstance(unfreeze, float):
        learnable = [i for i, layer in enumerate(body)
                     if layer.weights and not isinstance(layer, keras.layers.BatchNormalization)]
        first = learnable[len(learnable) - math.ceil(unfreeze * len(learnable))]
    elif isinstance(unfreeze, int):
        if unfreeze > len(body):
            raise ModelMismatch(f"finetune.unfreeze={unfreeze} but the base has only {len(body)} layers")
        first = len(body) - unfreeze
    else:
        matches = [i for i, layer in enumerate(body) if layer.name.startswith(unfreeze)]
        if not matches:
            blocks = sorted({layer.name.split("_")[0] for layer in body})
            raise ModelMismatch(f"finetune.unfreeze={unfreeze!r} names no layer of the base; blocks: {blocks} "
                                "(set finetune.unfreeze to one of them)")
        first = matches[0]
    base.trainable = True
    for i, layer in enumerate(body):
        layer.trainable = i >= first and not isinstance(layer, keras.layers.BatchNormalization)
    return [layer.name for layer in body if layer.trainable and layer.weights]


def feature_extractor(model: keras.Model) -> keras.Model:
    """The frozen part of model B (adapter, base, pooling): pixels in, the head's input out."""
    return keras.Model(model.input, model.get_layer(POOL_NAME).output, name="features")

"""Building the models of transfer learning: the configured base behind its pixel adapter, the
source model A, model B (a frozen clone of A's base under a new head), and the scratch
baseline (the same architecture from random weights)."""

from __future__ import annotations

import keras
from keras import layers

from graft.export.contract import INPUT_NAME
from graft.model.backbones import application, compact_cnn
from graft.model.head import build_head, pooling
from graft.model.kinds import KINDS
from graft.model.pixels import ADAPTER_NAME, PixelAdapter, pixel_input
from graft.model.surgery import clone_base, freeze

SCRATCH_BATCHNORM_MOMENTUM = 0.9  # see scratch_model


def build_base(params, *, weights: str | None = None, seed: int | None = None):
    """The configured base and the adapter in front of it: (base, adapter). ``weights`` overrides
    base.weights (the scratch baseline and the advisor's random base pass ``none``)."""
    kind = KINDS[params.base.kind]
    seed = params.seed if seed is None else seed
    if kind.application is None:
        size, channels = (params.image.height, params.image.width), params.image.channels
        base = compact_cnn(input_shape=(*size, channels), filters=params.base.filters,
                           convs_per_block=params.base.convs_per_block, seed=seed)
    else:
        size, channels = (params.base.input_size,) * 2, kind.channels
        base = application(kind=params.base.kind, size=params.base.input_size,
                           weights=params.base.weights if weights is None else weights, sha256=params.base.weights_sha256)
    return base, PixelAdapter(size=size, channels=channels, mode=kind.mode, name=ADAPTER_NAME)


def build_source_model(params) -> keras.Model:
    """Model A: pixels -> adapter -> base, plus a pooled softmax over the source classes for the
    compact CNN (which is then pretrained on the source task). A keras.applications base comes
    pretrained already and gets no source head."""
    base, adapter = build_base(params)
    inputs = pixel_input(params.image)
    features = base(adapter(inputs))
    if KINDS[params.base.kind].application is not None:
        return keras.Model(inputs, features, name="source")
    x = layers.GlobalAveragePooling2D(name="source_pool")(features)
    outputs = layers.Dense(len(params.data.source_classes), activation="softmax", name="source_head", dtype="float32",
                           kernel_initializer=keras.initializers.GlorotUniform(seed=params.seed))(x)
    return keras.Model(inputs, outputs, name="source")


def assemble(*, input_shape, adapter: PixelAdapter, base: keras.Model, head, num_classes: int, seed: int,
             frozen: bool, name: str) -> keras.Model:
    """pixels -> adapter -> base -> pooling -> head. A ``frozen`` base is called with ``training=False``."""
    inputs = keras.Input(shape=input_shape, dtype="uint8", name=INPUT_NAME)
    x = adapter(inputs)
    if frozen:
        freeze(base)
        x = base(x, training=False)
    else:
        x = base(x)
    x = pooling(head.pooling)(x)
    outputs = build_head(features=x.shape[-1], num_classes=num_classes, head=head, seed=seed)(x)
    return keras.Model(inputs, outputs, name=name)


def graft_head(source: keras.Model, *, num_classes: int, head, seed: int) -> keras.Model:
    """Model B: a clone of A's adapter and base, frozen and called with ``training=False``, under a
    new head (pooling, optional hidden layers, dropout, softmax over the target classes)."""
    adapter = PixelAdapter.from_config(source.get_layer(ADAPTER_NAME).get_config())
    return assemble(input_shape=source.input_shape[1:], adapter=adapter, base=clone_base(source), head=head,
                    num_classes=num_classes, seed=seed, frozen=True, name="graft")


def scratch_model(params, *, num_classes: int, seed: int) -> keras.Model:
    """The transfer model's architecture (adapter, base, pooling, head), random weights, all trainable.

    Its BatchNorm layers use momentum 0.9: a small set gives a few steps an epoch, and with
    Keras' default 0.99 the moving statistics barely leave their initial values, so the model
    predicts one class at test time."""
    base, adapter = build_base(params, weights="none", seed=seed)
    for layer in base.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = SCRATCH_BATCHNORM_MOMENTUM
    return assemble(input_shape=pixel_input(params.image).shape[1:], adapter=adapter, base=base,
                    head=params.head, num_classes=num_classes, seed=seed, frozen=False, name="scratch")


def random_base_features(params, *, seed: int) -> keras.Model:
    """pixels -> adapter -> the configured base architecture with random weights -> pooling (the
    advisor's reference for how separable a task is without transfer)."""
    base, adapter = build_base(params, weights="none", seed=seed)
    inputs = pixel_input(params.image)
    return keras.Model(inputs, pooling(params.head.pooling)(base(adapter(inputs), training=False)))

"""The autoencoder of unsupervised pretraining (``pretrain.method: autoencoder``): the compact
CNN is its encoder, and a small decoder of transposed convolutions reconstructs the pixels."""

from __future__ import annotations

import keras
from keras import layers

from graft.model.build import build_base
from graft.model.pixels import pixel_input


def decoder(*, encoded_shape: tuple[int, int, int], filters: tuple[int, ...], height: int, width: int, channels: int,
            seed: int) -> keras.Model:
    """Transposed convolutions back up the base's pooling steps, to pixels in [0, 1]."""
    inputs = keras.Input(shape=encoded_shape, name="code")
    x = inputs
    for i, width_ in enumerate(reversed(filters[:-1]), start=1):
        x = layers.Conv2DTranspose(width_, 3, strides=2, padding="same", activation="relu", name=f"decoder_up{i}",
                                   kernel_initializer=keras.initializers.HeNormal(seed=seed + 50 + i))(x)
    x = layers.Conv2D(channels, 3, padding="same", activation="sigmoid", name="decoder_pixels", dtype="float32",
                      kernel_initializer=keras.initializers.GlorotUniform(seed=seed + 50))(x)
    if tuple(x.shape[1:3]) != (height, width):  # sizes that pooling floored
        x = layers.Resizing(height, width, name="decoder_resize", dtype="float32")(x)
    return keras.Model(inputs, x, name="decoder")


def autoencoder(params) -> keras.Model:
    """pixels -> adapter -> base (the encoder) -> decoder -> reconstruction in [0, 1]."""
    base, adapter = build_base(params)
    inputs = pixel_input(params.image)
    code = base(adapter(inputs))
    image = params.image
    outputs = decoder(encoded_shape=tuple(code.shape[1:]), filters=params.base.filters, height=image.height,
                      width=image.width, channels=image.channels, seed=params.seed)(code)
    return keras.Model(inputs, outputs, name="source")

"""Base networks: the compact CNN pretrained on the source task, or a keras.applications backbone
(the kinds are graft.model.kinds)."""

from __future__ import annotations

from pathlib import Path

from graft.errors import WeightsError
from graft.files import sha256_file
from graft.model.kinds import KINDS

BASE_NAME = "base"  # the base is a nested model of this name inside every graft model


def compact_cnn(*, input_shape: tuple[int, int, int], filters: tuple[int, ...], convs_per_block: int, seed: int):
    """A small VGG-style CNN: blocks of (conv, BatchNorm, ReLU) x n, max-pooled between blocks; it
    outputs feature maps (the head pools them). Layers are named ``block{i}_*`` so fine-tuning can
    unfreeze a named block."""
    import keras
    from keras import layers

    inputs = keras.Input(shape=input_shape, name="base_input")
    x = inputs
    init = 0
    for block, width in enumerate(filters, start=1):
        for conv in range(1, convs_per_block + 1):
            init += 1
            x = layers.Conv2D(width, 3, padding="same", use_bias=False, name=f"block{block}_conv{conv}",
                              kernel_initializer=keras.initializers.HeNormal(seed=seed + init))(x)
            x = layers.BatchNormalization(name=f"block{block}_bn{conv}")(x)
            x = layers.Activation("relu", name=f"block{block}_relu{conv}")(x)
        if block < len(filters):
            x = layers.MaxPooling2D(name=f"block{block}_pool")(x)
    return keras.Model(inputs, x, name=BASE_NAME)


def check_weights_file(weights: str, sha256: str | None) -> None:
    """A weights file must exist and, when ``sha256`` is given, have that digest."""
    if weights in ("imagenet", "none"):
        return
    if not Path(weights).is_file():
        raise WeightsError(f"base.weights: {weights} does not exist; give a weights file, 'imagenet' or 'none'")
    if sha256 is not None and (actual := sha256_file(weights)) != sha256.lower():
        raise WeightsError(f"base.weights: {weights} has sha256 {actual}, but base.weights_sha256 is {sha256}; "
                           "the file is corrupt or not the one you meant (fix the file or the digest)")


def application(*, kind: str, size: int, weights: str, sha256: str | None):
    """A keras.applications backbone without its top; it outputs feature maps (the head pools them).

    ``weights``: ``imagenet`` (Keras cache, else one download attempt), ``none``, or a path to
    a weights file saved from the same architecture without its top, checked against ``sha256``."""
    import keras

    spec = KINDS[kind]
    constructor = getattr(keras.applications, spec.application)
    check_weights_file(weights, sha256)
    try:
        model = constructor(include_top=False, weights=None if weights == "none" else weights,
                            input_shape=(size, size, 3))
    except Exception as err:  # Keras raises many types for a failed download or a file of another network
        if weights == "imagenet":
            raise WeightsError(
                f"base.weights: imagenet weights for {spec.application} are not in the Keras cache "
                f"(~/.keras/models) and could not be downloaded ({err}). Copy the *_notop.h5 file "
                "there, point base.weights at a local weights file, or use weights: none."
            ) from err
        raise WeightsError(f"base.weights: {weights} does not fit {spec.application} without its top "
                           f"at {size}x{size}x3: {err}") from err
    return keras.Model(model.input, model.output, name=BASE_NAME)

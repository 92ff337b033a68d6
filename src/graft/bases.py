"""Base networks: the compact CNN pretrained on the source task, or a keras.applications backbone.

``KINDS`` is importable without TensorFlow (the config loader checks names against it);
everything that builds a model imports Keras lazily.
"""

from __future__ import annotations

import hashlib
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


class WeightsMismatch(ValueError):
    """base.weights is not the file base.weights_sha256 names."""


def sha256_of(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def check_weights_file(weights: str, sha256: str | None) -> None:
    """A weights file must exist and, when ``sha256`` is given, have that digest."""
    if weights in ("imagenet", "none"):
        return
    if not Path(weights).is_file():
        raise FileNotFoundError(f"base.weights: {weights} does not exist; give a weights file, 'imagenet' or 'none'")
    if sha256 is not None and (actual := sha256_of(weights)) != sha256.lower():
        raise WeightsMismatch(f"base.weights: {weights} has sha256 {actual}, but base.weights_sha256 is {sha256}; "
                              "the file is corrupt or not the one you meant (fix the file or the digest)")


def application(*, kind: str, size: int, weights: str, sha256: str | None = None):
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
    except Exception as err:
        if weights == "imagenet":
            raise RuntimeError(
                f"base.weights: imagenet weights for {spec.application} are not in the Keras cache "
                f"(~/.keras/models) and could not be downloaded ({err}). Copy the *_notop.h5 file "
                "there, point base.weights at a local weights file, or use weights: none."
            ) from err
        raise ValueError(f"base.weights: {weights} does not fit {spec.application} without its top "
                         f"at {size}x{size}x3: {err}") from err
    return keras.Model(model.input, model.output, name=BASE_NAME)

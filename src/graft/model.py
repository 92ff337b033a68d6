"""Model surgery: pixel adaptation, the source model A, grafting a head onto a clone of its base
(model B), and the named freeze / unfreeze steps of transfer learning."""

from __future__ import annotations

import keras
from keras import layers, ops

from graft.bases import BASE_NAME, KINDS, application, compact_cnn
from graft.config import Params

ADAPTER_NAME = "pixels_to_base"
INPUT_NAME = "pixels"
OUTPUT_NAME = "probabilities"

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


def pixel_input(params: Params) -> keras.KerasTensor:
    """The model's input: uint8 NHWC at the configured image size; the batch axis is dynamic."""
    image = params.image
    return keras.Input(shape=(image.height, image.width, image.channels), dtype="uint8", name=INPUT_NAME)


def build_source_model(params: Params) -> keras.Model:
    """Model A: pixels -> adapter -> base, plus a softmax over the source classes for the
    compact CNN (which is then pretrained on the source task). A keras.applications base comes
    pretrained already and gets no source head."""
    kind = KINDS[params.base.kind]
    inputs = pixel_input(params)
    if kind.application is None:
        size = (params.image.height, params.image.width)
        channels = params.image.channels
        base = compact_cnn(input_shape=(*size, channels), filters=params.base.filters,
                           convs_per_block=params.base.convs_per_block, seed=params.seed)
    else:
        size, channels = (params.base.input_size,) * 2, kind.channels
        base = application(kind=params.base.kind, size=params.base.input_size, weights=params.base.weights)
    x = PixelAdapter(size=size, channels=channels, mode=kind.mode, name=ADAPTER_NAME)(inputs)
    features = base(x)
    if kind.application is not None:
        return keras.Model(inputs, features, name="source")
    outputs = layers.Dense(len(params.data.source_classes), activation="softmax", name="source_head",
                           kernel_initializer=keras.initializers.GlorotUniform(seed=params.seed))(features)
    return keras.Model(inputs, outputs, name="source")


def clone_base(source: keras.Model) -> keras.Model:
    """A copy of the source model's base with the same weights; the source is never touched."""
    base = source.get_layer(BASE_NAME)
    clone = keras.models.clone_model(base)
    clone.set_weights(base.get_weights())
    return clone


def freeze(model: keras.Model) -> None:
    """Freeze every layer of ``model``. Keras 3 runs frozen BatchNorm layers in inference mode."""
    model.trainable = False


def unfreeze_top(base: keras.Model, *, unfreeze: int | str) -> list[str]:
    """Unfreeze the top of ``base``: the last ``unfreeze`` layers (an int), or every layer whose
    name starts with ``unfreeze`` (a block name, e.g. ``block3`` or VGG16's ``block5``) and every
    layer above the first of them. BatchNorm layers stay frozen, so their moving statistics are
    kept and they keep running in inference mode. Returns the names of the trainable layers."""
    body = [layer for layer in base.layers if not isinstance(layer, keras.layers.InputLayer)]
    if isinstance(unfreeze, int):
        if unfreeze > len(body):
            raise ValueError(f"finetune.unfreeze={unfreeze} but the base has only {len(body)} layers")
        first = len(body) - unfreeze
    else:
        matches = [i for i, layer in enumerate(body) if layer.name.startswith(unfreeze)]
        if not matches:
            blocks = sorted({layer.name.split("_")[0] for layer in body})
            raise ValueError(f"finetune.unfreeze={unfreeze!r} names no layer of the base; blocks: {blocks}")
        first = matches[0]
    base.trainable = True
    for i, layer in enumerate(body):
        layer.trainable = i >= first and not isinstance(layer, keras.layers.BatchNormalization)
    return [layer.name for layer in body if layer.trainable and layer.weights]


def graft_head(source: keras.Model, *, num_classes: int, dropout: float, seed: int) -> keras.Model:
    """Model B: a clone of A's adapter and base, frozen and called with ``training=False``, under a
    new head (dropout, softmax over the target classes)."""
    adapter = source.get_layer(ADAPTER_NAME)
    base = clone_base(source)
    freeze(base)
    inputs = keras.Input(shape=source.input_shape[1:], dtype="uint8", name=INPUT_NAME)
    x = PixelAdapter.from_config(adapter.get_config())(inputs)
    x = base(x, training=False)
    x = layers.Dropout(dropout, seed=seed, name="head_dropout")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name=OUTPUT_NAME,
                           kernel_initializer=keras.initializers.GlorotUniform(seed=seed))(x)
    return keras.Model(inputs, outputs, name="graft")


def load(path) -> keras.Model:
    return keras.saving.load_model(path, compile=False)

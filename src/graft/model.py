"""Model surgery: pixel adaptation, the source model A, grafting a head onto a clone of its base
(model B), and the named freeze / unfreeze steps of transfer learning."""

from __future__ import annotations

import math

import keras
from keras import layers, ops

from graft.bases import BASE_NAME, KINDS, application, compact_cnn
from graft.config import Head, Params

ADAPTER_NAME = "pixels_to_base"
POOL_NAME = "head_pool"
HEAD_NAME = "head"
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


def build_base(params: Params, *, weights: str | None = None, seed: int | None = None):
    """The configured base and the adapter in front of it: (base, adapter). ``weights`` overrides
    base.weights (the scratch baseline passes ``none``)."""
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


def build_source_model(params: Params) -> keras.Model:
    """Model A: pixels -> adapter -> base, plus a pooled softmax over the source classes for the
    compact CNN (which is then pretrained on the source task). A keras.applications base comes
    pretrained already and gets no source head."""
    base, adapter = build_base(params)
    inputs = pixel_input(params)
    features = base(adapter(inputs))
    if KINDS[params.base.kind].application is not None:
        return keras.Model(inputs, features, name="source")
    x = layers.GlobalAveragePooling2D(name="source_pool")(features)
    outputs = layers.Dense(len(params.data.source_classes), activation="softmax", name="source_head",
                           kernel_initializer=keras.initializers.GlorotUniform(seed=params.seed))(x)
    return keras.Model(inputs, outputs, name="source")


def clone_base(source: keras.Model) -> keras.Model:
    """A copy of the source model's base with the same weights; the source is never touched."""
    base = source.get_layer(BASE_NAME)
    clone = keras.models.clone_model(base)
    clone.set_weights(base.get_weights())
    for layer in clone._flatten_layers():
        if isinstance(layer, layers.Normalization):
            layer.finalize_state()  # set_weights does not refresh the constants it derives from its weights
    return clone


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


def initializer(name: str, activation: str, seed: int):
    """``auto``: He for the ReLU family, LeCun for SELU (self-normalising), Glorot otherwise."""
    if name == "auto":
        name = {"selu": "lecun_normal", "tanh": "glorot_uniform"}.get(activation, "he_normal")
    return keras.initializers.get({"class_name": name, "config": {"seed": seed}})


def build_head(*, features: int, num_classes: int, head: Head, seed: int) -> keras.Model:
    """The new head on pooled features: [dropout, dense, (BatchNorm), activation] per hidden layer,
    then dropout and a softmax over the target classes."""
    inputs = keras.Input(shape=(features,), name="features")
    x = inputs
    for i, units in enumerate(head.dense, start=1):
        x = layers.Dropout(head.dropout, seed=seed + 100 * i, name=f"head_dropout{i}")(x)
        x = layers.Dense(units, use_bias=not head.batchnorm, name=f"head_dense{i}",
                         kernel_initializer=initializer(head.initializer, head.activation, seed + i))(x)
        if head.batchnorm:
            x = layers.BatchNormalization(name=f"head_bn{i}")(x)
        x = layers.Activation(head.activation, name=f"head_{head.activation}{i}")(x)
    x = layers.Dropout(head.dropout, seed=seed, name="head_dropout")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name=OUTPUT_NAME,
                           kernel_initializer=keras.initializers.GlorotUniform(seed=seed))(x)
    return keras.Model(inputs, outputs, name=HEAD_NAME)


def pooling(kind: str) -> layers.Layer:
    return layers.GlobalAveragePooling2D(name=POOL_NAME) if kind == "avg" else layers.Flatten(name=POOL_NAME)


def assemble(*, input_shape, adapter: PixelAdapter, base: keras.Model, head: Head, num_classes: int, seed: int,
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


def graft_head(source: keras.Model, *, num_classes: int, head: Head, seed: int) -> keras.Model:
    """Model B: a clone of A's adapter and base, frozen and called with ``training=False``, under a
    new head (pooling, optional hidden layers, dropout, softmax over the target classes)."""
    adapter = PixelAdapter.from_config(source.get_layer(ADAPTER_NAME).get_config())
    return assemble(input_shape=source.input_shape[1:], adapter=adapter, base=clone_base(source), head=head,
                    num_classes=num_classes, seed=seed, frozen=True, name="graft")


def feature_extractor(model: keras.Model) -> keras.Model:
    """The frozen part of model B (adapter, base, pooling): pixels in, the head's input out."""
    return keras.Model(model.input, model.get_layer(POOL_NAME).output, name="features")


def load(path) -> keras.Model:
    return keras.saving.load_model(path, compile=False)


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
        raise ValueError(f"the source model has no class {missing}; its classes are {list(source_classes)}")
    inputs = keras.Input(shape=source.input_shape[1:], dtype="uint8", name=INPUT_NAME)
    subset = ClassSubset(indices=[list(source_classes).index(c) for c in target_classes], name=OUTPUT_NAME)
    return keras.Model(inputs, subset(source(inputs)), name="source_as_classifier")

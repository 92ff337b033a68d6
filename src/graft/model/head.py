"""The new head grafted onto a base: pooling, optional hidden layers, dropout, a softmax."""

from __future__ import annotations

import keras
from keras import layers

from graft.export.contract import OUTPUT_NAME

POOL_NAME = "head_pool"
HEAD_NAME = "head"


def initializer(name: str, activation: str, seed: int):
    """``auto``: He for the ReLU family, LeCun for SELU (self-normalising), Glorot otherwise."""
    if name == "auto":
        name = {"selu": "lecun_normal", "tanh": "glorot_uniform"}.get(activation, "he_normal")
    return keras.initializers.get({"class_name": name, "config": {"seed": seed}})


def build_head(*, features: int, num_classes: int, head, seed: int) -> keras.Model:
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
    outputs = layers.Dense(num_classes, activation="softmax", name=OUTPUT_NAME, dtype="float32",  # any precision
                           kernel_initializer=keras.initializers.GlorotUniform(seed=seed))(x)
    return keras.Model(inputs, outputs, name=HEAD_NAME)


def pooling(kind: str) -> layers.Layer:
    return layers.GlobalAveragePooling2D(name=POOL_NAME) if kind == "avg" else layers.Flatten(name=POOL_NAME)

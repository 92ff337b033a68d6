"""Mixed precision (params.yaml ``precision``): the Keras dtype policy every training stage builds
its model under, and a copy of a model computing in another policy (the export's float32 model).

Under ``mixed_bfloat16`` / ``mixed_float16`` the layers compute in 16 bits and keep float32
variables; the softmax outputs (and the autoencoder's reconstruction) are built float32, so the
probabilities and the loss are float32 whatever the policy (Keras' own advice for mixed precision).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import keras
from keras import layers

from graft.export.contract import OUTPUT_NAME

FLOAT32 = "float32"
# the layers built float32 under every policy (head.py, build.py, autoencoder.py): the softmax
# outputs and the autoencoder's reconstruction, so probabilities and losses are float32
FLOAT32_LAYERS = frozenset({OUTPUT_NAME, "source_head", "decoder_pixels", "decoder_resize"})


@contextlib.contextmanager
def policy(name: str) -> Iterator[None]:
    """Layers made inside compute in ``name`` (a Keras dtype policy), unless they say otherwise."""
    old = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(old)


def cast(model: keras.Model, name: str) -> keras.Model:
    """A copy of ``model`` with the same weights whose layers compute in ``name`` (a policy), but
    :data:`FLOAT32_LAYERS`, which stay float32: a loaded model trained in another precision, or
    the float32 inference model the export converts from a mixed-precision one."""

    def clone(layer):
        config = layer.get_config()
        if not isinstance(layer, layers.InputLayer) and "dtype" in config:
            config["dtype"] = FLOAT32 if layer.name in FLOAT32_LAYERS else name
        return layer.__class__.from_config(config)

    with policy(name):  # the models holding the layers too
        copy = keras.models.clone_model(model, clone_function=clone, recursive=True)
    copy.set_weights(model.get_weights())
    for layer in copy._flatten_layers():
        if isinstance(layer, layers.Normalization):
            layer.finalize_state()  # set_weights does not refresh the constants it derives from its weights
    return copy

"""Stage ``scratch``: the honest baseline. The transfer model's architecture with random
weights, trained on the same train split for the same number of epochs
(``head.epochs + finetune.epochs``) at ``head.lr``, everything trainable.

Its BatchNorm layers use momentum 0.9: a small set gives a few steps an epoch, and with Keras'
default 0.99 the moving statistics barely leave their initial values, so the model predicts one
class at test time. That collapse is a bug in a baseline, not a result, so the stage refuses
to report one (:class:`Collapsed`).
"""

from __future__ import annotations

import keras
import numpy as np

from graft import metrics, model as graft_model, splits, training
from graft.atomic import write_json
from graft.bases import KINDS, application, compact_cnn
from graft.config import Params

BATCHNORM_MOMENTUM = 0.9


def scratch_model(params: Params, *, num_classes: int, seed: int) -> keras.Model:
    """The transfer model's architecture (adapter, base, dropout, softmax), random weights, all trainable."""
    kind = KINDS[params.base.kind]
    image = params.image
    inputs = graft_model.pixel_input(params)
    if kind.application is None:
        size, channels = (image.height, image.width), image.channels
        base = compact_cnn(input_shape=(*size, channels), filters=params.base.filters,
                           convs_per_block=params.base.convs_per_block, seed=seed)
    else:
        size, channels = (params.base.input_size,) * 2, kind.channels
        base = application(kind=params.base.kind, size=params.base.input_size, weights="none")
    for layer in base.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = BATCHNORM_MOMENTUM
    x = graft_model.PixelAdapter(size=size, channels=channels, mode=kind.mode)(inputs)
    x = base(x)
    x = keras.layers.Dropout(params.head.dropout, seed=seed)(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name=graft_model.OUTPUT_NAME,
                                 kernel_initializer=keras.initializers.GlorotUniform(seed=seed))(x)
    return keras.Model(inputs, outputs, name="scratch")


def train_scratch(*, params: Params, train, valid, seed: int) -> keras.Model:
    training.seed_everything(seed)
    model = scratch_model(params, num_classes=len(params.data.target_classes), seed=seed)
    training.fit(model, train=train, valid=valid, epochs=params.head.epochs + params.finetune.epochs,
                 batch_size=params.head.batch_size, lr=params.head.lr)
    return model


def collapsed_to(probs: np.ndarray, classes) -> str | None:
    """The one class a collapsed model predicts for every image, else None."""
    predicted = np.unique(probs.argmax(axis=1))
    return classes[predicted[0]] if len(classes) > 1 and len(predicted) == 1 else None


def run(params: Params) -> None:
    out = params.paths.metrics / "scratch.json"
    if not params.scratch.enabled:
        write_json(out, {"enabled": False})
        print("scratch: disabled (scratch.enabled: false); no transfer lift is reported")
        return
    train, valid, test = (splits.load(params, name) for name in ("train", "valid", "test"))
    model = train_scratch(params=params, train=(train.x, train.y), valid=(valid.x, valid.y), seed=params.seed)
    probs = model.predict(test.x, batch_size=256, verbose=0)
    report = metrics.report(test.y, probs, params.data.target_classes)
    collapsed = collapsed_to(probs, params.data.target_classes)
    write_json(out, {"enabled": True, "epochs": params.head.epochs + params.finetune.epochs, "collapsed_to": collapsed,
                     **{k: v for k, v in report.items() if k != "confusion_matrix"}})
    if collapsed:
        print(f"scratch: WARNING: the baseline predicts only {collapsed!r} on the test split, so no transfer lift "
              "is reported. Give it more steps: more epochs (head.epochs + finetune.epochs) or a smaller "
              "head.batch_size.")
    else:
        print(f"scratch: same architecture from random weights, test accuracy {report['accuracy']:.4f} "
              f"({report['errors']} errors in {report['images']})")

"""Stage ``scratch``: the honest baseline. The transfer model's architecture with random
weights, trained on the same train split for the same number of epochs
(``head.epochs + finetune.epochs``, and at least ``head.min_steps + finetune.min_steps`` steps)
with the head phase's recipe, everything trainable.

Its BatchNorm layers use momentum 0.9: a small set gives a few steps an epoch, and with Keras'
default 0.99 the moving statistics barely leave their initial values, so the model predicts one
class at test time. A baseline that still collapses to one class is recorded as such, and
evaluate then reports no transfer lift instead of a flattering one.

The trained model is saved too (``paths.scratch_model``/model.keras): under ``strategy: scratch``
(or the advisor's "do not transfer") ``finetune`` passes it through as the final model. With
``scratch.enabled: false`` the folder is left empty.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import keras
import numpy as np

from graft import metrics, model as graft_model, splits, training
from graft.atomic import write_json
from graft.config import Params

BATCHNORM_MOMENTUM = 0.9


def model_file(params: Params) -> Path:
    """Where the scratch stage saves its model (finetune passes it through under strategy scratch)."""
    return params.paths.scratch_model / "model.keras"


def scratch_model(params: Params, *, num_classes: int, seed: int) -> keras.Model:
    """The transfer model's architecture (adapter, base, pooling, head), random weights, all trainable."""
    base, adapter = graft_model.build_base(params, weights="none", seed=seed)
    for layer in base.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = BATCHNORM_MOMENTUM
    return graft_model.assemble(input_shape=graft_model.pixel_input(params).shape[1:], adapter=adapter, base=base,
                                head=params.head, num_classes=num_classes, seed=seed, frozen=False, name="scratch")


def epochs(params: Params) -> int:
    return params.head.epochs + params.finetune.epochs


def train_scratch(*, params: Params, train, valid, seed: int) -> keras.Model:
    training.seed_everything(seed)
    model = scratch_model(params, num_classes=len(params.data.target_classes), seed=seed)
    recipe = dataclasses.replace(params.head, epochs=epochs(params),
                                 min_steps=params.head.min_steps + params.finetune.min_steps)
    training.fit(model, train=train, valid=valid, recipe=recipe, augment=params.augment, seed=seed)
    return model


def collapsed_to(probs: np.ndarray, classes) -> str | None:
    """The one class a collapsed model predicts for every image, else None."""
    predicted = np.unique(probs.argmax(axis=1))
    return classes[predicted[0]] if len(classes) > 1 and len(predicted) == 1 else None


def run(params: Params) -> None:
    out = params.paths.metrics / "scratch.json"
    model_file(params).unlink(missing_ok=True)  # no stale model survives a disabled run
    params.paths.scratch_model.mkdir(parents=True, exist_ok=True)
    if not params.scratch.enabled:
        write_json(out, {"enabled": False})
        print("scratch: disabled (scratch.enabled: false); no transfer lift is reported")
        return
    train, valid, test = (splits.load(params, name) for name in ("train", "valid", "test"))
    model = train_scratch(params=params, train=(train.x, train.y), valid=(valid.x, valid.y), seed=params.seed)
    training.save_model(model, model_file(params))
    probs = model.predict(test.x, batch_size=256, verbose=0)
    report = metrics.report(test.y, probs, params.data.target_classes)
    collapsed = collapsed_to(probs, params.data.target_classes)
    write_json(out, {"enabled": True, "epochs": epochs(params), "collapsed_to": collapsed,
                     **{k: v for k, v in report.items() if k != "confusion_matrix"}})
    if collapsed:
        print(f"scratch: WARNING: the baseline predicts only {collapsed!r} on the test split, so no transfer lift "
              "is reported. Give it more steps: more epochs (head.epochs + finetune.epochs) or a smaller "
              "head.batch_size.")
    else:
        print(f"scratch: same architecture from random weights, test accuracy {report['accuracy']:.4f} "
              f"({report['errors']} errors in {report['images']})")

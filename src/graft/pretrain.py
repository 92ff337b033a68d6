"""Stage ``pretrain``: model A, the source model whose base the target task reuses.

The default compact CNN is trained on the source task (Fashion-MNIST's 8 classes other than
the target's), as Hands-On ML ch. 11 does; a keras.applications base comes with its weights
(ImageNet, none, or a local file) and is saved as it is.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from graft import images, model as graft_model, training
from graft.atomic import write_json
from graft.bases import KINDS
from graft.config import Params


def holdout(n: int, *, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic train / validation indices."""
    order = np.random.default_rng(seed).permutation(n)
    cut = max(1, int(round(n * fraction)))
    return np.sort(order[cut:]), np.sort(order[:cut])


def pretrain(*, params: Params, source_dir: Path, backup: Path | None = None) -> tuple["graft_model.keras.Model", dict]:
    training.seed_everything(params.seed)
    source = graft_model.build_source_model(params)
    report: dict = {"base": params.base.kind, "weights": params.base.weights,
                    "base_params": int(source.get_layer("base").count_params())}
    if KINDS[params.base.kind].application is not None:
        return source, report
    shape = {"height": params.image.height, "width": params.image.width, "channels": params.image.channels}
    classes = params.data.source_classes
    data = images.load_folder(source_dir / "train", classes=classes, **shape)
    fit_idx, val_idx = holdout(len(data.y), fraction=params.pretrain.valid_fraction, seed=params.seed)
    p = params.pretrain
    result = training.fit(source, train=(data.x[fit_idx], data.y[fit_idx]), valid=(data.x[val_idx], data.y[val_idx]),
                          recipe=p, seed=params.seed, backup=backup)
    report.update(source_classes=list(classes), train_images=len(fit_idx), valid_images=len(val_idx),
                  best_epoch=result.best_epoch, valid_loss=result.best_val_loss,
                  valid_accuracy=result.history["val_accuracy"][result.best_epoch - 1])
    test = images.load_folder(source_dir / "test", classes=classes, **shape)
    if len(test.y):
        loss, accuracy = source.evaluate(test.x, test.y, batch_size=256, verbose=0)
        report.update(test_images=len(test.y), test_loss=float(loss), test_accuracy=float(accuracy))
    return source, report


def run(params: Params) -> None:
    backup = training.backup_dir(params.paths.backup, "pretrain", params.seed, params.image, params.base,
                                 params.pretrain, params.data.source_classes, params.paths.metrics / "ingest.json")
    source, report = pretrain(params=params, source_dir=params.paths.source, backup=backup)
    training.save_model(source, params.paths.source_model)
    write_json(params.paths.metrics / "pretrain.json", report)
    if "test_accuracy" in report:
        print(f"pretrain: source model on {len(report['source_classes'])} classes, "
              f"test accuracy {report['test_accuracy']:.4f} ({report['test_images']} images)")
    else:
        print(f"pretrain: {report['base']} base with weights={report['weights']}")

"""Stage ``train_head``: model B = a clone of A's base, frozen, under a new head; train the head.

With cached features (stage ``features``) the head alone is trained on them; otherwise the whole
model B is fit with its frozen base. Both give the same model (tests/test_engine.py).
"""

from __future__ import annotations

from pathlib import Path

from graft import features as cached_features, model as graft_model, splits, training
from graft.atomic import write_json
from graft.config import Augment, Head, Params
from graft.distribute import distributed


def train_head(*, source: "graft_model.keras.Model", train, valid, num_classes: int, head: Head, seed: int,
               augment: Augment | None = None, features: cached_features.Features | None = None,
               backup: Path | None = None):
    """Graft a head onto a frozen clone of ``source``'s base and fit it; ``source`` is unchanged.
    Given ``features`` (the frozen part's output for ``train`` and ``valid``), only the head is fit."""
    training.seed_everything(seed)
    model = graft_model.graft_head(source, num_classes=num_classes, head=head, seed=seed)
    if features is not None:
        result = training.fit(model.get_layer(graft_model.HEAD_NAME), train=features.train, valid=features.valid,
                              recipe=head, seed=seed, backup=backup)
    else:
        result = training.fit(model, train=train, valid=valid, recipe=head, augment=augment, seed=seed, backup=backup)
    return model, result


def source_as_classifier(params: Params) -> None:
    """``strategy: as_classifier``: the source model restricted to the target classes is the model;
    nothing is trained (finetune passes it through)."""
    model = graft_model.as_classifier(graft_model.load(params.paths.source_model),
                                      source_classes=params.data.source_classes, target_classes=params.data.target_classes)
    training.save_model(model, params.paths.head_model)
    training.write_empty_history(params.paths.plots / "head_history.csv", phase="head")
    write_json(params.paths.metrics / "head.json", {
        "strategy": "as_classifier", "trained": False, "epochs_run": 0, "trainable_params": 0,
        "reason": f"the source model's softmax over {len(params.data.source_classes)} classes, restricted to "
                  f"{list(params.data.target_classes)} and renormalised; no training"})
    print(f"train_head: strategy as_classifier: the source model restricted to {list(params.data.target_classes)}, "
          "untrained")


@distributed
def run(params: Params) -> None:
    if params.strategy == "as_classifier":
        source_as_classifier(params)
        return
    train, valid = splits.load(params, "train"), splits.load(params, "valid")
    h = params.head
    features = cached_features.load(params)
    backup = training.backup_dir(params.paths.backup, "train_head", params.paths.source_model,
                                 params.paths.split / "split.csv", h, params.augment, params.seed)
    model, result = train_head(source=graft_model.load(params.paths.source_model), train=(train.x, train.y),
                               valid=(valid.x, valid.y), num_classes=len(params.data.target_classes), head=h,
                               seed=params.seed, augment=params.augment, features=features, backup=backup)
    training.save_model(model, params.paths.head_model)
    training.write_history(params.paths.plots / "head_history.csv", result, phase="head")
    write_json(params.paths.metrics / "head.json", {
        "best_epoch": result.best_epoch, "epochs_run": len(result.history["loss"]), "valid_loss": result.best_val_loss,
        "valid_accuracy": result.history["val_accuracy"][result.best_epoch - 1],
        "cached_features": features is not None, "resumed_from_epoch": result.resumed_from,
        "trainable_params": int(sum(w.numpy().size for w in model.trainable_weights))})
    why = cached_features.why_not_cached(params) or "no cache for these inputs"
    how = "on cached features" if features is not None else f"through the frozen base ({why})"
    print(f"train_head: {how}; best epoch {result.best_epoch}/{h.epochs}, valid loss {result.best_val_loss:.4f}, "
          f"valid accuracy {result.history['val_accuracy'][result.best_epoch - 1]:.4f}")

"""Stage ``finetune``: unfreeze the top of the base (BatchNorm stays frozen), recompile at a low
learning rate, and continue from the head-phase weights."""

from __future__ import annotations

from pathlib import Path

from graft import model as graft_model, splits, training
from graft.atomic import write_json
from graft.distribute import distributed
from graft.bases import BASE_NAME
from graft.config import Augment, Finetune, Params
from graft.summary import read_json


def finetune(*, model: "graft_model.keras.Model", recipe: Finetune, lr: float, train, valid, seed: int,
             augment: Augment | None = None, backup: Path | None = None):
    """Fine-tune ``model`` (a head-phase model) in place; return the unfrozen layers and the fit."""
    training.seed_everything(seed)
    unfrozen = graft_model.unfreeze_top(model.get_layer(BASE_NAME), unfreeze=recipe.unfreeze)
    result = training.fit(model, train=train, valid=valid, recipe=recipe, lr=lr, augment=augment, seed=seed,
                          backup=backup)
    return unfrozen, result


@distributed
def run(params: Params) -> None:
    train, valid = splits.load(params, "train"), splits.load(params, "valid")
    f = params.finetune
    head_json = params.paths.metrics / "head.json"
    model = graft_model.load(params.paths.head_model)
    backup = training.backup_dir(params.paths.backup, "finetune", params.paths.head_model,
                                 params.paths.split / "split.csv", f, params.finetune_lr, params.augment, params.seed)
    unfrozen, result = finetune(model=model, recipe=f, lr=params.finetune_lr, train=(train.x, train.y),
                                valid=(valid.x, valid.y), seed=params.seed, augment=params.augment, backup=backup)
    training.save_model(model, params.paths.finetuned_model)
    head_epochs = read_json(head_json)["epochs_run"]
    training.write_history(params.paths.plots / "finetune_history.csv", result, phase="finetune",
                           first_epoch=head_epochs + 1)
    write_json(params.paths.metrics / "finetune.json", {
        "unfrozen_layers": unfrozen, "lr": params.finetune_lr, "best_epoch": result.best_epoch,
        "epochs_run": len(result.history["loss"]), "valid_loss": result.best_val_loss,
        "valid_accuracy": result.history["val_accuracy"][result.best_epoch - 1],
        "resumed_from_epoch": result.resumed_from,
        "trainable_params": int(sum(w.numpy().size for w in model.trainable_weights))})
    print(f"finetune: unfroze {unfrozen} at lr {params.finetune_lr:g}; best epoch {result.best_epoch}/{f.epochs}, "
          f"valid loss {result.best_val_loss:.4f}")

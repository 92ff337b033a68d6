"""Stage ``finetune``: unfreeze the top of the base (BatchNorm stays frozen), recompile at a low
learning rate, and continue from the head-phase weights.

How much is unfrozen is the plan ``advise`` recorded (``strategy``): the top part
(``finetune.unfreeze``), the top half, or all of the base. With feature extraction or the source
model as a classifier nothing is fine-tuned: the stage passes the head-phase model through
unchanged, says why, and still writes every output it declares, so the DVC graph stays the same
for every strategy. With ``scratch`` (do not transfer) it passes the scratch stage's model through
in the same way."""

from __future__ import annotations

import shutil
from pathlib import Path

from graft import advise, model as graft_model, splits, training
from graft.atomic import atomic_path, write_json
from graft.distribute import distributed
from graft.bases import BASE_NAME
from graft.config import Augment, ConfigError, Finetune, Params
from graft.scratch import model_file as scratch_model_file
from graft.summary import read_json


def finetune(*, model: "graft_model.keras.Model", recipe: Finetune, lr: float, train, valid, seed: int,
             augment: Augment | None = None, backup: Path | None = None, unfreeze: int | float | str | None = None):
    """Fine-tune ``model`` (a head-phase model) in place; return the unfrozen layers and the fit.
    ``unfreeze`` overrides ``recipe.unfreeze`` (the plan's depth: 0.5 for the top half, 1.0 for all)."""
    training.seed_everything(seed)
    depth = recipe.unfreeze if unfreeze is None else unfreeze
    unfrozen = graft_model.unfreeze_top(model.get_layer(BASE_NAME), unfreeze=depth)
    result = training.fit(model, train=train, valid=valid, recipe=recipe, lr=lr, augment=augment, seed=seed,
                          backup=backup)
    return unfrozen, result


def pass_through(params: Params, plan: advise.Plan) -> None:
    """Nothing to fine-tune: the head-phase model (or, under ``scratch``, the scratch stage's model)
    is the final model (a byte copy), with an empty history and a record of why."""
    if plan.strategy == "scratch":
        if not params.scratch.enabled:
            raise ConfigError("params.yaml: scratch.enabled: the plan is to train from scratch, but scratch.enabled is "
                              "false; set scratch.enabled: true, or choose another strategy")
        source, final = scratch_model_file(params), "the scratch stage's model (random init, not transferred)"
        if not source.is_file():
            raise FileNotFoundError(f"{source}: missing; run `graft scratch` (or `dvc repro`) first")
    else:
        source, final = params.paths.head_model, "the head-phase model"
    with atomic_path(params.paths.finetuned_model) as tmp:
        shutil.copyfile(source, tmp)
    training.write_empty_history(params.paths.plots / "finetune_history.csv", phase="finetune")
    reason = f"strategy {plan.strategy}: {plan.label}; {final} is the final model"
    write_json(params.paths.metrics / "finetune.json", {
        "strategy": plan.strategy, "fine_tuned": False, "reason": reason, "unfrozen_layers": [], "epochs_run": 0,
        "trainable_params": 0})
    print(f"finetune: nothing to fine-tune ({reason})")


@distributed
def run(params: Params) -> None:
    plan = advise.read_plan(params)
    if not plan.finetunes:
        pass_through(params, plan)
        return
    train, valid = splits.load(params, "train"), splits.load(params, "valid")
    f = params.finetune
    head_json = params.paths.metrics / "head.json"
    model = graft_model.load(params.paths.head_model)
    backup = training.backup_dir(params.paths.backup, "finetune", params.paths.head_model,
                                 params.paths.split / "split.csv", f, params.finetune_lr, params.augment, params.seed,
                                 str(plan.unfreeze))
    unfrozen, result = finetune(model=model, recipe=f, lr=params.finetune_lr, train=(train.x, train.y),
                                valid=(valid.x, valid.y), seed=params.seed, augment=params.augment, backup=backup,
                                unfreeze=plan.unfreeze)
    training.save_model(model, params.paths.finetuned_model)
    head_epochs = read_json(head_json)["epochs_run"]
    training.write_history(params.paths.plots / "finetune_history.csv", result, phase="finetune",
                           first_epoch=head_epochs + 1)
    write_json(params.paths.metrics / "finetune.json", {
        "strategy": plan.strategy, "fine_tuned": True, "unfreeze": plan.unfreeze, "unfrozen_layers": unfrozen,
        "lr": params.finetune_lr, "best_epoch": result.best_epoch,
        "epochs_run": len(result.history["loss"]), "valid_loss": result.best_val_loss,
        "valid_accuracy": result.history["val_accuracy"][result.best_epoch - 1],
        "resumed_from_epoch": result.resumed_from,
        "trainable_params": int(sum(w.numpy().size for w in model.trainable_weights))})
    print(f"finetune: {plan.label}: unfroze {unfrozen} at lr {params.finetune_lr:g}; best epoch {result.best_epoch}/{f.epochs}, "
          f"valid loss {result.best_val_loss:.4f}")

"""Stage ``finetune``: as the plan says, unfreeze the top of the base (BatchNorm stays frozen),
recompile at the lower rate and continue from the head-phase weights. A plan that fine-tunes
nothing passes its final model through (the head-phase model, or under ``scratch`` the scratch
stage's model) and still writes every output, so the DVC graph is the same for every strategy."""

from __future__ import annotations

import shutil

from graft import artifacts
from graft.data.load import load_split
from graft.files import atomic_path
from graft.model import precision
from graft.model.saved import load, save
from graft.records import FinetuneRecord
from graft.strategy.plan import read_plan
from graft.train.distribute import scope
from graft.train.fit import trainable_params
from graft.train.history import write_empty
from graft.train.recipe import finetune
from graft.train.resume import backup_dir


def pass_through(params, plan) -> None:
    p = params.paths
    final, what = ((artifacts.SCRATCH_MODEL, "the scratch stage's model (random init, not transferred)")
                   if plan.strategy == "scratch" else (artifacts.HEAD_MODEL, "the head-phase model"))
    with atomic_path(artifacts.FINETUNED_MODEL.path(p)) as tmp:
        shutil.copyfile(final.require(p), tmp)
    write_empty(artifacts.live_dir(artifacts.FINETUNE_LIVE, p))
    reason = f"strategy {plan.strategy}: {plan.label}; {what} is the final model"
    artifacts.FINETUNE.write(p, FinetuneRecord(strategy=plan.strategy, fine_tuned=False, reason=reason, unfrozen_layers=[],
                                               epochs_run=0, trainable_params=0))
    print(f"finetune: nothing to fine-tune ({reason})")


def run(params) -> None:
    p, plan = params.paths, read_plan(params)
    if not plan.finetunes:
        return pass_through(params, plan)
    with scope(params.distribute), precision.policy(params.precision):
        train, valid = load_split(params, "train"), load_split(params, "valid")
        model = precision.cast(load(artifacts.HEAD_MODEL.path(p)), params.precision)  # as train_head made it
        backup = backup_dir(p.backup, "finetune", artifacts.HEAD_MODEL.path(p), artifacts.SPLIT_TABLE.path(p),
                            params.finetune, params.finetune_lr, params.augment, params.seed, str(plan.unfreeze))
        unfrozen, result = finetune(model=model, recipe=params.finetune, lr=params.finetune_lr, unfreeze=plan.unfreeze,
                                    train=(train.x, train.y), valid=(valid.x, valid.y), seed=params.seed,
                                    augment=params.augment, backup=backup,
                                    live=artifacts.live_dir(artifacts.FINETUNE_LIVE, p))
        save(model, artifacts.FINETUNED_MODEL.path(p))
    artifacts.FINETUNE.write(p, FinetuneRecord(strategy=plan.strategy, fine_tuned=True, unfreeze=plan.unfreeze,
                                               unfrozen_layers=unfrozen, lr=params.finetune_lr,
                                               trainable_params=trainable_params(model), **result.record()))
    print(f"finetune: {plan.label}: unfroze {unfrozen} at lr {params.finetune_lr:g}; "
          f"{result.describe(params.finetune.epochs)}")

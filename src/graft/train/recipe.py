"""The transfer recipe, once: the stages, ``graft compare`` and the benchmarks all train through it.

1. head phase: graft a new head onto a frozen clone of model A's base (A is never changed) and
   train the head, on cached features when there are any;
2. fine-tuning, as the plan says: unfreeze the top of the base (BatchNorm stays frozen and in
   inference mode), recompile at the lower rate, continue from the head-phase weights;
3. the fair baseline: the same architecture from random weights, everything trainable, trained
   on the same images for the head and fine-tuning phases' epochs and steps together.

:func:`transfer` runs the whole recipe a plan describes (graft.strategy.plan) in memory; the
pipeline runs its phases as separate DVC stages with the same functions.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from graft.model.backbones import BASE_NAME
from graft.model.build import graft_head, scratch_model
from graft.model.head import HEAD_NAME
from graft.model.subset import as_classifier
from graft.model.surgery import unfreeze_top
from graft.train.fit import FitResult, fit, seed_everything


def train_head(*, source, train, valid, num_classes: int, head, seed: int, augment, features=None,
               backup: Path | None = None, live: Path | None = None):
    """Graft a head onto a frozen clone of ``source``'s base and fit it; ``source`` is unchanged.
    Given ``features`` (graft.train.features: the frozen part's output for ``train`` and
    ``valid``), only the head is fit. Returns (model B, the fit)."""
    seed_everything(seed)
    model = graft_head(source, num_classes=num_classes, head=head, seed=seed)
    if features is not None:
        result = fit(model.get_layer(HEAD_NAME), train=features.train, valid=features.valid, recipe=head, seed=seed,
                     backup=backup, live=live)
    else:
        result = fit(model, train=train, valid=valid, recipe=head, augment=augment, seed=seed, backup=backup, live=live)
    return model, result


def finetune(*, model, recipe, lr: float, unfreeze, train, valid, seed: int, augment, backup: Path | None = None,
             live: Path | None = None):
    """Fine-tune ``model`` (a head-phase model) in place, unfreezing ``unfreeze`` (the plan's
    depth) of its base; return the unfrozen layers and the fit."""
    seed_everything(seed)
    unfrozen = unfreeze_top(model.get_layer(BASE_NAME), unfreeze=unfreeze)
    result = fit(model, train=train, valid=valid, recipe=recipe, lr=lr, augment=augment, seed=seed, backup=backup, live=live)
    return unfrozen, result


def scratch_epochs(params) -> int:
    return params.head.epochs + params.finetune.epochs


def train_scratch(*, params, train, valid, seed: int, backup: Path | None = None, live: Path | None = None):
    """The fair baseline: the transfer model's architecture from random weights, trained with the
    head phase's recipe for both phases' epochs and steps. Returns (model, the fit)."""
    seed_everything(seed)
    model = scratch_model(params, num_classes=len(params.data.target_classes), seed=seed)
    recipe = params.head.model_copy(update={"epochs": scratch_epochs(params),
                                            "min_steps": params.head.min_steps + params.finetune.min_steps})
    return model, fit(model, train=train, valid=valid, recipe=recipe, augment=params.augment, seed=seed, backup=backup,
                        live=live)


@dataclass(frozen=True)
class Transfer:
    head: object  # the head-phase model (the source model as a classifier under as_classifier)
    final: object  # the model the plan ships
    head_fit: FitResult | None
    finetune_fit: FitResult | None
    unfrozen: list[str]


def source_as_classifier(params, source):
    """``strategy: as_classifier``: the source model restricted to the target classes, untrained,
    and why it needs no training."""
    model = as_classifier(source, source_classes=params.data.source_classes, target_classes=params.data.target_classes)
    return model, (f"the source model's softmax over {len(params.data.source_classes)} classes, restricted to "
                   f"{list(params.data.target_classes)} and renormalised; no training")


def transfer(*, params, plan, source, train, valid, seed: int, features=None) -> Transfer:
    """The whole recipe of ``plan`` on ``train`` / ``valid`` (arrays), in memory."""
    if plan.strategy == "as_classifier":
        model, _ = source_as_classifier(params, source)
        return Transfer(head=model, final=model, head_fit=None, finetune_fit=None, unfrozen=[])
    if plan.strategy == "scratch":
        model, result = train_scratch(params=params, train=train, valid=valid, seed=seed)
        return Transfer(head=model, final=model, head_fit=result, finetune_fit=None, unfrozen=[])
    model, head_fit = train_head(source=source, train=train, valid=valid, num_classes=len(params.data.target_classes),
                                 head=params.head, seed=seed, augment=params.augment, features=features)
    if not plan.finetunes:
        return Transfer(head=model, final=model, head_fit=head_fit, finetune_fit=None, unfrozen=[])
    head = _copy(model)
    unfrozen, finetune_fit = finetune(model=model, recipe=params.finetune, lr=params.finetune_lr, unfreeze=plan.unfreeze,
                                      train=train, valid=valid, seed=seed, augment=params.augment)
    return Transfer(head=head, final=model, head_fit=head_fit, finetune_fit=finetune_fit, unfrozen=unfrozen)


def _copy(model):
    """An independent copy with the same weights (fine-tuning changes the model in place)."""
    import keras

    clone = keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    return clone

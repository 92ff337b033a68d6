"""The whole of ``params.yaml`` (:class:`Params`) and the rules that span its sections."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import Field, model_validator

from graft import stages
from graft.config.sections import (
    Advisor,
    Augment,
    Base,
    Card,
    Data,
    Evaluate,
    Export,
    Finetune,
    Gate,
    Head,
    Image,
    ParamError,
    Paths,
    Pretrain,
    Scratch,
    Section,
    Split,
    Validate,
    _field,
)
from graft.model.kinds import layer_names

Strategy = Literal["auto", "feature_extraction", "finetune_top", "finetune_all", "as_classifier", "scratch"]
Distribute = Literal["none", "mirrored", "multi_worker"]
Precision = Literal["float32", "mixed_bfloat16", "mixed_float16"]  # Keras dtype policies (graft.model.precision)


def stage_names() -> list[str]:
    """The pipeline's stages: the modules of graft.stages, one per DVC stage (a test checks them
    against dvc.yaml)."""
    return stages.names()


class Params(Section):
    seed: int = _field("the one seed of every split, initialisation, shuffle and augmentation")
    distribute: Distribute = _field("tf.distribute for the training phases: none | mirrored (local devices) | "
                                    "multi_worker (TF_CONFIG)")
    precision: Precision = _field("the Keras dtype policy of every training stage: float32 | mixed_bfloat16 | "
                                  "mixed_float16 (16-bit compute, float32 weights, softmax and loss); the exported "
                                  "ONNX model is float32 either way")
    strategy: Strategy = _field("how much of the source model to reuse (docs/strategies.md); auto: the advisor decides")
    paths: Paths
    data: Data
    image: Image
    validate_: Validate = _field("the data gate (docs/data.md)", alias="validate")
    split: Split
    base: Base
    pretrain: Pretrain
    head: Head
    finetune: Finetune
    advisor: Advisor
    augment: Augment
    scratch: Scratch
    evaluate: Evaluate
    gate: Gate
    export: Export
    card: Card
    timeouts: dict[str, Annotated[int, Field(ge=1)]] = _field(
        "seconds each stage may run in the Prefect flow before its processes are killed, by stage")

    @property
    def finetune_lr(self) -> float:
        return self.finetune.lr if self.finetune.lr is not None else self.head.lr * self.finetune.lr_factor

    @model_validator(mode="after")
    def _across_sections(self):
        p = self
        if set(p.timeouts) != set(stages := stage_names()):
            missing, unknown = sorted(set(stages) - set(p.timeouts)), sorted(set(p.timeouts) - set(stages))
            key = f"timeouts.{(missing or unknown)[0]}"
            raise ParamError(key, f"missing (every stage needs one: {', '.join(stages)})" if missing
                             else f"no such stage; the stages are {', '.join(stages)}")
        shared = [c for c in p.data.target_classes if c in p.data.source_classes]
        if p.strategy == "as_classifier":
            missing = [c for c in p.data.target_classes if c not in shared]
            if missing:
                raise ParamError("strategy", f"as_classifier uses the source model as it is, but it was not trained on "
                                 f"{missing}; add them to data.source_classes, or choose another strategy")
            if p.base.kind != "compact_cnn" or p.pretrain.method != "supervised":
                raise ParamError("strategy", "as_classifier needs a source model with a classifier: base.kind "
                                 "compact_cnn pretrained with pretrain.method supervised")
        elif shared:
            raise ParamError("data.source_classes", f"shares {shared} with data.target_classes: the source task must be "
                             "another task, unless strategy is as_classifier (the source model used as it is)")
        if p.strategy == "scratch" and not p.scratch.enabled:
            raise ParamError("scratch.enabled", scratch_disabled("strategy: scratch in params.yaml", advised=False))
        if p.pretrain.method == "autoencoder" and p.base.kind != "compact_cnn":
            raise ParamError("pretrain.method", f"autoencoder pretrains the compact CNN; {p.base.kind} comes with its "
                             "own weights (set base.kind: compact_cnn or pretrain.method: supervised)")
        data, target = p.pretrain.data.resolve(), p.paths.target.resolve()
        if p.pretrain.method == "autoencoder" and data != target and (
                _inside(target, data) or any(_inside(data, target / held) for held in ("test", "valid"))):
            raise ParamError("pretrain.data", f"{p.pretrain.data} holds the target's test or valid images, which the "
                             "autoencoder must never see; give the target folder itself (its test/ and valid/ are left "
                             "out), a folder inside its train part, or a folder apart from it")
        _check_unfreeze(p)
        if p.finetune_lr >= p.head.lr:
            raise ParamError("finetune.lr", f"{p.finetune_lr} is not below head.lr ({p.head.lr}); fine-tuning needs a "
                             "lower learning rate")
        return self

    @property
    def validate(self) -> Validate:  # "validate" is a BaseModel method name; the field is validate_
        return self.validate_


def _check_unfreeze(p) -> None:
    """``finetune.unfreeze`` must name layers of the configured base (found at load time, not in finetune)."""
    unfreeze = p.finetune.unfreeze
    names = layer_names(kind=p.base.kind, filters=p.base.filters, convs_per_block=p.base.convs_per_block)
    if isinstance(unfreeze, str) and not any(name.startswith(unfreeze) for name in names):
        blocks = list(dict.fromkeys(m.group(1) for n in names if (m := re.match(r"(.*?block_?\d+[a-z]?)", n))))
        raise ParamError("finetune.unfreeze", f"{unfreeze!r} names no layer of the {p.base.kind} base; use a layer "
                         f"name prefix, its top blocks are {', '.join(blocks[-4:])}; or a number of top layers, or a "
                         "fraction")
    if isinstance(unfreeze, int) and unfreeze > len(names):
        raise ParamError("finetune.unfreeze", f"{unfreeze} top layers, but the {p.base.kind} base has {len(names)}")


def scratch_disabled(chosen_by: str, *, advised: bool) -> str:
    """The one refusal of a plan to ship the scratch model while ``scratch.enabled`` is false;
    ``advised``: the advisor chose it (strategy auto), so never advising it is a fix too."""
    never = "set advisor.scratch_below_gain: null (never advise it), " if advised else ""
    return (f"the plan is to train from scratch ({chosen_by}), but scratch.enabled is false; set scratch.enabled: "
            f"true, {never}or choose another strategy")


def _inside(path, parent) -> bool:
    path, parent = path.resolve(), parent.resolve()
    return path == parent or parent in path.parents

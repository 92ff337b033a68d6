"""What each strategy does, in one place: the :class:`Plan` that ``advise`` records and that
``finetune``, ``evaluate``, the summary, the model card and ``graft compare`` follow.

=====================  ========================================================================
strategy               what the pipeline ships
=====================  ========================================================================
feature_extraction     the head-phase model (base frozen); nothing is fine-tuned
finetune_top           the head-phase model with the top of the base fine-tuned (``unfreeze``)
finetune_all           the same with all of the base unfrozen (BatchNorm still frozen)
as_classifier          the source model restricted to the target classes, untrained
scratch                the scratch stage's model: the same network from random weights
=====================  ========================================================================
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from graft import artifacts
from graft.config.params import scratch_disabled
from graft.errors import ConfigError, MissingInput
from graft.records import PlanRecord

LABELS = {"feature_extraction": "feature extraction (head phase only)", "as_classifier": "the source model as it is",
          "finetune_all": "fine-tune all of the base",
          "scratch": "do not transfer: train from scratch (the scratch stage's model)"}


@dataclass(frozen=True)
class Plan:
    strategy: str  # feature_extraction | finetune_top | finetune_all | as_classifier | scratch
    unfreeze: int | float | str | None  # what finetune unfreezes; None: nothing is fine-tuned
    label: str

    @property
    def finetunes(self) -> bool:
        return self.unfreeze is not None

    @property
    def transfers(self) -> bool:
        """False when the shipped model is the scratch baseline: then there is no transfer lift."""
        return self.strategy != "scratch"

    def record(self) -> PlanRecord:
        return PlanRecord(**asdict(self))


def plan_for(strategy: str, *, top_part: int | float | str, top_half: float) -> Plan:
    """The plan of a strategy name; ``finetune_top_half`` is the advisor's ``finetune_top`` at ``top_half``."""
    if strategy in ("feature_extraction", "as_classifier", "scratch"):
        return Plan(strategy, None, LABELS[strategy])
    if strategy == "finetune_all":
        return Plan(strategy, 1.0, LABELS[strategy])
    if strategy == "finetune_top_half":
        return Plan("finetune_top", top_half, f"fine-tune the top half (unfreeze {top_half:g} of the base)")
    if strategy == "finetune_top":
        return Plan(strategy, top_part, f"fine-tune the top part (unfreeze {top_part!r})")
    raise ValueError(f"unknown strategy {strategy!r}")  # graft.config's Literal lets no other name through


def require_scratch(plan: Plan, *, params, chosen_by: str) -> None:
    if plan.strategy == "scratch" and not params.scratch.enabled:
        raise ConfigError(f"params.yaml: scratch.enabled: "
                          f"{scratch_disabled(chosen_by, advised=params.strategy == 'auto')}")


def read_plan(params) -> Plan:
    """The plan ``advise`` recorded for the current params (finetune follows it)."""
    record = artifacts.ADVICE.read(params.paths)
    if record.strategy != params.strategy:
        raise MissingInput(f"{artifacts.ADVICE.path(params.paths)} was written for strategy {record.strategy!r}, "
                           f"params.yaml says {params.strategy!r}; run `graft advise` (or `dvc repro`) again")
    plan = Plan(**record.plan.model_dump())
    require_scratch(plan, params=params, chosen_by=f"as {artifacts.ADVICE.path(params.paths)} records")
    return plan

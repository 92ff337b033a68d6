"""The advisor (stage ``advise``): how much of the source model to reuse, decided from measurements.

The teaching material's judgement (Hands-On ML ch. 11, the Keras transfer-learning guide)
depends on two things: how many labelled images the target task has, and how similar its
domain is to the source's. ``advise`` measures both and places the task in one of four
scenarios (docs/strategies.md), or advises against transfer altogether:

=========  ====================  =============================================
size       domain                strategy
=========  ====================  =============================================
small      similar               feature extraction: the head phase only
large      similar               fine-tune the top part (``finetune.unfreeze``)
small      different             fine-tune the top half (``advisor.top_half``)
large      different             fine-tune all of the base (BatchNorm still frozen)
any        worse than random     do not transfer: the scratch stage's model
=========  ====================  =============================================

- size: the smallest number of labelled training images of any class, against
  ``advisor.small_per_class``;
- similarity: the *probe gain*. A linear probe (graft.strategy.probe: L2-regularised softmax regression)
  is cross-validated on the train split twice: on the frozen source base's pooled features,
  and on the pooled features of the same architecture with random weights. The gain is the
  share of the random-feature probe's errors that the source's features remove (errors + 1
  each, so that tiny sets do not divide by zero); a random base is the reference because
  how separable a task is depends on the task as much as on the features. At or above
  ``advisor.similar_gain`` the domain counts as similar; below ``advisor.scratch_below_gain``,
  with at least ``advisor.min_error_gap`` more probe errors than the random base (near-perfect
  probes are coarse: 2 errors against 1 is a gain of -0.5),
  the source's features are worse than a random network's, and the same network trained from
  random weights (the ``scratch`` stage) is the answer.

With an explicit ``strategy`` the measurements are still taken and recorded, with what the
advisor would have chosen. ``finetune`` reads the plan from ``metrics/advice.json`` (graft.strategy.plan).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from graft.records import AdviceRecord
from graft.strategy.plan import Plan, plan_for, require_scratch

WORSE = "worse than random"  # the domain of a task the source's features separate worse than random features


@dataclass(frozen=True)
class Measurements:
    per_class: dict[str, int]  # labelled training images per class
    probe_accuracy: float  # cross-validated, on the source base's features
    random_probe_accuracy: float  # the same probe on a random base's features
    images: int  # images the probes were cross-validated on

    @property
    def min_per_class(self) -> int:
        return min(self.per_class.values())

    @property
    def errors(self) -> int:
        """The source-feature probe's errors (accuracies are right / images: whole errors)."""
        return round((1 - self.probe_accuracy) * self.images)

    @property
    def random_errors(self) -> int:
        return round((1 - self.random_probe_accuracy) * self.images)

    @property
    def probe_gain(self) -> float:
        """The share of the random-feature probe's errors the source's features remove (errors + 1 each)."""
        return 1 - (self.errors + 1) / (self.random_errors + 1)


SCENARIOS = {("small", "similar"): "feature_extraction", ("large", "similar"): "finetune_top",
             ("small", "different"): "finetune_top_half", ("large", "different"): "finetune_all",
             ("small", WORSE): "scratch", ("large", WORSE): "scratch"}


def below_scratch_gain(m: Measurements, advisor) -> bool:
    return advisor.scratch_below_gain is not None and m.probe_gain < advisor.scratch_below_gain


def scenario(m: Measurements, advisor) -> tuple[str, str]:
    size = "small" if m.min_per_class < advisor.small_per_class else "large"
    if m.probe_gain >= advisor.similar_gain:
        domain = "similar"
    elif below_scratch_gain(m, advisor) and m.errors - m.random_errors >= advisor.min_error_gap:
        domain = WORSE  # (a few more errors are no evidence to drop the source)
    else:
        domain = "different"
    return size, domain


def why_size(m: Measurements, advisor) -> str:
    small = m.min_per_class < advisor.small_per_class
    return (f"{m.min_per_class} labelled images in the smallest class, "
            f"{'below' if small else 'at least'} advisor.small_per_class={advisor.small_per_class}")


def threshold(m: Measurements, advisor) -> str:
    """The thresholds the probe gain met or missed, which placed the domain."""
    domain = scenario(m, advisor)[1]
    gap, below_scratch = m.errors - m.random_errors, f"below advisor.scratch_below_gain={advisor.scratch_below_gain}"
    if domain == "similar":
        return f"at least advisor.similar_gain={advisor.similar_gain:g}"
    if domain == WORSE:
        return (f"{below_scratch}, with {gap} more probe errors than the random base "
                f"(advisor.min_error_gap={advisor.min_error_gap})")
    if below_scratch_gain(m, advisor):
        return (f"{below_scratch} but with only {gap} more probe error(s) than the random base, fewer than "
                f"advisor.min_error_gap={advisor.min_error_gap}: too few images to drop the source; below "
                f"advisor.similar_gain={advisor.similar_gain:g}")
    return f"below advisor.similar_gain={advisor.similar_gain:g}" + (
        f" and at least advisor.scratch_below_gain={advisor.scratch_below_gain:g}"
        if advisor.scratch_below_gain is not None else "")


def why_domain(m: Measurements, advisor) -> str:
    return (f"the source's features remove {m.probe_gain:.0%} of a random base's linear-probe errors "
            f"(probe accuracy {m.probe_accuracy:.4f} against {m.random_probe_accuracy:.4f}), {threshold(m, advisor)}")


def decide(m: Measurements, advisor, *, top_part: int | float | str) -> tuple[Plan, str]:
    """The advisor's plan for measurements ``m`` and why."""
    size, domain = scenario(m, advisor)
    plan = plan_for(SCENARIOS[size, domain], top_part=top_part, top_half=advisor.top_half)
    return plan, f"{size} and {domain}: {why_size(m, advisor)}; {why_domain(m, advisor)}; so {plan.label}"


def advise(params, m: Measurements) -> AdviceRecord:
    """The record ``advise`` writes: measurements, scenario, the advisor's plan, the plan followed, why."""
    advised, why = decide(m, params.advisor, top_part=params.finetune.unfreeze)
    size, domain = scenario(m, params.advisor)
    if params.strategy == "auto":
        plan, reason = advised, why
    else:
        plan = plan_for(params.strategy, top_part=params.finetune.unfreeze, top_half=params.advisor.top_half)
        reason = f"strategy: {params.strategy} in params.yaml (the advisor would choose {advised.label}: {why})"
    require_scratch(plan, params=params, chosen_by=f"the advisor: {why}")
    return AdviceRecord(strategy=params.strategy, plan=plan.record(), advised=advised.record(),
                        advised_choice=SCENARIOS[size, domain], scenario={"size": size, "domain": domain}, reason=reason,
                        measurements={**asdict(m), "min_per_class": m.min_per_class,
                                      "probe_gain": round(m.probe_gain, 6), "errors": m.errors,
                                      "random_errors": m.random_errors},
                        thresholds=params.advisor.model_dump(mode="json"))

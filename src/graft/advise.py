"""Stage and command ``advise``: how much of the source model to reuse, decided from measurements.

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
- similarity: the *probe gain*. A linear probe (L2-regularised softmax regression, in NumPy)
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
advisor would have chosen. ``finetune`` reads the plan from ``metrics/advice.json``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from graft.atomic import write_json
from graft.config import Advisor, ConfigError, Params

ADVICE = "advice.json"


class ProbeError(ValueError):
    """The train split is too small to measure the task."""

LABELS = {"feature_extraction": "feature extraction (head phase only)", "as_classifier": "the source model as it is",
          "finetune_all": "fine-tune all of the base",
          "scratch": "do not transfer: train from scratch (the scratch stage's model)"}
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


@dataclass(frozen=True)
class Plan:
    strategy: str  # feature_extraction | finetune_top | finetune_all | as_classifier | scratch
    unfreeze: int | float | str | None  # what finetune unfreezes; None: nothing is fine-tuned
    label: str

    @property
    def finetunes(self) -> bool:
        return self.unfreeze is not None


def plan_for(strategy: str, *, top_part: int | float | str, top_half: float = 0.5) -> Plan:
    """The plan of a strategy name; ``finetune_top_half`` is the advisor's ``finetune_top`` at ``top_half``."""
    if strategy in ("feature_extraction", "as_classifier", "scratch"):
        return Plan(strategy, None, LABELS[strategy])
    if strategy == "finetune_all":
        return Plan(strategy, 1.0, LABELS[strategy])
    if strategy == "finetune_top_half":
        return Plan("finetune_top", top_half, f"fine-tune the top half (unfreeze {top_half:g} of the base)")
    if strategy == "finetune_top":
        return Plan(strategy, top_part, f"fine-tune the top part (unfreeze {top_part!r})")
    raise ValueError(f"unknown strategy {strategy!r}")


SCENARIOS = {("small", "similar"): "feature_extraction", ("large", "similar"): "finetune_top",
             ("small", "different"): "finetune_top_half", ("large", "different"): "finetune_all",
             ("small", WORSE): "scratch", ("large", WORSE): "scratch"}


def below_scratch_gain(m: Measurements, advisor: Advisor) -> bool:
    return advisor.scratch_below_gain is not None and m.probe_gain < advisor.scratch_below_gain


def scenario(m: Measurements, advisor: Advisor) -> tuple[str, str]:
    size = "small" if m.min_per_class < advisor.small_per_class else "large"
    if m.probe_gain >= advisor.similar_gain:
        domain = "similar"
    elif below_scratch_gain(m, advisor) and m.errors - m.random_errors >= advisor.min_error_gap:
        domain = WORSE  # (a few more errors are no evidence to drop the source)
    else:
        domain = "different"
    return size, domain


def decide(m: Measurements, advisor: Advisor, *, top_part: int | float | str) -> tuple[Plan, str]:
    """The advisor's plan for measurements ``m`` and why."""
    size, domain = scenario(m, advisor)
    plan = plan_for(SCENARIOS[size, domain], top_part=top_part, top_half=advisor.top_half)
    why_size = (f"{m.min_per_class} labelled images in the smallest class, "
                f"{'below' if size == 'small' else 'at least'} advisor.small_per_class={advisor.small_per_class}")
    gap, below_scratch = m.errors - m.random_errors, f"below advisor.scratch_below_gain={advisor.scratch_below_gain}"
    if domain == "similar":
        threshold = f"at least advisor.similar_gain={advisor.similar_gain:g}"
    elif domain == WORSE:
        threshold = (f"{below_scratch}, with {gap} more probe errors than the random base "
                     f"(advisor.min_error_gap={advisor.min_error_gap})")
    elif below_scratch_gain(m, advisor):
        threshold = (f"{below_scratch} but with only {gap} more probe error(s) than the random base, fewer than "
                     f"advisor.min_error_gap={advisor.min_error_gap}: too few images to drop the source; below "
                     f"advisor.similar_gain={advisor.similar_gain:g}")
    else:
        threshold = f"below advisor.similar_gain={advisor.similar_gain:g}" + (
            f" and at least advisor.scratch_below_gain={advisor.scratch_below_gain:g}"
            if advisor.scratch_below_gain is not None else "")
    why_domain = (f"the source's features remove {m.probe_gain:.0%} of a random base's linear-probe errors "
                  f"(probe accuracy {m.probe_accuracy:.4f} against {m.random_probe_accuracy:.4f}), {threshold}")
    return plan, f"{size} and {domain}: {why_size}; {why_domain}; so {plan.label}"


# --- the linear probe -------------------------------------------------------------------------

def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def fit_softmax(x: np.ndarray, y: np.ndarray, *, classes: int, l2: float, steps: int = 500) -> tuple[np.ndarray, ...]:
    """Multinomial logistic regression by full-batch gradient descent (convex, so deterministic
    and seed-free); step size 1/L from the largest singular value of ``x``."""
    n, d = x.shape
    onehot = np.eye(classes)[y]
    w, b = np.zeros((d, classes)), np.zeros(classes)
    lipschitz = 0.5 * (np.linalg.norm(x, 2) ** 2 + n) / n + l2
    lr = 1.0 / lipschitz
    for _ in range(steps):
        error = (_softmax(x @ w + b) - onehot) / n
        w -= lr * (x.T @ error + l2 * w)
        b -= lr * error.sum(axis=0)
    return w, b


def folds_of(y: np.ndarray, *, folds: int, seed: int) -> np.ndarray:
    """A stratified fold number per sample: each class shuffled (seeded), then dealt round-robin."""
    rng = np.random.default_rng(seed)
    fold = np.empty(len(y), dtype=int)
    for k in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == k))
        fold[members] = np.arange(len(members)) % folds
    return fold


def probe_accuracy(x: np.ndarray, y: np.ndarray, *, folds: int = 5, l2: float = 0.01, seed: int = 0) -> float:
    """Cross-validated accuracy of a linear probe on features ``x`` (standardised on each
    training fold). ``folds`` is capped by the smallest class's size."""
    x = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    y = np.asarray(y)
    classes = int(y.max()) + 1
    smallest = int(np.bincount(y, minlength=classes).min())
    if smallest < 2:
        raise ProbeError(f"advise: the linear probe needs at least 2 training images per class; the smallest class "
                         f"has {smallest} (give the split more train images: split.train_fraction or train_per_class)")
    fold = folds_of(y, folds=min(folds, smallest), seed=seed)
    right = 0
    for f in np.unique(fold):
        train, held = fold != f, fold == f
        mean, std = x[train].mean(axis=0), x[train].std(axis=0) + 1e-6
        w, b = fit_softmax((x[train] - mean) / std, y[train], classes=classes, l2=l2)
        right += int((((x[held] - mean) / std @ w + b).argmax(axis=1) == y[held]).sum())
    return right / len(y)


# --- measuring a task -------------------------------------------------------------------------

def random_features(params: Params, x: np.ndarray, *, seed: int) -> np.ndarray:
    """Pooled features of ``x`` through the same adapter and base architecture with random weights."""
    import keras

    from graft import model as graft_model

    base, adapter = graft_model.build_base(params, weights="none", seed=seed)
    inputs = graft_model.pixel_input(params)
    pooled = graft_model.pooling(params.head.pooling)(base(adapter(inputs), training=False))
    return keras.Model(inputs, pooled).predict(x, batch_size=256, verbose=0)


def measure(*, params: Params, features: np.ndarray, random: np.ndarray, y: np.ndarray) -> Measurements:
    """Measurements of a target task from the source base's and a random base's features of its train split."""
    a = params.advisor
    counts = np.bincount(y, minlength=len(params.data.target_classes))
    return Measurements(per_class={c: int(n) for c, n in zip(params.data.target_classes, counts)},
                        probe_accuracy=probe_accuracy(features, y, folds=a.probe_folds, l2=a.probe_l2, seed=params.seed),
                        random_probe_accuracy=probe_accuracy(random, y, folds=a.probe_folds, l2=a.probe_l2,
                                                             seed=params.seed),
                        images=len(y))


def advise(params: Params, m: Measurements) -> dict:
    """The record ``advise`` writes: measurements, scenario, the advisor's plan, the plan followed, why."""
    advised, why = decide(m, params.advisor, top_part=params.finetune.unfreeze)
    size, domain = scenario(m, params.advisor)
    if params.strategy == "auto":
        plan, reason = advised, why
    else:
        plan = plan_for(params.strategy, top_part=params.finetune.unfreeze)
        reason = f"strategy: {params.strategy} in params.yaml (the advisor would choose {advised.label}: {why})"
    if plan.strategy == "scratch" and not params.scratch.enabled:  # explicit scratch is refused by graft.config
        raise ConfigError(f"params.yaml: scratch.enabled: the advisor chose to train from scratch ({why}), but "
                          "scratch.enabled is false; set scratch.enabled: true, or set advisor.scratch_below_gain: null "
                          "(never advise it), or choose an explicit strategy")
    return {"strategy": params.strategy, "plan": asdict(plan), "advised": asdict(advised),
            "advised_choice": SCENARIOS[size, domain],
            "scenario": {"size": size, "domain": domain}, "reason": reason,
            "measurements": {**asdict(m), "min_per_class": m.min_per_class, "probe_gain": round(m.probe_gain, 6),
                             "errors": m.errors, "random_errors": m.random_errors},
            "thresholds": asdict(params.advisor)}


def read_plan(params: Params) -> Plan:
    """The plan ``advise`` recorded for the current params (finetune follows it)."""
    path = params.paths.metrics / ADVICE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing; run `graft advise` (or `dvc repro`) first")
    record = json.loads(path.read_text())
    if record["strategy"] != params.strategy:
        raise FileNotFoundError(f"{path} was written for strategy {record['strategy']!r}, params.yaml says "
                                f"{params.strategy!r}; run `graft advise` (or `dvc repro`) again")
    return Plan(**record["plan"])


def run(params: Params) -> None:
    from graft import features as cached_features, model as graft_model, splits

    train = splits.load(params, "train")
    cached = cached_features.load(params)
    if cached is not None:
        ours = cached.train[0]
    else:  # augmentation on or caching off: run the frozen base over the train split here
        model = graft_model.graft_head(graft_model.load(params.paths.source_model),
                                       num_classes=len(params.data.target_classes), head=params.head, seed=params.seed)
        ours = cached_features.extract(graft_model.feature_extractor(model), train.x)[0]
    m = measure(params=params, features=ours, random=random_features(params, train.x, seed=params.seed), y=train.y)
    record = advise(params, m)
    write_json(params.paths.metrics / ADVICE, record)
    print(json.dumps({k: record[k] for k in ("strategy", "scenario", "measurements")}, indent=2))
    print(f"advise: {record['reason']}")
    print(f"advise: plan: {record['plan']['label']} (recorded in {Path(params.paths.metrics) / ADVICE})")

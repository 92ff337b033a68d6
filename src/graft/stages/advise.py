"""Stage ``advise``: measure the task and record the plan (how much of the source model to reuse)."""

from __future__ import annotations

from graft import artifacts
from graft.data.load import load_split
from graft.model.build import graft_head
from graft.model.saved import load
from graft.model.surgery import feature_extractor
from graft.strategy.advisor import advise, threshold, why_size
from graft.strategy.measure import measure, random_features
from graft.train import features


def run(params) -> None:
    train = load_split(params, "train")
    cached = features.load(params)
    if cached is not None:
        ours = cached.train[0]
    else:  # augmentation on or caching off: run the frozen base over the train split here
        model = graft_head(load(artifacts.SOURCE_MODEL.path(params.paths)), num_classes=len(params.data.target_classes),
                           head=params.head, seed=params.seed)
        ours = features.extract(feature_extractor(model), train.x)[0]
    m = measure(params=params, features=ours, random=random_features(params, train.x, seed=params.seed), y=train.y)
    record = advise(params, m)
    path = artifacts.ADVICE.write(params.paths, record)
    for line in summary(params, m, record):
        print(f"advise: {line}")
    print(f"advise: recorded in {path}")


def summary(params, m, record) -> list[str]:
    """A few lines for stdout: the scenario, the probe's measurements, the plan and why (the record
    holds it all, with the thresholds)."""
    a = params.advisor
    followed = ("the advisor's choice" if params.strategy == "auto" else
                f"strategy: {params.strategy} in params.yaml; the advisor would choose {record.advised.label}")
    return [f"scenario: {record.scenario['size']} and {record.scenario['domain']} ({why_size(m, a)})",
            f"linear probe ({a.probe_folds}-fold, {m.images} train images): {m.probe_accuracy:.4f} on the source's "
            f"features ({m.errors} errors), {m.random_probe_accuracy:.4f} on a random base's ({m.random_errors}); "
            f"gain {m.probe_gain:+.2f}, {threshold(m, a)}",
            f"plan: {record.plan.label} ({followed})"]

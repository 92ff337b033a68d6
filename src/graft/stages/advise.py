"""Stage ``advise``: measure the task and record the plan (how much of the source model to reuse)."""

from __future__ import annotations

from graft import artifacts
from graft.data.load import load_split
from graft.model.build import graft_head
from graft.model.saved import load
from graft.model.surgery import feature_extractor
from graft.strategy.advisor import advise
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
    print(f"advise: {m.images} labelled train images ({m.min_per_class} in the smallest class); linear probe "
          f"{m.probe_accuracy:.4f} on the source's features, {m.random_probe_accuracy:.4f} on a random base's "
          f"(gain {m.probe_gain:+.2f})")
    print(f"advise: {record.reason}")
    print(f"advise: plan: {record.plan.label} (recorded in {path})")

"""Stage ``features``: the frozen base's output for train and valid, computed once (DVC-cached)."""

from __future__ import annotations

from graft import artifacts
from graft.data.load import load_split
from graft.model import precision
from graft.model.saved import load
from graft.train.features import compute, why_not_cached, write


def run(params) -> None:
    features = speed = None
    if why_not_cached(params) is None:
        train, valid = load_split(params, "train"), load_split(params, "valid")
        with precision.policy(params.precision):  # the frozen base computes as train_head's will
            features, speed = compute(source=load(artifacts.SOURCE_MODEL.path(params.paths)), params=params,
                                      train=(train.x, train.y), valid=(valid.x, valid.y))
    record = write(params=params, out_dir=artifacts.FEATURES.path(params.paths), features=features)
    if record.cached:
        print(f"features: {record.train['images']} train and {record.valid['images']} valid images through the "
              f"frozen {record.base} base once ({record.shape} each, {speed:.0f} images/s)")
    else:
        print(f"features: not cached ({record.reason}); train_head runs the frozen base every epoch")

"""Stage ``train_head``: model B, a frozen clone of model A's base under a new head; train the head."""

from __future__ import annotations

from graft import artifacts
from graft.data.load import load_split
from graft.model import precision
from graft.model.saved import load, save
from graft.records import HeadRecord
from graft.train import features
from graft.train.distribute import scope
from graft.train.fit import trainable_params
from graft.train.history import write_empty
from graft.train.recipe import source_as_classifier, train_head
from graft.train.resume import backup_dir


def run(params) -> None:
    p, out = params.paths, artifacts.HEAD_MODEL.path(params.paths)
    live = artifacts.live_dir(artifacts.HEAD_LIVE, p)
    with scope(params.distribute), precision.policy(params.precision):
        source = load(artifacts.SOURCE_MODEL.path(p))
        if params.strategy == "as_classifier":  # nothing to train; finetune passes it through
            model, reason = source_as_classifier(params, source)
            save(model, out)
            write_empty(live)
            artifacts.HEAD.write(p, HeadRecord(strategy="as_classifier", trained=False, epochs_run=0, trainable_params=0,
                                               reason=reason))
            print(f"train_head: strategy as_classifier: {reason}")
            return
        train, valid = load_split(params, "train"), load_split(params, "valid")
        cached = features.load(params)
        backup = backup_dir(p.backup, "train_head", artifacts.SOURCE_MODEL.path(p), artifacts.SPLIT_TABLE.path(p),
                            params.head, params.augment, params.seed)
        model, result = train_head(source=source, train=(train.x, train.y), valid=(valid.x, valid.y),
                                   num_classes=len(params.data.target_classes), head=params.head, seed=params.seed,
                                   augment=params.augment, features=cached, backup=backup, live=live)
        save(model, out)
    artifacts.HEAD.write(p, HeadRecord(cached_features=cached is not None, trainable_params=trainable_params(model),
                                       **result.record()))
    how = ("on cached features" if cached is not None else
           f"through the frozen base ({features.why_not_cached(params) or 'no cache for these inputs'})")
    print(f"train_head: {how}; {result.describe(params.head.epochs)}")

"""Stage ``scratch``: the honest baseline, the transfer model's architecture trained from random
weights on the same images for the same epochs (graft.train.recipe). Its model is saved too:
under ``strategy: scratch`` (or the advisor's "do not transfer") finetune ships it. With
``scratch.enabled: false`` the folder is left empty."""

from __future__ import annotations

from graft import artifacts
from graft.data.load import load_split
from graft.evaluate.metrics import collapsed_to, report
from graft.model import precision
from graft.model.saved import save
from graft.records import Scores, ScratchRecord
from graft.train.history import write_empty
from graft.train.recipe import scratch_epochs, train_scratch


def run(params) -> None:
    p, model_file = params.paths, artifacts.SCRATCH_MODEL.path(params.paths)
    model_file.unlink(missing_ok=True)  # no stale model survives a disabled run
    artifacts.SCRATCH.path(p).mkdir(parents=True, exist_ok=True)
    live = artifacts.live_dir(artifacts.SCRATCH_LIVE, p)
    if not params.scratch.enabled:
        artifacts.SCRATCH_RECORD.write(p, ScratchRecord(enabled=False))
        write_empty(live)
        print("scratch: disabled (scratch.enabled: false); no transfer lift is reported")
        return
    train, valid, test = (load_split(params, name) for name in ("train", "valid", "test"))
    with precision.policy(params.precision):
        model, _ = train_scratch(params=params, train=(train.x, train.y), valid=(valid.x, valid.y), seed=params.seed,
                                 live=live)
    save(model, model_file)
    probs = model.predict(test.x, batch_size=256, verbose=0)
    scores = Scores(**{k: v for k, v in report(test.y, probs, params.data.target_classes).items()
                       if k != "confusion_matrix"})
    collapsed = collapsed_to(probs, params.data.target_classes)
    artifacts.SCRATCH_RECORD.write(p, ScratchRecord(enabled=True, epochs=scratch_epochs(params), collapsed_to=collapsed,
                                                    test=scores))
    if collapsed:
        print(f"scratch: WARNING: the baseline predicts only {collapsed!r} on the test split, so no transfer lift is "
              "reported. Give it more steps: more epochs (head.epochs + finetune.epochs) or a smaller head.batch_size.")
    else:
        print(f"scratch: same architecture from random weights, test accuracy {scores.accuracy:.4f} "
              f"({scores.errors} errors in {scores.images})")

"""Stage ``evaluate``: both phases' models on the test split; DVC metrics and plots, the pictures
and the transfer lift (the release gate is export's, where the model is published)."""

from __future__ import annotations

from graft import artifacts
from graft.data.load import load_split
from graft.evaluate import lift
from graft.evaluate.report import score, scores, write_plots
from graft.model.saved import load
from graft.records import MetricsRecord


def run(params) -> None:
    p = params.paths
    test = load_split(params, "test")
    models = {"head": load(artifacts.HEAD_MODEL.path(p)), "finetuned": load(artifacts.FINETUNED_MODEL.path(p))}
    reports, probs = score(models=models, x=test.x, y=test.y, classes=params.data.target_classes)
    record = MetricsRecord(**{name: scores(r) for name, r in reports.items()})
    artifacts.METRICS.write(p, record)
    tuned = artifacts.FINETUNE.read(p)
    gain = lift.transfer_lift(transferred=tuned.strategy != "scratch", why_not=tuned.reason or "",
                              scratch=artifacts.SCRATCH_RECORD.read(p), transfer_accuracy=record.finetuned.accuracy)
    artifacts.LIFT.write(p, gain)
    write_plots(params, test=test, reports=reports, probs=probs)
    for name, s in (("head", record.head), ("finetuned", record.finetuned)):
        print(f"evaluate: {name:9s} test accuracy {s.accuracy:.4f}, loss {s.loss:.4f}, macro-F1 {s.macro_f1:.4f}, "
              f"ECE {s.ece:.4f}, {s.errors} errors in {s.images} images")
    print(f"evaluate: {lift.describe(gain)}")

"""Stage ``evaluate``: both phases' models on the test split; DVC metrics and plots, the pictures,
the transfer lift and the release gate."""

from __future__ import annotations

from graft import artifacts, provenance
from graft.data.load import load_split
from graft.evaluate import gate, lift
from graft.evaluate.report import score, scores, write_plots
from graft.model.saved import load
from graft.records import BlessedRecord, MetricsRecord


def run(params) -> None:
    p, g = params.paths, params.gate
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
    previous = gate.read_record(p)
    decision = gate.decide(scores=record.finetuned, min_accuracy=g.min_accuracy, min_class_recall=g.min_class_recall,
                           max_regression=g.max_regression, previous=previous)
    artifacts.GATE.write(p, decision)
    if decision.blessed:
        previous = BlessedRecord(accuracy=record.finetuned.accuracy, per_class=record.finetuned.per_class,
                                 git_revision=provenance.git_revision(),
                                 data_hash=provenance.dvc_hash(artifacts.SPLIT.path(p)))
    artifacts.BLESSED.write(p, previous or BlessedRecord())  # the last blessed model stays the reference
    for name, s in (("head", record.head), ("finetuned", record.finetuned)):
        print(f"evaluate: {name:9s} test accuracy {s.accuracy:.4f}, loss {s.loss:.4f}, macro-F1 {s.macro_f1:.4f}, "
              f"ECE {s.ece:.4f}, {s.errors} errors in {s.images} images")
    print(f"evaluate: {lift.describe(gain)}")
    print("evaluate: gate: " + ("blessed" if decision.blessed else "NOT blessed: " + "; ".join(decision.reasons)))

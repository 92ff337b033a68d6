"""Stage ``evaluate``: both phases' models on the test split; DVC metrics and plots, the pictures
and the transfer lift with its uncertainty (Wilson intervals of the accuracies, an exact
McNemar test of the lift against the scratch model on the same images; the release gate is
export's, where the model is published)."""

from __future__ import annotations

from graft import artifacts
from graft.data.load import load_split
from graft.evaluate import lift
from graft.evaluate.report import interval, score, scores, write_plots
from graft.model.saved import load
from graft.model.tta import with_tta
from graft.records import MetricsRecord


def run(params) -> None:
    p, confidence, tta = params.paths, params.evaluate.confidence, params.evaluate.tta
    test = load_split(params, "test")
    models = {"head": with_tta(load(artifacts.HEAD_MODEL.path(p)), tta),
              "finetuned": with_tta(load(artifacts.FINETUNED_MODEL.path(p)), tta)}
    reports, probs = score(models=models, x=test.x, y=test.y, classes=params.data.target_classes)
    record = MetricsRecord(**{name: scores(r, confidence=confidence) for name, r in reports.items()})
    artifacts.METRICS.write(p, record)
    tuned, baseline = artifacts.FINETUNE.read(p), artifacts.SCRATCH_RECORD.read(p)
    gain = lift.transfer_lift(transferred=tuned.strategy != "scratch", why_not=tuned.reason or "",
                              scratch=baseline, transfer_accuracy=record.finetuned.accuracy)
    if gain.accuracy_points is not None:  # measured: on the same test images, is it more than chance?
        # the baseline scored here as the models above are (evaluate.tta), not as scratch.json records it
        scratch = with_tta(load(artifacts.SCRATCH_MODEL.require(p)), tta)
        scratch_correct = scratch.predict(test.x, batch_size=256, verbose=0).argmax(1) == test.y
        scratch_accuracy = round(float(scratch_correct.mean()), 6)  # as graft.evaluate.metrics.report rounds it
        gain = lift.lift(transfer=record.finetuned.accuracy, scratch=scratch_accuracy).model_copy(update={
            "scratch_interval": interval(accuracy=scratch_accuracy, images=len(test.y), confidence=confidence),
            "mcnemar": lift.mcnemar(transfer_correct=probs["finetuned"].argmax(1) == test.y,
                                    scratch_correct=scratch_correct, alpha=round(1 - confidence, 6))})
    artifacts.LIFT.write(p, gain)
    write_plots(params, test=test, reports=reports, probs=probs)
    for name, s in (("head", record.head), ("finetuned", record.finetuned)):
        print(f"evaluate: {name:9s} test accuracy {s.accuracy:.4f} ({s.accuracy_interval.span('.4f')}), loss "
              f"{s.loss:.4f}, macro-F1 {s.macro_f1:.4f}, ECE {s.ece:.4f}, {s.errors} errors in {s.images} images")
    print(f"evaluate: {lift.describe(gain)}")

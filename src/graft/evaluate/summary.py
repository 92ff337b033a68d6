"""The short summary ``make run`` ends with: data counts, both phases' test accuracy (with its
interval), the transfer lift and whether it is significant, the gate, the model, and where the
run's HTML report is."""

from __future__ import annotations

from graft import artifacts
from graft.data.load import split_counts
from graft.evaluate.lift import in_words


def summarize(params) -> str:
    p = params.paths
    ingest, pretrain, advice, scores, lift, gate, export = (
        a.read_or_none(p) for a in (artifacts.INGEST, artifacts.PRETRAIN, artifacts.ADVICE, artifacts.METRICS,
                                    artifacts.LIFT, artifacts.GATE, artifacts.EXPORT_RECORD))
    lines = ["", "graft summary", "============="]
    if ingest:
        lines.append(f"data:      {ingest.origin}")
    counts = split_counts(artifacts.SPLIT_TABLE.path(p))
    for split in artifacts.SPLITS:
        if split in counts:
            per_class = ", ".join(f"{c} {n}" for c, n in counts[split].items())
            lines.append(f"{split + ':':10s} {sum(counts[split].values()):6d} images ({per_class})")
    if pretrain and pretrain.test_accuracy is not None:
        lines.append(f"source:    {pretrain.base} on {len(pretrain.source_classes)} classes, "
                     f"test accuracy {pretrain.test_accuracy:.2%}")
    if advice:
        lines.append(f"strategy:  {advice.plan.label} ({'the advisor: ' if advice.strategy == 'auto' else ''}"
                     f"{advice.scenario['size']} and {advice.scenario['domain']}; {artifacts.ADVICE.path(p)})")
    final = "from scratch (shipped)" if lift and lift.not_transferred else "fine-tuned"
    if scores:
        for s, label in ((scores.head, "head phase (base frozen)"), (scores.finetuned, final)):
            ci = s.accuracy_interval
            span = f", {ci.span('.2%')}" if ci else ""
            lines.append(f"{label + ':':26s} test accuracy {s.accuracy:.2%} ({s.errors} errors in {s.images}{span})")
    if lift and lift.not_transferred:
        lines.append(f"{'transfer lift:':26s} none: {lift.unavailable}")
    elif lift and lift.unavailable:
        lines.append(f"{'scratch baseline:':26s} {lift.unavailable}; no transfer lift")
    elif lift:
        lines.append(f"{'scratch baseline:':26s} test accuracy {lift.scratch_accuracy:.2%} (same network, random "
                     f"weights); transfer {in_words(lift)}")
    if gate:
        lines.append("gate:      " + ("blessed" if gate.blessed else "NOT blessed: " + "; ".join(gate.reasons)))
    if export:
        lines.append(f"model:     {artifacts.MODEL_ONNX.path(p).resolve()} (onnxruntime matches Keras within "
                     f"{export.parity['max_abs_diff']:.1g} on {export.parity['images']} test images)")
        int8 = export.int8 or {}
        if int8.get("shipped"):
            lines.append(f"           {artifacts.MODEL_INT8.path(p).resolve()} (int8, test accuracy {int8['accuracy']:.2%})")
        elif int8:
            lines.append(f"           int8 not shipped: {int8['reason']}")
        lines.append(f"           {artifacts.MODEL_CARD.path(p).resolve()}, {artifacts.LABELS.path(p).resolve()}")
    pictures = [a.path(p) for a in artifacts.PICTURES]
    lines.append(f"pictures:  {pictures[0].resolve()}, " + ", ".join(q.name for q in pictures[1:]))
    if (report := artifacts.REPORT.path(p)).is_file():
        lines.append(f"report:    {report.resolve().as_uri()} (all of it, with the pictures and the model card)")
    return "\n".join(lines)

"""The run's report: one self-contained HTML page (``paths.report``) written by ``export``, the
stage that has every record of the run. It reads only what the stages wrote (graft.artifacts):
the data gate, the split, both phases' learning curves, test scores, confusion matrices,
calibration, the worst errors, the transfer lift, the gate, onnxruntime's parity and int8, and
the model card. Pictures are inlined as data: URIs and the CSS is inline; the page's Content
Security Policy forbids loading anything else, so it opens anywhere, offline, as one file.
"""

from __future__ import annotations

import base64
import csv
import html
import re
from datetime import datetime, timezone

import markdown

from graft import artifacts
from graft.data.load import split_counts
from graft.evaluate.lift import in_words
from graft.files import atomic_path

SECTIONS = {  # id -> heading, in page order (the test looks for each)
    "data": "Data gate and split", "training": "Learning curves", "scores": "Test scores",
    "confusion": "Confusion matrices", "calibration": "Calibration", "errors": "Worst errors",
    "lift": "Transfer lift over scratch", "gate": "Release gate", "export": "Export: parity and int8",
    "card": "Model card",
}
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"  # nothing loads but what is inline
STYLE = """
body{font:15px/1.45 system-ui,sans-serif;color:#222;max-width:1080px;margin:0 auto;padding:0 24px 48px}
header{margin-bottom:8px}h1{margin:20px 0 4px}h2{margin:32px 0 8px}
nav{display:flex;flex-wrap:wrap;gap:4px 14px;margin-bottom:12px}section{border-top:1px solid #eee}
table{border-collapse:collapse;margin:8px 0;display:block;overflow-x:auto;max-width:100%}
th,td{border:1px solid #ccc;padding:3px 9px;text-align:left}
td.n{text-align:right;white-space:nowrap;font-variant-numeric:tabular-nums}th{background:#f4f4f4}
img{max-width:100%;height:auto;display:block;margin:8px 0}code,pre{background:#f6f6f6;font-size:13px}
pre{padding:8px;overflow-x:auto}.ok{color:#11772d;font-weight:600}.bad{color:#b3261e;font-weight:600}
.muted{color:#666}#card{background:#fbfbfb}
"""


def _e(value) -> str:
    return html.escape(str(value))


def _pct(value) -> str:
    return "n/a" if value is None else f"{value:.2%}"


def _table(header, rows) -> str:
    """Cells are escaped; a number (or a cell that starts like one: 50.00%, 10/20) is right-aligned."""
    def cell(v):
        numeric = isinstance(v, int | float) or re.match(r"[-+]?\d", str(v))
        return f'<td class="n">{_e(v)}</td>' if numeric else f"<td>{_e(v)}</td>"
    return ("<table><tr>" + "".join(f"<th>{_e(h)}</th>" for h in header) + "</tr>"
            + "".join("<tr>" + "".join(cell(v) for v in row) + "</tr>" for row in rows) + "</table>")


def _verdict(ok: bool, yes: str, no: str) -> str:
    return f'<span class="ok">{_e(yes)}</span>' if ok else f'<span class="bad">{_e(no)}</span>'


def _picture(artifact, paths, alt: str) -> str:
    data = base64.b64encode(artifact.require(paths).read_bytes()).decode("ascii")
    return f'<img alt="{_e(alt)}" src="data:image/png;base64,{data}">'


def _findings(title: str, findings: list[dict]) -> str:
    if not findings:
        return f"<p>{_e(title)}: none.</p>"
    items = "".join(f"<li>{_e(f['why'])} ({f['count']} failing; fix: {_e(f['fix'])})"
                    + (f"<br><span class='muted'>{_e(', '.join(list(f['files'])[:10]))}"
                       f"{' ...' if len(f['files']) > 10 else ''}</span>" if f.get("files") else "") + "</li>"
                    for f in findings)
    return f"<p>{_e(title)}:</p><ul>{items}</ul>"


def data_section(paths, *, classes) -> str:
    gate, ingest = artifacts.VALIDATION_SUMMARY.read(paths), artifacts.INGEST.read_or_none(paths)
    counts = split_counts(artifacts.SPLIT_TABLE.require(paths))
    rows = [[s, *(counts.get(s, {}).get(c, 0) for c in classes), sum(counts.get(s, {}).values())]
            for s in artifacts.SPLITS]
    return (f"<p>{_verdict(gate.success, 'passed', 'failed')}: {gate.files} files in <code>{_e(gate.target)}</code>"
            f", {gate.decodable} decode, {gate.quarantined} "
            f"quarantined; usable per class: {_e(', '.join(f'{c} {n}' for c, n in gate.class_counts.items()))}. "
            f"Great Expectations Data Docs: <code>{_e(gate.data_docs)}</code>.</p>"
            + _findings("critical", gate.critical) + _findings("warnings (the run went on)", gate.warnings)
            + "<p>Images per split (content-hash split, <code>split.csv</code>):</p>"
            + _table(["split", *classes, "total"], rows)
            + (f"<p class='muted'>Fashion-MNIST (the source task) read from: {_e(ingest.origin)}.</p>" if ingest else ""))


def training_section(paths) -> str:
    advice, head, tuned = (a.read_or_none(paths) for a in (artifacts.ADVICE, artifacts.HEAD, artifacts.FINETUNE))
    rows = [[name, r.epochs_run, r.best_epoch if r.best_epoch is not None else "n/a",
             "n/a" if r.valid_accuracy is None else round(r.valid_accuracy, 4), r.trainable_params]
            for name, r in (("head phase (base frozen)", head), ("fine-tuning", tuned))
            if r is not None and getattr(r, "fine_tuned", True)]
    plan = f"<p>Strategy: {_e(advice.plan.label)} ({_e(advice.reason)}).</p>" if advice else ""
    if tuned is not None and not tuned.fine_tuned:
        plan += f"<p>Fine-tuning: nothing fine-tuned ({_e(tuned.reason)}).</p>"
    return (plan + _picture(artifacts.LEARNING_CURVES, paths, "learning curves of the head phase and fine-tuning")
            + _table(["phase", "epochs run", "best epoch (valid loss)", "valid accuracy there", "trainable params"],
                     rows))


def scores_section(scores, *, classes, scratch_shipped: bool) -> str:
    rows = []
    shipped = "from scratch (shipped)" if scratch_shipped else "fine-tuned (shipped)"
    for name, s in (("head phase", scores.head), (shipped, scores.finetuned)):
        ci = s.accuracy_interval
        rows.append([name, _pct(s.accuracy), ci.span(".2%") if ci else "n/a",
                     round(s.loss, 4), round(s.macro_f1, 4), round(s.ece, 4), f"{s.errors}/{s.images}",
                     *(f"{s.per_class[c].precision:.2f} / {s.per_class[c].recall:.2f}" for c in classes)])
    return _table(["model", "accuracy", "interval", "loss", "macro-F1", "ECE", "errors",
                   *(f"{c}: precision / recall" for c in classes)], rows)


def errors_section(paths) -> str:
    with open(artifacts.WORST_ERRORS.require(paths), newline="") as f:
        worst = list(csv.DictReader(f))
    table = (_table(["image", "true", "predicted", "confidence"],
                    [[r["path"], r["true"], r["predicted"], float(r["confidence"])] for r in worst[:10]])
             + (f"<p class='muted'>{len(worst) - 10} more in <code>{_e(artifacts.WORST_ERRORS.path(paths))}</code>.</p>"
                if len(worst) > 10 else "") if worst else "<p>The fine-tuned model makes no mistake on the test split.</p>")
    return _picture(artifacts.SAMPLES, paths, "test images: mistakes first, then the least confident") + table


def lift_section(lift, *, shipped) -> str:
    if lift.unavailable:
        return f"<p>No transfer lift: {_e(lift.unavailable)}.</p>"
    rows = [[name, _pct(acc), ci.span(".2%") if ci else "n/a"]
            for name, acc, ci in (("transfer (fine-tuned)", shipped.accuracy, shipped.accuracy_interval),
                                  ("scratch: the same network from random weights, same images and epochs",
                                   lift.scratch_accuracy, lift.scratch_interval))]
    return (_table(["model", "test accuracy", "interval"], rows)
            + f"<p>Transfer: <b>{_e(in_words(lift))}</b>.</p>")


def gate_section(gate) -> str:
    rows = [[name, "n/a" if "value" not in c else round(c["value"], 4),
             c.get("min", c.get("why", "")) if "previous" not in c else f"{c['previous']:.4f} - {c['max_regression']}",
             "ok" if c["ok"] else "FAILED"] for name, c in gate.checks.items()]
    return (f"<p>{_verdict(gate.blessed, 'blessed', 'NOT blessed')}"
            + "".join(f"<br>{_e(r)}" for r in gate.reasons) + "</p>"
            + _table(["check", "value", "threshold", "result"], rows)
            + ("<ul>" + "".join(f"<li>{_e(c)}</li>" for c in gate.consider) + "</ul>" if gate.consider else ""))


def export_section(paths, *, failure: str | None) -> str:
    if failure:
        before = (f"<code>{_e(artifacts.EXPORT.path(paths))}</code> still holds the last published model"
                  if artifacts.EXPORT_RECORD.path(paths).is_file() else "no model has been published yet")
        return f"<p>{_verdict(False, '', 'nothing published by this run')}: {_e(failure)}; {before}.</p>"
    record = artifacts.EXPORT_RECORD.read(paths)
    parity, int8 = record.parity, record.int8 or {}
    rows = [[f"model.onnx, batch {b.split('_')[1]}", f"{parity[b]['max_abs_diff']:.2g}", f"{parity[b]['same_top1']}/"
             f"{parity['images']}", _pct(parity[b].get("accuracy"))] for b in parity if b.startswith("batch_")]
    if "accuracy" in int8:
        rows.append(["model.int8.onnx", "", "", _pct(int8["accuracy"])])
    verdict = ("" if not int8 else f"int8: {'shipped as ' + artifacts.MODEL_INT8.name if int8.get('shipped') else 'not shipped'}"
               + (f", {int8['drop_points']:+.2f} points below float (limit {int8['max_drop_points']})"
                  if "drop_points" in int8 else "") + (f" ({int8['reason']})" if int8.get("reason") else "") + ".")
    return (f"<p>onnxruntime against Keras on {parity['images']} test images (tolerance {parity['tolerance']}): "
            f"{_verdict(True, 'match', '')}, max |diff| {parity['max_abs_diff']:.2g}. {_e(verdict)} "
            f"model_version {record.model_version}.</p>"
            + _table(["model", "max |diff| vs Keras", "same top-1", "test accuracy"], rows))


def card_section(paths, *, failure: str | None) -> str:
    path = artifacts.MODEL_CARD.path(paths)
    if failure or not path.is_file():
        return "<p>No model card: nothing was published.</p>"
    text = path.read_text()
    front = re.match(r"---\n(.*?)\n---\n", text, re.S)
    text = re.sub(r"^(#{1,4}) ", r"##\1 ", text[front.end():] if front else text, flags=re.M)  # under this h2
    body = markdown.markdown(text, extensions=["tables", "fenced_code"])
    meta = f"<details><summary>front matter (YAML)</summary><pre>{_e(front.group(1))}</pre></details>" if front else ""
    return f"<p class='muted'><code>{_e(path)}</code></p>" + meta + body


def render(params, *, failure: str | None = None) -> str:
    """The page. ``failure``: why this run published nothing (the gate refused, or a check failed)."""
    p, classes = params.paths, list(params.data.target_classes)
    scores, lift, gate = artifacts.METRICS.read(p), artifacts.LIFT.read(p), artifacts.GATE.read(p)
    body = {
        "data": data_section(p, classes=classes), "training": training_section(p),
        "scores": scores_section(scores, classes=classes, scratch_shipped=lift.not_transferred),
        "confusion": _picture(artifacts.CONFUSION_PNG, p, "confusion matrices of both phases"),
        "calibration": _picture(artifacts.RELIABILITY, p, "reliability diagram")
        + f"<p>Expected calibration error: head phase {scores.head.ece:.4f}, fine-tuned {scores.finetuned.ece:.4f} "
          "(0 is perfect).</p>",
        "errors": errors_section(p), "lift": lift_section(lift, shipped=scores.finetuned), "gate": gate_section(gate),
        "export": export_section(p, failure=failure), "card": card_section(p, failure=failure),
    }
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    title = f"graft report: {' vs '.join(classes)}"
    return ("<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
            f"<meta http-equiv='Content-Security-Policy' content=\"{CSP}\">"
            f"<meta name='viewport' content='width=device-width, initial-scale=1'><title>{_e(title)}</title>"
            f"<style>{STYLE}</style></head><body><header><h1>{_e(title)}</h1><p class='muted'>written by "
            f"<code>graft export</code> at {when}; gate {_verdict(gate.blessed, 'blessed', 'NOT blessed')}"
            f"{'; nothing published' if failure else ''}</p><nav>"
            + "".join(f"<a href='#{k}'>{_e(v)}</a>" for k, v in SECTIONS.items()) + "</nav></header>"
            + "".join(f"<section id='{k}'><h2>{_e(v)}</h2>{body[k]}</section>" for k, v in SECTIONS.items())
            + "</body></html>\n")


def write(params, *, failure: str | None = None) -> None:
    """Render the page and write it to ``paths.report`` atomically (ASCII: any other character as
    an HTML character reference, whatever the locale)."""
    with atomic_path(artifacts.REPORT.path(params.paths)) as tmp:
        tmp.write_bytes(render(params, failure=failure).encode("ascii", "xmlcharrefreplace"))

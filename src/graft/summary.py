"""The short summary ``make run`` ends with: data counts, both phases' test accuracy, the model."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from graft.config import Params


def read_json(path: Path) -> dict:
    """A run record, or {} when the stage that writes it has not run."""
    return json.loads(path.read_text()) if path.is_file() else {}


def split_counts(split_csv: Path) -> dict[str, dict[str, int]]:
    """Images per split and class, from the split stage's split.csv ({} before it ran)."""
    if not Path(split_csv).is_file():
        return {}
    table = pd.read_csv(split_csv, keep_default_na=False)
    table = table[table["split"].isin(["train", "valid", "test"])]  # not "" (unused) nor "excluded"
    return {s: {c: int(n) for c, n in g.groupby("class").size().items()} for s, g in table.groupby("split")}


def summarize(params: Params) -> str:
    m = params.paths.metrics
    ingest, pretrain, scores, gate = (read_json(m / f) for f in ("ingest.json", "pretrain.json", "metrics.json", "gate.json"))
    export = read_json(params.paths.export / "export.json")
    lines = ["", "graft summary", "============="]
    if ingest:
        lines.append(f"data:      {ingest['origin']}")
    counts = split_counts(params.paths.split / "split.csv")
    for split in ("train", "valid", "test"):
        if split in counts:
            per_class = ", ".join(f"{c} {n}" for c, n in counts[split].items())
            lines.append(f"{split + ':':10s} {sum(counts[split].values()):6d} images ({per_class})")
    if "test_accuracy" in pretrain:
        lines.append(f"source:    {pretrain['base']} on {len(pretrain['source_classes'])} classes, "
                     f"test accuracy {pretrain['test_accuracy']:.2%}")
    advice = read_json(m / "advice.json")
    if advice:
        lines.append(f"strategy:  {advice['plan']['label']} ({'the advisor: ' if advice['strategy'] == 'auto' else ''}"
                     f"{advice['scenario']['size']} and {advice['scenario']['domain']}; metrics/advice.json)")
    lift = scores.get("transfer_lift", {})
    final = "from scratch (shipped)" if lift.get("not_transferred") else "fine-tuned"
    for name, label in (("head", "head phase (base frozen)"), ("finetuned", final)):
        if name in scores:
            s = scores[name]
            lines.append(f"{label + ':':26s} test accuracy {s['accuracy']:.2%} ({s['errors']} errors in {s['images']})")
    if lift.get("not_transferred"):
        lines.append(f"{'transfer lift:':26s} none: {lift['unavailable']}")
    elif "unavailable" in lift:
        lines.append(f"{'scratch baseline:':26s} {lift['unavailable']}; no transfer lift")
    elif lift:
        lines.append(f"{'scratch baseline:':26s} test accuracy {lift['scratch_accuracy']:.2%} (same network, random "
                     f"weights); transfer {lift['accuracy_points']:+.2f} points")
    if gate:
        lines.append("gate:      " + ("blessed" if gate["blessed"] else "NOT blessed: " + "; ".join(gate["reasons"])))
    if export:
        folder = params.paths.export.resolve()
        lines.append(f"model:     {folder / 'model.onnx'} (onnxruntime matches Keras within "
                     f"{export['parity']['max_abs_diff']:.1g} on {export['parity']['images']} test images)")
        int8 = export.get("int8", {})
        if int8.get("shipped"):
            lines.append(f"           {folder / 'model.int8.onnx'} (int8, test accuracy {int8['accuracy']:.2%})")
        elif int8:
            lines.append(f"           int8 not shipped: {int8['reason']}")
        lines.append(f"           {folder / 'model_card.md'}, {folder / 'labels.json'}")
    lines.append(f"pictures:  {params.paths.plots.resolve()}/confusion.png, learning_curves.png, samples.png, "
                 "reliability.png")
    return "\n".join(lines)

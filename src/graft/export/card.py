"""The model card: a short Markdown page that travels with model.onnx, opening with Hugging
Face-style YAML front matter (license, tags, datasets, and ``model-index`` with the shipped
model's test metrics) that model hubs and their tools read."""

from __future__ import annotations

import json
from collections.abc import Mapping

import yaml

from graft import artifacts
from graft.evaluate.lift import in_words


def _pct(value) -> str:
    return f"{value:.2%}" if isinstance(value, int | float) else "n/a"


def _level(scores) -> str:
    ci = scores.finetuned.accuracy_interval
    return f"{ci.confidence:.0%} confidence" if ci else "not computed"


def front_matter(*, classes, shipped, card: Mapping) -> str:
    """The YAML block between ``---`` lines: ``card`` is params.yaml's ``card`` section,
    ``shipped`` the published model's test scores (graft.records.Scores)."""
    datasets = list(card["datasets"])
    metrics = [{"type": "accuracy", "value": shipped.accuracy, "name": "test accuracy"},
               {"type": "f1", "value": shipped.macro_f1, "name": "test macro-F1", "args": {"average": "macro"}}]
    if shipped.roc_auc is not None:
        metrics.append({"type": "roc_auc", "value": shipped.roc_auc, "name": "test ROC-AUC"})
    if shipped.top_5_accuracy is not None:
        metrics.append({"type": "top_5_accuracy", "value": shipped.top_5_accuracy, "name": "test top-5 accuracy"})
    meta = {"license": card["license"], "library_name": "onnx", "pipeline_tag": "image-classification",
            "tags": list(card["tags"]), **({"datasets": datasets} if datasets else {}),
            "model-index": [{"name": artifacts.MODEL_NAME, "results": [{
                "task": {"type": "image-classification", "name": "Image Classification"},
                "dataset": {"type": datasets[0] if datasets else "imagefolder",
                            "name": f"{datasets[0] if datasets else 'own images'}: {' vs '.join(classes)}",
                            "split": "test"},
                "metrics": metrics}]}]}
    return "---\n" + yaml.safe_dump(meta, sort_keys=False) + "---\n"


def render(*, classes, counts: Mapping[str, Mapping[str, int]], scores, lift, pretrain, finetune,
           provenance: Mapping[str, str], params: dict, input_spec: dict, int8: dict | None, gate=None) -> str:
    """``counts``: split -> class -> images; ``scores``, ``lift``, ``pretrain``, ``finetune`` and
    ``gate``: the records of those stages (graft.artifacts); ``params``: params.yaml as a mapping."""
    lines = [
        front_matter(classes=classes, shipped=scores.finetuned, card=params["card"]),
        "# Model card: graft image classifier", "",
        f"**Task**: classify an image as one of {', '.join(f'`{c}`' for c in classes)}.", "",
        "## Input and output", "",
        f"- input `{input_spec['name']}`: uint8 pixels 0-255, NHWC, "
        f"{input_spec['height']}x{input_spec['width']}x{input_spec['channels']}, any batch size; "
        f"resize bilinearly to that size after applying EXIF orientation (`graft predict` does this).",
        "- output `probabilities`: softmax over the classes, in the order above"
        + (" (the mean over the image and its mirror image: test-time augmentation is inside the model, "
           "`evaluate.tta: horizontal_flip`)." if params["evaluate"]["tta"] == "horizontal_flip" else "."), "",
        "## Data", "",
        "| split | " + " | ".join(classes) + " | total |",
        "|---|" + "---:|" * (len(classes) + 1),
    ]
    for split in ("train", "valid", "test"):
        row = counts.get(split, {})
        lines.append(f"| {split} | " + " | ".join(str(row.get(c, 0)) for c in classes) + f" | {sum(row.values())} |")
    lines += ["", f"Data version (DVC md5 of the split): `{provenance['data_hash']}`.", "",
              "## How it was made", ""]
    head, fine = params["head"], params["finetune"]
    if lift.not_transferred:
        lines.append(f"- not transferred: the base's architecture trained from random weights, every layer trainable, "
                     f"for up to {head['epochs'] + fine['epochs']} epochs at lr {head['lr']} (the `scratch` stage); "
                     f"the source model is not used. Why: {lift.unavailable}.")
    else:
        if pretrain.test_accuracy is not None:
            lines.append(f"- base: `{pretrain.base}` pretrained on the source task "
                         f"({len(pretrain.source_classes)} classes, {pretrain.train_images} images; "
                         f"source test accuracy {_pct(pretrain.test_accuracy)}).")
        else:
            lines.append(f"- base: `{pretrain.base}` with weights `{pretrain.weights}`.")
        lines.append(f"- phase 1: base frozen (BatchNorm in inference mode), new head trained for up to {head['epochs']} "
                     f"epochs at lr {head['lr']}; best epoch by validation loss kept.")
        if finetune.fine_tuned:
            lines.append(f"- phase 2: top of the base unfrozen from `{finetune.unfreeze}` ({len(finetune.unfrozen_layers)} "
                         f"layers; BatchNorm kept frozen), fine-tuned for up to {fine['epochs']} epochs at lr "
                         f"{finetune.lr:g}.")
        else:
            lines.append(f"- phase 2: nothing fine-tuned: {finetune.reason}.")
    lines += [
        f"- git revision `{provenance['git_revision']}`, params sha256 `{provenance['params_hash'][:16]}`, "
        f"graft {provenance['version']}.", "",
        "## Test results", "",
        "| model | accuracy | interval | loss | macro-F1 | ECE | errors | "
        + " | ".join(f"recall {c}" for c in classes) + " |",
        "|---|---:|---:|---:|---:|---:|---:|" + "---:|" * len(classes),
    ]
    shipped = "from scratch (shipped)" if lift.not_transferred else "fine-tuned (shipped)"
    head_label = "head phase (transfer, not shipped)" if lift.not_transferred else "head phase"
    for s, label in ((scores.head, head_label), (scores.finetuned, shipped)):
        ci = s.accuracy_interval
        span = f"{ci.low:.2%}-{ci.high:.2%}" if ci else "n/a"
        lines.append(f"| {label} | {_pct(s.accuracy)} | {span} | {s.loss:.4f} | {s.macro_f1:.4f} | {s.ece:.4f} | "
                     f"{s.errors}/{s.images} | " + " | ".join(_pct(s.per_class[c].recall) for c in classes) + " |")
    if lift.not_transferred:
        lines += ["", f"**Transfer lift**: none: {lift.unavailable}."]
    elif lift.unavailable:
        lines += ["", f"**Transfer lift**: not measured: {lift.unavailable}."]
    else:
        ratio = f" ({lift.error_reduction:.1f}x transfer's errors)" if lift.error_reduction else ""
        n_train = sum(counts.get("train", {}).values())
        lines += ["", f"**Transfer lift**: the same architecture trained from random weights on the same {n_train} "
                      f"images for the same epochs reaches {_pct(lift.scratch_accuracy)}{ratio}; transfer gains "
                      f"{in_words(lift)}. One seed: `graft compare --seeds N` gives the spread."]
    if gate is not None:
        lines += ["", "**Gate**: " + ("blessed (every threshold under `gate:` in params.yaml met)." if gate.blessed
                                      else "NOT blessed, published by explicit override: " + "; ".join(gate.reasons) + ".")]
    if int8:
        verdict = "shipped as `model.int8.onnx`" if int8.get("shipped") else f"not shipped: {int8.get('reason')}"
        lines += ["", f"int8 variant (static QDQ quantization): test accuracy {_pct(int8.get('accuracy'))}, {verdict}."]
    lines += ["", "## Intended use and limits", "",
              "- Made for images like the training data: same kind of subject, framing and colour.",
              "  Anything else (other classes, other domains) still gets one of the classes above, "
              "with no warning.",
              f"- Trained on {sum(counts.get('train', {}).values())} labelled images; the test figures above come from "
              f"{sum(counts.get('test', {}).values())} images and carry their sampling error (the intervals "
              f"above: Wilson, {_level(scores)}).",
              "- Confidence is only as calibrated as the ECE above says (0 is perfect; see reliability.png).", "",
              "## Parameters", "",
              "<details><summary>params.yaml as used</summary>", "", "```yaml",
              yaml.safe_dump(json.loads(json.dumps(params, default=str)), sort_keys=False).strip(),
              "```", "", "</details>", "",
              "<!-- machine-readable: -->",
              f"<!-- {json.dumps({'classes': list(classes), 'provenance': dict(provenance)})} -->", ""]
    return "\n".join(lines)

"""Stage ``export``: model.onnx (and int8), labels and the model card, published only after the
gate and onnxruntime's parity with Keras on the whole test split."""

from __future__ import annotations

import graft
from graft import artifacts, provenance
from graft.data.load import load_split, split_counts
from graft.export.publish import calibration_set, export
from graft.model.saved import load


def run(params) -> None:
    p, e = params.paths, params.export
    test, train = load_split(params, "test"), load_split(params, "train")
    scores, gate = artifacts.METRICS.read(p), artifacts.GATE.read(p)
    prov = {"version": graft.__version__, "git_revision": provenance.git_revision(),
            "data_hash": provenance.dvc_hash(artifacts.SPLIT.path(p)), "params_hash": provenance.params_hash(params)}
    extra = {**prov, "base": params.base.kind,
             "metrics": {name: {"accuracy": s.accuracy, "loss": s.loss}
                         for name, s in (("head", scores.head), ("finetuned", scores.finetuned))}}
    card = {"classes": params.data.target_classes, "counts": split_counts(artifacts.SPLIT_TABLE.path(p)),
            "scores": scores, "lift": artifacts.LIFT.read(p), "pretrain": artifacts.PRETRAIN.read(p),
            "finetune": artifacts.FINETUNE.read(p), "provenance": prov, "gate": gate,
            "params": params.model_dump(mode="json", by_alias=True)}
    calibration = calibration_set(train.x, seed=params.seed, count=e.calibration_images) if e.quantize else None
    record = export(model=load(artifacts.FINETUNED_MODEL.path(p)), out_dir=artifacts.EXPORT.path(p), test_x=test.x,
                    test_y=test.y, calibration=calibration, classes=params.data.target_classes, image=params.image,
                    settings=e, extra=extra, card_inputs=card, gate=gate)
    parity = record.parity
    print(f"export: {artifacts.MODEL_ONNX.path(p)}: onnxruntime matches Keras on {parity['images']} test images "
          f"at batch 1 and 32 (max |diff| {parity['max_abs_diff']:.2g})")
    if record.int8:
        q = record.int8
        print(f"export: int8 {'shipped as ' + artifacts.MODEL_INT8.name if q['shipped'] else 'not shipped'}"
              + (f", test accuracy {q['accuracy']:.4f} vs float {q['float_accuracy']:.4f}" if "accuracy" in q else "")
              + (f" ({q['reason']})" if not q["shipped"] else ""))

"""Stage ``export``: the release gate, then model.onnx (and int8), labels and the model card,
published only if the gate and onnxruntime's parity with Keras on the whole test split pass. The
gate compares with the registry's prod model; a blessed run goes there once it is committed
(``graft register``: GTO tags a commit, which a run inside ``dvc repro`` does not have yet).
Last, the run's HTML report, also when nothing was published (it says why)."""

from __future__ import annotations

import graft
from graft import artifacts, provenance
from graft.data.decode import Rules
from graft.data.load import load_split, split_counts
from graft.errors import GateRefused, GraftError
from graft.evaluate import gate, page
from graft.export.publish import calibration_set, export
from graft.model.saved import load
from graft.model.tta import with_tta


def run(params) -> None:
    p, e = params.paths, params.export
    test, train = load_split(params, "test"), load_split(params, "train")
    scores, test_data = artifacts.METRICS.read(p), provenance.tree_digest(artifacts.SPLIT.path(p) / "test")
    gain = artifacts.LIFT.read(p)
    decision = gate.check(params, scores=scores.finetuned, test_data=test_data, baseline=gain)
    print("export: gate: " + ("blessed" if decision.blessed else "NOT blessed: " + "; ".join(decision.reasons)))
    prov = {"version": graft.__version__, "git_revision": provenance.git_revision(),
            "data_hash": provenance.dvc_hash(artifacts.SPLIT.path(p)), "params_hash": provenance.params_hash(params)}
    extra = {**prov, "base": params.base.kind,
             "metrics": {name: {"accuracy": s.accuracy, "loss": s.loss}
                         for name, s in (("head", scores.head), ("finetuned", scores.finetuned))}}
    card = {"classes": params.data.target_classes, "counts": split_counts(artifacts.SPLIT_TABLE.path(p)),
            "scores": scores, "lift": gain, "pretrain": artifacts.PRETRAIN.read(p),
            "finetune": artifacts.FINETUNE.read(p), "provenance": prov, "gate": decision,
            "params": params.model_dump(mode="json", by_alias=True)}
    calibration = calibration_set(train.x, seed=params.seed, count=e.calibration_images) if e.quantize else None
    model = with_tta(load(artifacts.FINETUNED_MODEL.path(p)), params.evaluate.tta)  # the flip inside model.onnx too
    try:
        record = export(model=model, out_dir=artifacts.EXPORT.path(p), test_x=test.x, test_y=test.y,
                        calibration=calibration, classes=params.data.target_classes, image=params.image,
                        rules=Rules.of(params.validate), settings=e, extra=extra, card_inputs=card, gate=decision)
    except GraftError as err:  # refused or failed: nothing published; the report says why
        page.write(params, failure="the release gate refused the model" if isinstance(err, GateRefused) else str(err))
        print(f"export: report: {artifacts.REPORT.path(p)}")
        raise
    q = record.int8 or {}
    print(f"export: {artifacts.MODEL_ONNX.path(p)}: onnxruntime matches Keras on {record.parity['images']} test "
          f"images at batch 1 and 32 (max |diff| {record.parity['max_abs_diff']:.2g})"
          + (f"; int8 {'shipped as ' + artifacts.MODEL_INT8.name if q['shipped'] else 'not shipped'}" if q else "")
          + (f", test accuracy {q['accuracy']:.4f} vs float {q['float_accuracy']:.4f}" if "accuracy" in q else "")
          + (f" ({q['reason']})" if q and not q["shipped"] else ""))
    page.write(params)
    print(f"export: report: {artifacts.REPORT.path(p)}")

"""Export tier: the published folder, its metadata and its gates, on the tiny pipeline's model."""

from __future__ import annotations

import html
import json
import shutil
from datetime import datetime, timedelta, timezone

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import yaml

from graft.data.decode import Rules
from graft.errors import GateRefused, ParityError
from graft.export import contract as onnx_meta
from graft.export.int8_passes import pixels_as_quantized_input
from graft.export.parity import onnx_predict
from graft.export.publish import export, try_int8
from graft.export.quantize import quantize
from graft.model.saved import load
from graft.model.tta import with_tta
from graft.records import GateRecord
from tests.helpers import changed, optimized_ops, params

pytestmark = pytest.mark.slow


@pytest.fixture
def folder(tiny_project):
    return tiny_project / "models" / "export"


def test_folder_holds_what_consumers_need(folder):
    assert {p.name for p in folder.iterdir()} >= {"model.onnx", "labels.json", "model_card.md", "export.json"}
    labels = json.loads((folder / "labels.json").read_text())
    assert labels["classes"] == ["Sandal", "Shirt"] and labels["input"]["height"] == 28


def test_parity_was_checked_at_batch_1_and_32(folder):
    parity = json.loads((folder / "export.json").read_text())["parity"]
    for batch in ("batch_1", "batch_32"):
        assert parity[batch]["max_abs_diff"] <= 1e-4
        assert parity[batch]["same_top1"] == parity["images"] == 20


def test_int8_is_shipped_within_the_accuracy_budget(folder):
    int8 = json.loads((folder / "export.json").read_text())["int8"]
    assert int8["shipped"] and (folder / "model.int8.onnx").is_file()  # the tiny model loses nothing in int8
    assert int8["drop_points"] <= int8["max_drop_points"] and int8["accuracy"] == int8["float_accuracy"]
    assert int8["graph_passes"] == {"pixels_as_quantized_input": True, "pack_pixel_columns": True}
    assert onnx_meta.read(ort.InferenceSession(str(folder / "model.int8.onnx")))["precision"] == "int8"
    assert any(node.op_type == "QuantizeLinear" for node in onnx.load(str(folder / "model.int8.onnx")).graph.node)


def test_int8_beyond_the_accuracy_budget_is_not_shipped(tmp_path, folder, tiny_project):
    x = np.random.default_rng(0).integers(0, 256, (8, 28, 28, 1), dtype=np.uint8)
    y = onnx_predict(folder / "model.onnx", x, batch_size=8).argmax(1)
    report = try_int8(folder / "model.onnx", tmp_path / "int8.onnx", calibration=x, x=x, y=y, float_accuracy=1.0,
                      max_drop_points=-1.0)  # no budget at all: even an int8 model that loses nothing is refused
    assert not report["shipped"] and "limit -1.0" in report["reason"] and not (tmp_path / "int8.onnx").exists()


def test_int8_reads_the_uint8_pixels_as_a_quantized_tensor(tmp_path, folder):
    """The pixel scaling (Cast, x/255 and their Q/DQ pairs, run as a QLinearMul) is replaced by one
    DequantizeLinear of the raw pixels; the outputs do not change."""
    rng = np.random.default_rng(0)
    calibration = rng.integers(0, 256, (32, 28, 28, 1), dtype=np.uint8)  # spans 0 to 255
    plain, rewritten = tmp_path / "plain.onnx", tmp_path / "rewritten.onnx"
    quantize(folder / "model.onnx", plain, calibration=calibration, pixels_as_quantized=False)
    quantize(folder / "model.onnx", rewritten, calibration=calibration, pack_columns=False)
    before = [n.op_type for n in onnx.load(str(plain)).graph.node]
    graph = onnx.load(str(rewritten)).graph
    after = [n.op_type for n in graph.node]
    assert {"Cast", "Mul"} <= set(before) and not {"Cast", "Mul"} & set(after)
    assert len(after) < len(before)
    node = next(n for n in graph.node if onnx_meta.INPUT_NAME in n.input)
    while node.op_type != "DequantizeLinear":  # through layout ops only (NHWC to NCHW)
        assert node.op_type in ("Reshape", "Transpose")
        node = next(n for n in graph.node if node.output[0] in n.input)
    scale = next(i for i in graph.initializer if i.name == node.input[1])
    assert onnx.numpy_helper.to_array(scale) == np.float32(1 / 255)
    x = rng.integers(0, 256, (40, 28, 28, 1), dtype=np.uint8)
    x[0], x[1] = 0, 255
    for batch_size in (1, 32):
        ours, theirs = (onnx_predict(p, x, batch_size=batch_size) for p in (rewritten, plain))
        assert np.abs(ours - theirs).max() <= 1e-6
    # what onnxruntime runs: the first quantized convolution reads the pixels, no QLinearMul left
    ops = optimized_ops(rewritten, tmp_path)
    assert "QLinearMul" not in ops and "Cast" not in ops and "QLinearConv" in ops
    meta = onnx_meta.read(ort.InferenceSession(str(rewritten)))
    assert meta["precision"] == "int8" and meta["classes"] == ["Sandal", "Shirt"]


def test_int8_first_convolution_reads_packed_pixel_columns(tmp_path, folder):
    """The grayscale first convolution runs in int8 on four pixel columns packed into channels:
    every convolution is int8, onnxruntime runs no transpose between them, and the outputs are the
    unpacked int8 model's, bit for bit."""
    rng = np.random.default_rng(1)
    calibration = rng.integers(0, 256, (32, 28, 28, 1), dtype=np.uint8)
    packed, unpacked = tmp_path / "packed.onnx", tmp_path / "unpacked.onnx"
    quantize(folder / "model.onnx", packed, calibration=calibration)
    quantize(folder / "model.onnx", unpacked, calibration=calibration, pack_columns=False)
    convs = sum(n.op_type == "Conv" for n in onnx.load(str(folder / "model.onnx")).graph.node)
    ops = optimized_ops(packed, tmp_path)
    last_conv = len(ops) - 1 - ops[::-1].index("QLinearConv")
    assert ops.count("QLinearConv") == convs and "Conv" not in ops and "Transpose" not in ops[:last_conv]
    assert "Transpose" in optimized_ops(unpacked, tmp_path)  # what the packing saves
    x = rng.integers(0, 256, (40, 28, 28, 1), dtype=np.uint8)
    x[0], x[1] = 0, 255
    for batch_size in (1, 32):
        ours, theirs = (onnx_predict(p, x, batch_size=batch_size) for p in (packed, unpacked))
        np.testing.assert_array_equal(ours, theirs)


def test_pixel_pass_leaves_other_graphs_alone(folder):
    float_model = onnx.load(str(folder / "model.onnx"))  # no Q/DQ pairs: nothing to rewrite
    serialized = float_model.SerializeToString()
    assert not pixels_as_quantized_input(float_model)
    assert float_model.SerializeToString() == serialized


def test_metadata_says_what_the_model_is_and_where_it_came_from(tiny_project, folder):
    meta = onnx_meta.read(ort.InferenceSession(str(folder / "model.onnx")))
    assert meta["classes"] == ["Sandal", "Shirt"]
    assert meta["input"] | {"resize": None} == {"name": "pixels", "layout": "NHWC", "dtype": "uint8", "height": 28,
                                                "width": 28, "channels": 1, "value_range": [0, 255], "resize": None,
                                                "formats": ["PNG", "JPEG"], "max_pixels": 89478485}
    lock = yaml.safe_load((tiny_project / "dvc.lock").read_text())
    split_md5 = next(o["md5"] for o in lock["stages"]["split"]["outs"] if o["path"] == "data/split")
    assert meta["data_hash"] == split_md5
    assert len(meta["params_hash"]) == 64 and meta["git_revision"] != ""
    metrics = json.loads((tiny_project / "metrics" / "metrics.json").read_text())
    assert meta["metrics"]["finetuned"]["accuracy"] == metrics["finetuned"]["accuracy"]
    assert meta["gate"] == {"blessed": True, "reasons": [], "published_anyway": False}


def test_standard_onnx_fields_say_what_the_model_is_in_both_files(tiny_project, folder):
    """doc_string, model_version, producer and the batch axis's name, as any ONNX tool reads them
    (onnxruntime's model metadata, the graph's declared shapes), on the float and the int8 file."""
    import graft

    exported = json.loads((folder / "export.json").read_text())
    for name in ("model.onnx", "model.int8.onnx"):
        meta = ort.InferenceSession(str(folder / name)).get_modelmeta()
        assert meta.producer_name == "graft" and meta.version == exported["model_version"]
        assert "Sandal, Shirt" in meta.description and "uint8 pixels 0-255, NHWC [batch, 28, 28, 1]" in meta.description
        proto = onnx.load(str(folder / name))
        assert proto.producer_version == graft.__version__ and proto.model_version == exported["model_version"]
        for value in (proto.graph.input[0], proto.graph.output[0]):
            assert value.type.tensor_type.shape.dim[0].dim_param == "batch"
    # the float model's recorded shapes in between carry the same name (int8: onnx's shape inference
    # in quant_pre_process gives them symbols of its own, which no consumer sees)
    float_graph = onnx.load(str(folder / "model.onnx")).graph
    assert not [d.dim_param for v in float_graph.value_info for d in v.type.tensor_type.shape.dim
                if d.dim_param.startswith("unk__")]
    # the UTC time of the export, YYYYMMDDHHMMSS: it orders exports and reads as a date
    exported_at = datetime.strptime(str(exported["model_version"]), "%Y%m%d%H%M%S").replace(tzinfo=timezone.utc)
    assert timedelta(0) <= datetime.now(timezone.utc) - exported_at < timedelta(hours=6)


def test_model_card_front_matter_is_hugging_face_metadata_with_the_metrics_of_the_record(tiny_project, folder):
    card = (folder / "model_card.md").read_text()
    assert card.startswith("---\n")
    front, body = card.removeprefix("---\n").split("\n---\n", 1)
    meta = yaml.safe_load(front)
    shipped = params().card
    assert meta["license"] == shipped.license and meta["datasets"] == list(shipped.datasets)
    assert meta["tags"] == list(shipped.tags) and meta["pipeline_tag"] == "image-classification"
    (entry,) = meta["model-index"]
    (result,) = entry["results"]
    assert entry["name"] == "graft-classifier" and result["dataset"]["split"] == "test"
    metrics = json.loads((tiny_project / "metrics" / "metrics.json").read_text())["finetuned"]
    values = {m["type"]: m["value"] for m in result["metrics"]}
    assert values == {"accuracy": metrics["accuracy"], "f1": metrics["macro_f1"], "roc_auc": metrics["roc_auc"]}
    assert body.lstrip().startswith("# Model card: graft image classifier")


def test_evaluate_pairs_the_lift_with_the_scratch_model_and_the_summary_says_if_it_is_significant(
        tiny_project, monkeypatch):
    """McNemar's discordant counts come from the scratch model's own predictions on the same test
    images, so their difference is the lift in images; the summary says the verdict in words."""
    from graft import config
    from graft.evaluate.summary import summarize

    metrics = json.loads((tiny_project / "metrics" / "metrics.json").read_text())["finetuned"]
    lift = json.loads((tiny_project / "metrics" / "lift.json").read_text())
    test = lift["mcnemar"]
    assert test["transfer_only"] - test["scratch_only"] == round(lift["accuracy_points"] / 100 * metrics["images"])
    assert test["alpha"] == pytest.approx(1 - params().evaluate.confidence)
    assert test["significant"] == (test["p_value"] < test["alpha"])
    ci = metrics["accuracy_interval"]
    assert ci["confidence"] == params().evaluate.confidence and ci["low"] <= metrics["accuracy"] <= ci["high"]
    monkeypatch.chdir(tiny_project)
    summary = summarize(config.load())
    verdict = "significant" if test["significant"] else "not significant"
    assert f"transfer {lift['accuracy_points']:+.2f} points, {verdict} (McNemar p = {test['p_value']:.2g};" in summary
    assert f"95% interval {ci['low']:.2%}-{ci['high']:.2%}" in summary


def test_model_card_carries_the_numbers_of_the_metrics_file(tiny_project, folder):
    card = (folder / "model_card.md").read_text()
    metrics = json.loads((tiny_project / "metrics" / "metrics.json").read_text())
    for phase in ("head", "finetuned"):
        assert f"{metrics[phase]['accuracy']:.2%}" in card
        assert f"{metrics[phase]['errors']}/{metrics[phase]['images']}" in card
    assert "Sandal" in card and "Intended use and limits" in card
    lift = json.loads((tiny_project / "metrics" / "lift.json").read_text())
    assert f"reaches {lift['scratch_accuracy']:.2%}" in card and f"{lift['accuracy_points']:+.2f} points" in card
    test = lift["mcnemar"]  # the lift's significance, in words
    verdict = "significant" if test["p_value"] < test["alpha"] else "not significant"
    assert f"{lift['accuracy_points']:+.2f} points, {verdict} (McNemar p = {test['p_value']:.2g};" in card
    ci = metrics["finetuned"]["accuracy_interval"]
    assert f"| {ci['low']:.2%}-{ci['high']:.2%} |" in card and ci["low"] <= metrics["finetuned"]["accuracy"] <= ci["high"]
    assert "**Gate**: blessed" in card
    assert "unfreeze: block2" in card  # the params as used


def test_failed_parity_publishes_nothing(tmp_path, tiny_project):
    model = load(tiny_project / "models" / "finetuned.keras")
    x = np.random.default_rng(0).integers(0, 256, (4, 28, 28, 1), dtype=np.uint8)
    shipped = params()
    impossible = shipped.export.model_copy(update={"tolerance": -1.0})  # no model could meet it
    with pytest.raises(ParityError, match="Nothing was published"):
        export(model=model, out_dir=tmp_path / "out", test_x=x, test_y=np.zeros(4, int), calibration=None,
               classes=["Sandal", "Shirt"], image=shipped.image, rules=Rules.of(shipped.validate),
               settings=impossible, extra={})
    assert not (tmp_path / "out").exists()
    assert not list(tmp_path.iterdir())  # no temporary folder left behind either


def test_unblessed_model_is_refused_unless_overridden(tmp_path, tiny_project):
    model = load(tiny_project / "models" / "finetuned.keras")
    x = np.random.default_rng(0).integers(0, 256, (4, 28, 28, 1), dtype=np.uint8)
    refused = GateRecord(blessed=False, reasons=["test accuracy 0.5 is below gate.min_accuracy 0.99"], checks={})
    shipped = params()
    options = dict(model=model, test_x=x, test_y=np.zeros(4, int), calibration=None, classes=["Sandal", "Shirt"],
                   image=shipped.image, rules=Rules.of(shipped.validate), extra={}, gate=refused)
    with pytest.raises(GateRefused, match="min_accuracy.*allow_unblessed"):
        export(out_dir=tmp_path / "refused", settings=shipped.export, **options)
    assert not list(tmp_path.iterdir())
    export(out_dir=tmp_path / "forced", settings=shipped.export.model_copy(update={"allow_unblessed": True}), **options)
    meta = onnx_meta.read(ort.InferenceSession(str(tmp_path / "forced" / "model.onnx")))
    assert meta["gate"]["blessed"] is False and meta["gate"]["published_anyway"] is True


def test_the_export_stage_s_refusal_teaches_from_the_run_s_own_records(tiny_project, tmp_path, monkeypatch):
    """A gate too strict for the task: export refuses, showing the interval evaluate measured, the
    scratch baseline of lift.json and the threshold to consider; nothing is published, and the
    run's report says why."""
    from graft import config
    from graft.stages import export as export_stage

    copy = tmp_path / "project"
    shutil.copytree(tiny_project, copy, symlinks=True)
    monkeypatch.chdir(copy)
    published = (copy / "models" / "export" / "model.onnx").read_bytes()
    metrics = json.loads((copy / "metrics" / "metrics.json").read_text())["finetuned"]
    lift = json.loads((copy / "metrics" / "lift.json").read_text())
    with pytest.raises(GateRefused) as err:
        export_stage.run(changed(config.load(), {"gate": {"min_accuracy": 1.0, "min_class_recall": 0.0}}))
    ci, message = metrics["accuracy_interval"], str(err.value)
    assert f"95% interval {ci['low']:.4f}-{ci['high']:.4f}" in message
    assert f"test accuracy {lift['scratch_accuracy']:.4f}; transfer {lift['accuracy_points']:+.2f} points" in message
    assert "Consider gate.min_accuracy (now 1.0)" in message and "min_class_recall (now" not in message
    gate = json.loads((copy / "metrics" / "gate.json").read_text())
    assert not gate["blessed"] and gate["consider"][-1] == "how to choose them for your data: docs/evaluation.md"
    assert (copy / "models" / "export" / "model.onnx").read_bytes() == published
    report = html.unescape((copy / "reports" / "report.html").read_text())  # the run's report says so too
    assert "nothing published by this run" in report and gate["reasons"][0] in report and gate["consider"][0] in report
    assert "No model card: nothing was published" in report


def test_flip_tta_is_inside_the_exported_model_and_evaluate_scores_what_it_predicts(tiny_project, tmp_path, monkeypatch):
    """evaluate.tta: horizontal_flip. Consumers of model.onnx get the mean over the image and its
    mirror image from onnxruntime alone, and evaluate's metrics are that model's."""
    from graft import config
    from graft.data.load import load_split
    from graft.stages import evaluate as evaluate_stage
    from graft.stages import export as export_stage

    copy = tmp_path / "project"
    shutil.copytree(tiny_project, copy, symlinks=True)
    monkeypatch.chdir(copy)
    plain = copy / "plain.onnx"
    shutil.copy(copy / "models" / "export" / "model.onnx", plain)
    p = changed(config.load(), {"evaluate": {"tta": "horizontal_flip"}, "export": {"quantize": False},
                                "gate": {"min_accuracy": 0.0, "min_class_recall": 0.0}})
    evaluate_stage.run(p)
    export_stage.run(p)
    shipped = copy / "models" / "export" / "model.onnx"
    assert "ReverseSequence" in {n.op_type for n in onnx.load(str(shipped)).graph.node}
    test = load_split(p, "test", progress=False)
    got = onnx_predict(shipped, test.x, batch_size=32)
    mean = (onnx_predict(plain, test.x, batch_size=32) + onnx_predict(plain, test.x[:, :, ::-1], batch_size=32)) / 2
    np.testing.assert_allclose(got, mean, atol=1e-5)
    metrics = json.loads((copy / "metrics" / "metrics.json").read_text())["finetuned"]
    assert metrics["accuracy"] == pytest.approx(float((got.argmax(1) == test.y).mean()))
    card = (copy / "models" / "export" / "model_card.md").read_text()
    assert "mirror image: test-time augmentation is inside the model" in card
    # the lift compares like with like: the baseline is scored with the same flip, by evaluate
    scratch = with_tta(load(copy / "models" / "scratch" / "model.keras"), "horizontal_flip")
    lift = json.loads((copy / "metrics" / "lift.json").read_text())
    assert lift["scratch_accuracy"] == pytest.approx(float((scratch.predict(test.x, verbose=0).argmax(1) == test.y).mean()))
    assert lift["accuracy_points"] == pytest.approx((metrics["accuracy"] - lift["scratch_accuracy"]) * 100, abs=1e-3)


def test_float_model_moves_to_nchw_before_scaling_the_pixels(folder):
    """The published float model runs its layout op on the uint8 pixels and scales after it
    (graft.export.passes: onnxruntime's Mul is slow on [N, 28, 28, 1]); parity held (above)."""
    graph = onnx.load(str(folder / "model.onnx")).graph
    first = next(n for n in graph.node if onnx_meta.INPUT_NAME in n.input)
    after = next(n for n in graph.node if first.output[0] in n.input)
    assert first.op_type in ("Reshape", "Transpose") and after.op_type == "Cast"


def test_int8_that_onnxruntime_cannot_make_ships_the_float_model(tmp_path, folder):
    wrong = np.zeros((4, 14, 14, 1), dtype=np.uint8)  # calibration images the model's input refuses
    report = try_int8(folder / "model.onnx", tmp_path / "int8.onnx", calibration=wrong, x=wrong, y=np.zeros(4),
                      float_accuracy=1.0, max_drop_points=1.0)
    assert not report["shipped"] and "onnxruntime could not quantize" in report["reason"]
    assert not (tmp_path / "int8.onnx").exists()


def test_a_bug_in_graft_s_int8_passes_is_not_hidden_as_unavailable(tmp_path, folder, monkeypatch):
    import graft.export.quantize as quantize_module

    def broken(proto):
        raise IndexError("a bug in the pass")

    monkeypatch.setattr(quantize_module, "pixels_as_quantized_input", broken)
    x = np.zeros((4, 28, 28, 1), dtype=np.uint8)
    with pytest.raises(IndexError, match="a bug in the pass"):
        try_int8(folder / "model.onnx", tmp_path / "int8.onnx", calibration=x, x=x, y=np.zeros(4),
                 float_accuracy=1.0, max_drop_points=1.0)

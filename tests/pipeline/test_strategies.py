"""Each transfer strategy end to end on tiny data: the shared tiny `dvc repro` (strategy auto), then
the stages themselves, in this process, on a copy of that project for every explicit strategy (scratch,
"do not transfer", included), the source model used as a classifier, and autoencoder pretraining."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from graft import config
from graft.data.load import load_split
from graft.errors import ConfigError
from graft.model.backbones import BASE_NAME
from graft.model.build import build_base
from graft.model.saved import load
from graft.stages import advise, evaluate, export, features, finetune, ingest, pretrain, scratch, train_head
from graft.train import history
from tests.helpers import changed

pytestmark = pytest.mark.slow


def read(project, name):
    return json.loads((project / "metrics" / name).read_text())


@pytest.fixture
def project(tiny_project, tmp_path, monkeypatch):
    """A copy of the tiny project after its `dvc repro`, as the working directory."""
    copy = tmp_path / "project"
    shutil.copytree(tiny_project, copy, symlinks=True)
    monkeypatch.chdir(copy)
    return copy


def test_auto_repro_records_the_advice_and_finetune_follows_it(tiny_project):
    advice, tuned = read(tiny_project, "advice.json"), read(tiny_project, "finetune.json")
    m = advice["measurements"]
    assert advice["strategy"] == "auto" and advice["plan"] == advice["advised"]
    assert m["per_class"] == {"Sandal": 12, "Shirt": 12} and m["images"] == 24  # TINY: 12 train images per class
    assert m["errors"] == round((1 - m["probe_accuracy"]) * 24) and m["probe_accuracy"] * 24 == pytest.approx(24 - m["errors"])
    assert m["probe_gain"] == pytest.approx(1 - (m["errors"] + 1) / (m["random_errors"] + 1), abs=1e-6)
    assert advice["scenario"]["size"] == "large"  # 12 >= TINY's advisor.small_per_class (10)
    assert advice["reason"].startswith(f"large and {advice['scenario']['domain']}")
    assert tuned["strategy"] == advice["plan"]["strategy"] and tuned["fine_tuned"] == (advice["plan"]["unfreeze"] is not None)


@pytest.mark.parametrize(("strategy", "unfrozen"), [("feature_extraction", None), ("finetune_top", ["block2_conv1"]),
                                                    ("finetune_all", ["block1_conv1", "block2_conv1"])])
def test_each_explicit_strategy_end_to_end(project, strategy, unfrozen):
    params = changed(config.load(), {"strategy": strategy})
    for stage in (advise, finetune, evaluate, export):
        stage.run(params)
    advice, tuned = read(project, "advice.json"), read(project, "finetune.json")
    assert advice["plan"]["strategy"] == strategy and f"strategy: {strategy} in params.yaml" in advice["reason"]
    assert tuned["strategy"] == strategy
    if unfrozen is None:
        assert tuned["fine_tuned"] is False and "head-phase model is the final model" in tuned["reason"]
        assert (project / "models/finetuned.keras").read_bytes() == (project / "models/head.keras").read_bytes()
        assert history.read(project / "plots" / "live" / "finetune") == []
    else:
        assert tuned["fine_tuned"] is True and tuned["unfrozen_layers"] == unfrozen and tuned["epochs_run"] == 2
    scores = read(project, "metrics.json")
    assert scores["finetuned"]["images"] == 20
    if unfrozen is None:
        assert scores["finetuned"]["accuracy"] == scores["head"]["accuracy"]
    assert json.loads((project / "models/export/export.json").read_text())["parity"]["max_abs_diff"] <= 1e-4


def test_scratch_ships_the_scratch_stages_model_end_to_end(project):
    """Do not transfer: the model the repro's scratch stage saved is the final model; evaluate, the
    model card and the summary say "not transferred" instead of a lift of 0."""
    from graft.evaluate.summary import summarize

    params = changed(config.load(), {"strategy": "scratch"})
    saved = project / "models/scratch/model.keras"
    assert saved.is_file()  # written by the tiny repro's scratch stage
    for stage in (advise, finetune, evaluate, export):
        stage.run(params)
    tuned, scores, baseline = read(project, "finetune.json"), read(project, "metrics.json"), read(project, "scratch.json")
    assert read(project, "advice.json")["plan"]["strategy"] == tuned["strategy"] == "scratch"
    assert tuned["fine_tuned"] is False and "the scratch stage's model" in tuned["reason"]
    assert (project / "models/finetuned.keras").read_bytes() == saved.read_bytes()
    assert history.read(project / "plots" / "live" / "finetune") == []
    assert scores["finetuned"]["accuracy"] == baseline["test"]["accuracy"]  # the same model on the same test split
    lift = read(project, "lift.json")
    assert lift["not_transferred"] is True and "accuracy_points" not in lift and set(scores) == {"head", "finetuned"}
    card = (project / "models/export/model_card.md").read_text()
    assert "not transferred" in card and "from scratch (shipped)" in card and "phase 2" not in card
    assert "transfer lift:" in summarize(params) and "from scratch (shipped)" in summarize(params)
    assert json.loads((project / "models/export/export.json").read_text())["parity"]["max_abs_diff"] <= 1e-4
    off = changed(params, {"strategy": "auto", "scratch": {"enabled": False}})  # the recorded plan is still scratch
    scratch.run(off)  # no training: the folder DVC expects is there, empty
    assert read(project, "scratch.json") == {"enabled": False} and not any((project / "models/scratch").iterdir())
    (project / "metrics" / "advice.json").write_text(json.dumps({**read(project, "advice.json"), "strategy": "auto"}))
    with pytest.raises(ConfigError, match="scratch.enabled: true"):
        finetune.run(off)


def test_source_model_as_classifier_end_to_end(project):
    """A source task that includes the target classes; the source model restricted to them is
    evaluated and exported untrained, and model.onnx still takes raw pixels."""
    import onnxruntime as ort

    params = changed(config.load(), {"strategy": "as_classifier",
                                     "data": {"source_classes": ["T-shirt_top", "Sandal", "Bag", "Shirt"]}})
    for stage in (ingest, pretrain, features, advise, train_head, finetune, evaluate, export):
        stage.run(params)
    assert read(project, "head.json")["trained"] is False and read(project, "finetune.json")["fine_tuned"] is False
    test = load_split(params, "test")
    source = load(project / "models/source.keras").predict(test.x, verbose=0)
    want = source[:, [1, 3]] / source[:, [1, 3]].sum(axis=1, keepdims=True)  # Sandal, Shirt in the source's order
    np.testing.assert_allclose(load(project / "models/finetuned.keras").predict(test.x, verbose=0), want, rtol=1e-5)
    session = ort.InferenceSession(str(project / "models/export/model.onnx"), providers=["CPUExecutionProvider"])
    onnx_probs = session.run(["probabilities"], {"pixels": test.x})[0]
    np.testing.assert_allclose(onnx_probs, want, atol=1e-4)
    assert read(project, "metrics.json")["finetuned"]["accuracy"] == pytest.approx(float((want.argmax(1) == test.y).mean()))


def test_autoencoder_pretraining_then_transfer(project):
    params = changed(config.load(), {"pretrain": {"method": "autoencoder", "data": "data/raw/target"}})
    pretrain.run(params)
    report = read(project, "pretrain.json")
    assert report["method"] == "autoencoder" and report["unlabelled_images"] == 60  # the target's 30 + 30 train pool
    assert np.isfinite(report["valid_reconstruction_mse"])
    encoder = load(project / "models/source.keras")
    fresh = build_base(params)[0]
    trained = encoder.get_layer(BASE_NAME).get_layer("block1_conv1").get_weights()[0]
    assert not np.allclose(trained, fresh.get_layer("block1_conv1").get_weights()[0])  # the encoder learnt
    for stage in (features, advise, train_head):
        stage.run(params)
    head = load(project / "models/head.keras")
    np.testing.assert_array_equal(head.get_layer(BASE_NAME).get_layer("block1_conv1").get_weights()[0], trained)

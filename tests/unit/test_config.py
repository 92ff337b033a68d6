"""Unit: params.yaml is the only home of the defaults; the schema checks it and names what is wrong."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from graft import config
from tests.helpers import ROOT, raw_params


def write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def leaf_keys(node: dict, prefix: str = "") -> list[str]:
    keys = []
    for key, value in node.items():
        dotted = f"{prefix}{key}"
        keys += leaf_keys(value, f"{dotted}.") if isinstance(value, dict) else [dotted]
    return keys


SHIPPED = config.read_yaml((ROOT / "params.yaml").read_text())


def test_shipped_params_load():
    params = config.load(ROOT / "params.yaml")
    assert params.data.target_classes == ("Sandal", "Shirt")
    assert len(params.data.source_classes) == 8
    assert params.finetune_lr == pytest.approx(params.head.lr * params.finetune.lr_factor)
    assert params.finetune_lr < params.head.lr
    assert params.paths.export == Path("models/export")


def test_the_schema_has_no_defaults():
    def defaults(model) -> list[str]:
        found = []
        for name, field in model.model_fields.items():
            if not field.is_required():
                found.append(f"{model.__name__}.{name}")
            annotation = field.annotation
            if isinstance(annotation, type) and issubclass(annotation, config.sections.Section):
                found += defaults(annotation)
        return found

    assert defaults(config.Params) == []


@pytest.mark.parametrize("key", leaf_keys(SHIPPED) + list(SHIPPED))
def test_removing_any_key_fails_naming_it(tmp_path, key):
    data = json.loads(json.dumps(SHIPPED))
    *parents, last = key.split(".")
    node = data
    for part in parents:
        node = node[part]
    del node[last]
    with pytest.raises(config.ConfigError) as err:
        config.load(write(tmp_path, data))
    assert f"params.yaml: {key}: missing" in str(err.value)


def test_the_published_json_schema_is_the_codes():
    published = json.loads((ROOT / "docs" / "params.schema.json").read_text())
    assert published == json.loads(json.dumps(config.json_schema())), \
        "docs/params.schema.json is stale: graft schema > docs/params.schema.json"
    assert set(published["required"]) == set(SHIPPED)


@pytest.mark.parametrize(("change", "words"), [
    ({"head": {"lr_typo": 0.1}}, ["head: unknown key 'lr_typo'", "known keys"]),
    ({"head": {"epochs": "many"}}, ["head.epochs", "expected int"]),
    ({"head": {"epochs": 0}}, ["head.epochs", "greater than or equal to 1"]),
    ({"head": {"epochs": True}}, ["head.epochs", "expected int"]),
    ({"finetune": {"lr": 0.01}}, ["finetune.lr", "not below head.lr"]),
    ({"data": {"target_classes": ["Sandal"]}}, ["data.target_classes", "two"]),
    ({"data": {"target_classes": ["Sandal", "Sock"]}}, ["Sock", "Fashion-MNIST"]),
    ({"base": {"kind": "resnet9000"}}, ["base.kind", "mobilenet_v2"]),
    ({"base": {"kind": "vgg16", "weights": "/nope.h5"}}, ["base.weights", "/nope.h5"]),
    ({"base": {"kind": "mobilenet_v2", "weights": "none"}}, ["finetune.unfreeze", "'block3'", "block_16"]),
    ({"finetune": {"unfreeze": 21}}, ["finetune.unfreeze", "21 top layers", "has 20"]),
    ({"data": {"target_classes": ["Sandal", "Shirt", "Sandal"]}}, ["data.target_classes", "'Sandal'", "once"]),
    ({"data": {"target": "folder"}, "paths": {"target": "data/raw/mine"}}, ["paths.raw", "overlaps", "paths.target"]),
    ({"paths": {"split": "/tmp"}}, ["paths.split", "outside the project"]),
    ({"paths": {"split": "../elsewhere"}}, ["paths.split", "outside the project"]),
    ({"paths": {"export": "models"}}, ["paths.export", "overlaps paths.source_model"]),
    ({"data": {"target": "folder"}, "paths": {"target": "mine", "split": "mine/split"}}, ["paths.split", "your images"]),
    ({"paths": {"target": "elsewhere"}}, ["paths.target", "inside paths.raw", "data.target: folder"]),
    ({"paths": {"source": "data/source"}}, ["paths.source", "not inside paths.raw"]),
    ({"timeouts": {"pretrain": 0}}, ["timeouts.pretrain", "greater than or equal to 1"]),
    ({"timeouts": {"trainhead": 10}}, ["timeouts.trainhead", "no such stage"]),
    ({"image": {"channels": 2}}, ["image.channels"]),
    ({"head": {"pooling": "max"}}, ["head.pooling", "flatten"]),
    ({"head": {"dense": [64, 0]}}, ["head.dense[1]"]),
    ({"head": {"schedule": "step"}}, ["head.schedule", "cosine"]),
    ({"finetune": {"warmup_epochs": 10, "epochs": 10}}, ["finetune.warmup_epochs", "below"]),
    ({"finetune": {"unfreeze": 1.5}}, ["finetune.unfreeze", "fraction"]),
    ({"finetune": {"unfreeze": -1}}, ["finetune.unfreeze", "number of top layers"]),
    ({"finetune": {"lr_factor": 2.0}}, ["finetune.lr_factor"]),
    ({"head": {"class_weight": "auto"}}, ["head.class_weight", "balanced"]),
    ({"augment": {"flip": "diagonal"}}, ["augment.flip"]),
    ({"base": {"weights_sha256": "abc"}}, ["base.weights_sha256", "sha256"]),
    ({"gate": {"min_accuracy": 99}}, ["gate.min_accuracy", "not 99"]),
    ({"head": {"lr": float("nan")}}, ["head.lr", "finite"]),
    ({"export": {"tolerance": float("inf")}}, ["export.tolerance", "finite"]),
    ({"validate": {"formats": ["PNG", "NOPE"]}}, ["validate.formats", "Pillow"]),
    ({"strategy": "scratch", "scratch": {"enabled": False}}, ["scratch.enabled", "set scratch.enabled: true"]),
    ({"strategy": "as_classifier"}, ["strategy", "not trained on"]),
    ({"data": {"source_classes": ["Sandal", "Bag"]}}, ["data.source_classes", "shares"]),
    ({"pretrain": {"method": "autoencoder", "data": "data/raw"}}, ["pretrain.data", "test or valid images"]),
    ({"split": {"test_fraction": 0.5, "valid_fraction": 0.5, "train_fraction": 0.1}}, ["split", "more than 1"]),
    ({"advisor": {"scratch_below_gain": 0.5}}, ["advisor.scratch_below_gain", "at most advisor.similar_gain"]),
    ({"distribute": "cluster"}, ["distribute", "multi_worker"]),
])
def test_bad_values_name_the_parameter_and_the_fix(tmp_path, change, words):
    with pytest.raises(config.ConfigError) as err:
        config.load(write(tmp_path, raw_params(change)))
    message = str(err.value)
    assert "\n" not in message  # one line
    for word in words:
        assert word in message


def test_an_output_holding_files_git_tracks_is_refused(tmp_path):
    """DVC deletes a stage's outputs before it runs it: `paths.split: src` deleted the code."""
    import subprocess

    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "code.py").write_text("x = 1\n")
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run(["git", "add", "src/code.py"], cwd=tmp_path, check=True)
    with pytest.raises(config.ConfigError) as err:
        config.load(write(tmp_path, raw_params({"paths": {"split": "src"}})))
    assert "paths.split" in str(err.value) and "src/code.py, which git tracks" in str(err.value)
    assert config.load(write(tmp_path, raw_params({"paths": {"split": "data/split"}}))).paths.split.name == "split"


def test_yaml_1_2_numbers_and_a_missing_file(tmp_path):
    assert config.read_yaml("lr: 1e-5\nb: 1.0e-4\nn: 3") == {"lr": 1e-5, "b": 1e-4, "n": 3}
    path = write(tmp_path, raw_params())
    path.write_text(path.read_text().replace("lr_factor: 0.1", "lr_factor: 1e-1"))
    assert config.load(path).finetune.lr_factor == pytest.approx(0.1)
    with pytest.raises(config.ConfigError, match="no such params file"):
        config.load(tmp_path / "nope.yaml")
    (tmp_path / "empty.yaml").write_text("")
    with pytest.raises(config.ConfigError, match="expected a mapping"):
        config.load(tmp_path / "empty.yaml")


def test_unfreeze_takes_a_count_a_fraction_or_a_block(tmp_path):
    for value in (4, 0.25, "block2"):
        loaded = config.load(write(tmp_path, raw_params({"finetune": {"unfreeze": value}}))).finetune.unfreeze
        assert loaded == value and type(loaded) is type(value)


def test_a_local_weights_file_needs_its_digest(tmp_path):
    weights = tmp_path / "base.weights.h5"
    weights.write_bytes(b"weights")
    change = {"base": {"kind": "mobilenet_v2", "weights": str(weights)}, "finetune": {"unfreeze": 10}}
    with pytest.raises(config.ConfigError) as err:
        config.load(write(tmp_path, raw_params(change)))
    assert "base.weights_sha256" in str(err.value) and f"sha256sum {weights}" in str(err.value)
    change["base"]["weights_sha256"] = "0" * 64
    assert config.load(write(tmp_path, raw_params(change))).base.weights_sha256 == "0" * 64

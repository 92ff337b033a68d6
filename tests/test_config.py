"""Unit: the typed params loader accepts the shipped params and names what is wrong."""

from pathlib import Path

import pytest
import yaml

from graft import config
from tests.conftest import ROOT


def write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_shipped_params_load_and_match_defaults():
    params = config.load(ROOT / "params.yaml")
    assert params.data.target_classes == ("Sandal", "Shirt")
    assert len(params.data.source_classes) == 8
    assert params.finetune_lr == pytest.approx(params.head.lr * params.finetune.lr_factor)
    assert params.finetune_lr < params.head.lr
    assert params.paths.export == Path("models/export")


def test_scientific_notation_without_dot_is_a_float(tmp_path):
    params = config.load(write(tmp_path, {"finetune": {"lr": "1e-5"}}))
    assert params.finetune.lr == pytest.approx(1e-5)


@pytest.mark.parametrize(("data", "words"), [
    ({"head": {"epochs": 3, "lr_typo": 0.1}}, ["head", "lr_typo"]),
    ({"head": {"epochs": "many"}}, ["head.epochs", "expected int"]),
    ({"finetune": {"lr": 0.01}}, ["finetune.lr", "not below head.lr"]),
    ({"data": {"target_classes": ["Sandal"]}}, ["data.target_classes", "two"]),
    ({"data": {"target_classes": ["Sandal", "Sock"]}}, ["Sock", "Fashion-MNIST"]),
    ({"base": {"kind": "resnet9000"}}, ["base.kind", "mobilenet_v2"]),
    ({"base": {"kind": "vgg16", "weights": "/nope.h5"}}, ["base.weights", "/nope.h5"]),
    ({"data": {"target": "folder"}, "paths": {"target": "data/raw/mine"}}, ["paths.target", "inside paths.raw"]),
    ({"image": {"channels": 2}}, ["image.channels"]),
    ({"head": {"pooling": "max"}}, ["head.pooling", "flatten"]),
    ({"head": {"dense": [64, 0]}}, ["head.dense"]),
    ({"head": {"schedule": "step"}}, ["head.schedule", "cosine"]),
    ({"finetune": {"warmup_epochs": 10, "epochs": 10}}, ["finetune.warmup_epochs", "below"]),
    ({"finetune": {"unfreeze": 1.5}}, ["finetune.unfreeze", "fraction"]),
    ({"finetune": {"lr_factor": 2.0}}, ["finetune.lr_factor"]),
    ({"head": {"class_weight": "auto"}}, ["head.class_weight", "balanced"]),
    ({"augment": {"flip": "diagonal"}}, ["augment.flip"]),
    ({"base": {"weights_sha256": "abc"}}, ["base.weights_sha256", "64"]),
])
def test_bad_values_name_the_parameter(tmp_path, data, words):
    with pytest.raises(config.ConfigError) as err:
        config.load(write(tmp_path, data))
    for word in words:
        assert word in str(err.value)


def test_missing_file_says_what_to_do(tmp_path):
    with pytest.raises(config.ConfigError, match="no such params file"):
        config.load(tmp_path / "nope.yaml")


def test_unfreeze_takes_a_count_a_fraction_or_a_block(tmp_path):
    assert config.load(write(tmp_path, {"finetune": {"unfreeze": 4}})).finetune.unfreeze == 4
    assert config.load(write(tmp_path, {"finetune": {"unfreeze": 0.25}})).finetune.unfreeze == 0.25
    assert config.load(write(tmp_path, {"finetune": {"unfreeze": "block2"}})).finetune.unfreeze == "block2"

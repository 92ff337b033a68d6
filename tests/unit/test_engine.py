"""Unit: the training engine on inline tiny data: cached features, head params, schedules, class
weights, early stopping, augmentation kept out of the model, unfreezing by fraction, weights digests,
and a phase killed with SIGKILL that resumes from its last epoch."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

from graft.errors import WeightsError
from graft.export.contract import OUTPUT_NAME
from graft.files import sha256_file
from graft.model.backbones import BASE_NAME, check_weights_file
from graft.model.build import build_source_model, graft_head
from graft.model.head import HEAD_NAME, build_head
from graft.model.saved import load
from graft.model.surgery import feature_extractor, unfreeze_top
from graft.train.augment import augmenter
from graft.train.features import Features, extract
from graft.train.fit import EpochOrder, batches, class_weights, classifier_loss, fit, learning_rate, seed_everything
from graft.train.history import read
from graft.train.recipe import train_head
from graft.train.resume import backup_dir
from tests.helpers import ROOT, SMALL_IMAGES, env, params

PARAMS = params(SMALL_IMAGES)


def head_params(**fields):
    """The shipped head params with ``fields`` changed (min_steps 0 unless given: these tests count epochs)."""
    return params({"head": {"min_steps": 0, **fields}}).head


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    y = np.arange(48) % 2
    x = rng.integers(0, 120, (48, 16, 16, 1), dtype=np.uint8)
    x[y == 1, ::3, :, 0] = 250  # class 1 has stripes: learnable in a few steps
    return x, y


@pytest.fixture(scope="module")
def source():
    return build_source_model(PARAMS)


def test_cached_features_train_the_same_model_as_the_frozen_base(source, data):
    x, y = data
    train, valid = (x[:32], y[:32]), (x[32:], y[32:])
    head = head_params(epochs=4, batch_size=8, dense=(8,), batchnorm=True, dropout=0.3)
    naive, naive_fit = train_head(source=source, train=train, valid=valid, num_classes=2, head=head, seed=3, augment=None)
    extractor = feature_extractor(graft_head(source, num_classes=2, head=head, seed=3))
    cached = Features(train=(extract(extractor, train[0])[0], train[1]), valid=(extract(extractor, valid[0])[0], valid[1]))
    fast, fast_fit = train_head(source=source, train=train, valid=valid, num_classes=2, head=head, seed=3, augment=None,
                                features=cached)
    np.testing.assert_allclose(fast_fit.history["loss"], naive_fit.history["loss"], rtol=1e-4)
    want = naive.predict(x, verbose=0)
    np.testing.assert_allclose(fast.predict(x, verbose=0), want, atol=1e-5)
    assert not np.allclose(want, want.mean(0), atol=1e-3), "the comparison must be of a model that learned something"


def test_head_params_build_the_head_they_name():
    head = build_head(features=12, num_classes=3, head=head_params(dense=(16, 8), activation="selu", batchnorm=True), seed=0)
    names = [layer.name for layer in head.layers]
    assert names == ["features", "head_dropout1", "head_dense1", "head_bn1", "head_selu1", "head_dropout2",
                     "head_dense2", "head_bn2", "head_selu2", "head_dropout", OUTPUT_NAME]
    assert isinstance(head.get_layer("head_dense1").kernel_initializer, keras.initializers.LecunNormal)
    relu = build_head(features=12, num_classes=3, head=head_params(dense=(4,)), seed=0)
    assert isinstance(relu.get_layer("head_dense1").kernel_initializer, keras.initializers.HeNormal)
    flat = graft_head(build_source_model(PARAMS), num_classes=2, head=head_params(pooling="flatten"), seed=0)
    avg = graft_head(build_source_model(PARAMS), num_classes=2, head=head_params(pooling="avg"), seed=0)
    assert feature_extractor(flat).output.shape[-1] == 8 * 8 * 8  # 16x16 pooled once, 8 filters
    assert feature_extractor(avg).output.shape[-1] == 8


def test_learning_rate_schedules():
    lr = 1e-3
    assert learning_rate(lr, head_params(epochs=5), steps_per_epoch=10) == lr
    warm = learning_rate(lr, head_params(epochs=5, warmup_epochs=1), steps_per_epoch=10)
    assert float(warm(0)) == pytest.approx(0.0) and float(warm(10)) == pytest.approx(lr)
    assert float(warm(49)) == pytest.approx(lr)  # constant after warm-up
    cosine = learning_rate(lr, head_params(epochs=5, warmup_epochs=1, schedule="cosine"), steps_per_epoch=10)
    assert float(cosine(5)) == pytest.approx(lr / 2) and float(cosine(30)) == pytest.approx(lr / 2, rel=1e-3)
    assert float(cosine(50)) == pytest.approx(0.0, abs=1e-9)


def test_balanced_class_weights():
    assert class_weights(np.array([0, 0, 0, 1]), "none") is None
    assert class_weights(np.array([0, 0, 0, 1]), "balanced") == {0: pytest.approx(4 / 6), 1: 2.0}


def test_label_smoothing_mixes_each_label_with_the_uniform_distribution():
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]], dtype="float32")
    y = np.array([0, 2])
    smoothed = keras.ops.convert_to_numpy(classifier_loss(0.3)(y, probs))
    target = 0.7 * np.eye(3)[y] + 0.3 / 3
    np.testing.assert_allclose(smoothed, -(target * np.log(probs)).sum(1), rtol=1e-5)
    assert classifier_loss(0.0) == "sparse_categorical_crossentropy"  # off: Keras' own loss, unchanged
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 2)).astype("float32")
    y = (x[:, 0] > 0).astype("int32")
    x[:, 0] += np.where(y, 3.0, -3.0)  # separable by far: unsmoothed, the probabilities run to 0 and 1
    confidence = {}
    for s in (0.0, 0.2):
        seed_everything(0)
        model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2, activation="softmax")])
        fit(model, train=(x, y), valid=(x, y), recipe=head_params(epochs=30, batch_size=8, lr=0.1, label_smoothing=s),
            seed=0)
        confidence[s] = model.predict(x, verbose=0).max(1)
    assert np.median(confidence[0.0]) > 0.99
    assert 0.85 < np.median(confidence[0.2]) < 0.95  # 0.9: the smoothed target of 2 classes at 0.2


def test_label_smoothing_is_refused_for_the_autoencoder():
    with pytest.raises(Exception, match="pretrain.label_smoothing"):
        params({"pretrain": {"method": "autoencoder", "label_smoothing": 0.1}})


def test_early_stopping_stops_when_validation_loss_rises(source, data):
    x, y = data
    model = graft_head(source, num_classes=2, head=head_params(dropout=0.0), seed=0)
    seed_everything(0)
    result = fit(model, train=(x, y), valid=(x, 1 - y), recipe=head_params(epochs=30, batch_size=8, lr=1e-2, patience=2),
                 seed=0)
    assert len(result.history["loss"]) < 30  # valid labels are the opposite of train's: val_loss climbs
    assert result.best_epoch == int(np.argmin(result.history["val_loss"])) + 1


def test_augmentation_trains_through_a_wrapper_and_never_enters_the_model(source, data, tmp_path):
    x, y = data
    augment = params({"augment": {"flip": "horizontal", "rotation": 0.1, "zoom": 0.1, "translation": 0.1}}).augment
    layer = augmenter(augment, seed=0)
    assert np.array_equal(np.asarray(layer(x, training=False)), x)
    assert not np.array_equal(np.asarray(layer(x, training=True)), x)
    model = graft_head(source, num_classes=2, head=head_params(), seed=0)
    before = [w.copy() for w in model.get_layer(HEAD_NAME).get_weights()]
    fit(model, train=(x, y), valid=(x, y), recipe=head_params(epochs=1, batch_size=8), augment=augment, seed=0)
    assert any(not np.array_equal(a, b) for a, b in zip(before, model.get_layer(HEAD_NAME).get_weights()))
    model.save(tmp_path / "m.keras")

    def layer_types(m):
        for layer in m.layers:
            yield type(layer).__name__
            if isinstance(layer, keras.Model):
                yield from layer_types(layer)

    assert not any(name.startswith("Random") or name == "ToPixels" for name in layer_types(load(tmp_path / "m.keras")))


@pytest.mark.parametrize(("fraction", "expected"), [(0.25, ["block2_conv1"]), (1.0, ["block1_conv1", "block2_conv1"])])
def test_unfreeze_by_fraction(source, fraction, expected):
    base = graft_head(source, num_classes=2, head=head_params(), seed=0).get_layer(BASE_NAME)
    assert unfreeze_top(base, unfreeze=fraction) == expected  # of the 2 convolutions: ceil(0.25 * 2) = 1


def test_weights_file_checked_against_its_digest(tmp_path):
    weights = tmp_path / "w.weights.h5"
    weights.write_bytes(b"not really weights")
    check_weights_file(str(weights), sha256_file(weights))
    with pytest.raises(WeightsError, match="w.weights.h5.*base.weights_sha256"):
        check_weights_file(str(weights), "0" * 64)
    with pytest.raises(WeightsError, match="nope.h5"):
        check_weights_file(str(tmp_path / "nope.h5"), None)


KILLED_RUN = textwrap.dedent("""
    import os, signal, sys
    from pathlib import Path
    import numpy as np
    from graft.model.build import build_source_model, graft_head
    from graft.train.callbacks import Checkpoint
    from graft.train.fit import fit, seed_everything
    from tests.helpers import params

    kill_at = int(sys.argv[2])
    if kill_at:
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)
        Checkpoint.on_epoch_begin = on_epoch_begin
    # dropout, augmentation and early stopping: every piece of state a resumed phase must get back
    p = params({"base": {"filters": [4], "convs_per_block": 1}, "image": {"height": 8, "width": 8, "channels": 1},
                "finetune": {"unfreeze": "block1"},
                "head": {"epochs": 6, "batch_size": 4, "min_steps": 0, "patience": 5, "dropout": 0.3},
                "augment": {"flip": "horizontal", "translation": 0.1}})
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 256, (16, 8, 8, 1), dtype=np.uint8), np.arange(16) % 2
    seed_everything(0)
    model = graft_head(build_source_model(p), num_classes=2, head=p.head, seed=0)
    result = fit(model, train=(x, y), valid=(x, y), recipe=p.head, seed=0, augment=p.augment, backup=Path(sys.argv[1]),
                 live=Path(sys.argv[1]).parents[1] / "live")
    np.savez(sys.argv[3], *model.get_weights(), history=np.array(result.history["val_loss"]))
    print("RESULT", result.resumed_from, len(result.history["loss"]), result.best_epoch)
""")


def phase(script, backup, kill_at, out):
    return subprocess.run([sys.executable, str(script), str(backup), str(kill_at), str(out)], capture_output=True,
                          text=True, env={**env(), "PYTHONPATH": str(ROOT)}, timeout=300)


@pytest.mark.slow
def test_a_killed_phase_resumes_exactly_where_the_uninterrupted_run_would_be(tmp_path):
    """Killed (SIGKILL) in epoch 4 of 6 and resumed: the same weights, bit for bit, and the same
    history as a run never killed (model A resumed once scored 93.67% against 93.26% uninterrupted);
    DVCLive's files too, their steps continued from the killed run's, not restarted."""
    script = tmp_path / "phase.py"
    script.write_text(KILLED_RUN)
    backup = tmp_path / "backup" / "head" / "key"
    killed = phase(script, backup, 3, tmp_path / "killed.npz")
    assert killed.returncode == -9, killed.stderr
    assert json.loads((backup / "checkpoint" / "state.json").read_text())["epoch"] == 3
    live = tmp_path / "backup" / "live"
    assert [row["step"] for row in read(live)] == [0, 1, 2]  # DVCLive's files as the kill left them
    assert json.loads((live / "metrics.json").read_text())["step"] == 2
    resumed = phase(script, backup, 0, tmp_path / "resumed.npz")
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming from epoch 4/6" in resumed.stdout
    assert "Epoch 1/6" not in resumed.stdout and "Epoch 4/6" in resumed.stdout  # Keras started at epoch 4
    resumed_from, epochs, _ = resumed.stdout.split("RESULT")[1].split()
    assert (int(resumed_from), int(epochs)) == (3, 6)
    assert not backup.exists()  # a finished phase leaves no state behind
    straight = phase(script, tmp_path / "other" / "head" / "key", 0, tmp_path / "straight.npz")
    assert straight.returncode == 0, straight.stderr
    with np.load(tmp_path / "resumed.npz") as a, np.load(tmp_path / "straight.npz") as b:
        assert a.files == b.files
        for name in a.files:
            np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    tables = sorted(p.relative_to(live).as_posix() for p in live.rglob("*.tsv"))
    assert tables == ["plots/metrics/eval/accuracy.tsv", "plots/metrics/eval/loss.tsv",
                      "plots/metrics/train/accuracy.tsv", "plots/metrics/train/loss.tsv"]
    for table in [*tables, "metrics.json"]:  # every epoch once, step 0 to 5, the same values
        assert (live / table).read_text() == (tmp_path / "other" / "live" / table).read_text(), table
    assert [row["step"] for row in read(live)] == list(range(6))
    assert json.loads((live / "metrics.json").read_text())["step"] == 5


def test_resume_keys_follow_the_images_content_not_their_count(tmp_path):
    """A killed pretrain resumes only onto the same source images: one changed pixel is another key."""
    from graft.train.pretrain import resume_key

    x = np.zeros((4, 16, 16, 1), dtype=np.uint8)
    y = np.array([0, 1, 0, 1])
    changed = x.copy()
    changed[2, 3, 4, 0] = 1
    key = backup_dir(tmp_path, "pretrain", *resume_key(PARAMS, x, y))
    assert key == backup_dir(tmp_path, "pretrain", *resume_key(PARAMS, x.copy(), y.copy()))
    assert key != backup_dir(tmp_path, "pretrain", *resume_key(PARAMS, changed, y))
    assert key != backup_dir(tmp_path, "pretrain", *resume_key(PARAMS, x, y[::-1].copy()))
    assert key != backup_dir(tmp_path, "pretrain", *resume_key(PARAMS, x.reshape(4, 16, 16), y))


def test_resume_keys_follow_graft_s_code_but_not_its_bytecode(tmp_path):
    """State saved by other code is never resumed; the .pyc files Python writes as modules are
    first imported (between a kill and the next run, say) change nothing."""
    import shutil

    package = tmp_path / "graft"
    shutil.copytree(ROOT / "src" / "graft", package, ignore=shutil.ignore_patterns("__pycache__"))

    def digest(*imported: str) -> str:
        code = "".join(f"import {m}; " for m in imported) + "from graft.train.resume import code_digest; print(code_digest())"
        environment = {k: v for k, v in env().items() if k != "PYTHONDONTWRITEBYTECODE"} | {"PYTHONPATH": str(tmp_path)}
        return subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=environment, capture_output=True,
                              text=True, check=True, timeout=120).stdout.strip()

    first = digest()
    assert (package / "train" / "__pycache__").is_dir()  # written by that import
    assert not (package / "evaluate" / "__pycache__").exists()
    assert digest("graft.evaluate.gate") == first  # which writes more bytecode
    assert (package / "evaluate" / "__pycache__").is_dir()
    with (package / "evaluate" / "gate.py").open("a") as f:
        f.write("\n# another version\n")
    assert digest() != first


def test_every_epoch_sees_a_new_order_drawn_from_the_seed_and_the_epoch_alone():
    """Keras' adapter for arrays, under op determinism, replays one permutation every epoch;
    graft's draws each epoch's from (seed, epoch), however many times the data is iterated."""
    x, y = np.arange(64, dtype="float32")[:, None], np.arange(64)

    def epochs(seed, n=3, repeat=1):
        clock = EpochOrder()
        stream = batches((x, y), batch_size=64, seed=seed, epoch=clock.epoch)
        orders = []
        for epoch in range(n):
            clock.on_epoch_begin(epoch)
            for _ in range(repeat):  # Keras makes two iterators an epoch: they agree
                orders.append(next(iter(stream))[1].numpy().tolist())
        return orders

    first = epochs(7)
    assert all(sorted(order) == list(range(64)) for order in first)  # every image once an epoch
    assert len({tuple(order) for order in first}) == 3  # a new order each epoch
    assert epochs(7) == first and epochs(8) != first  # the seed fixes the whole sequence
    assert epochs(7, repeat=2)[::2] == first and epochs(7, repeat=2)[1::2] == first
    valid = batches((x, y), batch_size=16, seed=7)
    assert [b[1].numpy().tolist() for b in valid] == [list(range(i, i + 16)) for i in range(0, 64, 16)]

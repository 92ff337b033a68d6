"""Unit: model surgery on a tiny base (inline random data)."""

import keras
import numpy as np
import pytest

from graft.errors import ModelMismatch
from graft.model.backbones import BASE_NAME
from graft.model.build import build_source_model, graft_head, scratch_model
from graft.model.head import HEAD_NAME
from graft.model.pixels import PixelAdapter
from graft.model.saved import load
from graft.model.surgery import clone_base, unfreeze_top
from tests.helpers import SMALL_IMAGES
from tests.helpers import params as shipped

NO_DROPOUT = shipped({"head": {"dropout": 0.0}}).head


@pytest.fixture
def params():
    return shipped(SMALL_IMAGES, {"base": {"convs_per_block": 2}})


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (32, 16, 16, 1), dtype=np.uint8), rng.integers(0, 2, 32)


def weights(layer):
    return [w.numpy().copy() for w in layer.weights]


def same(a, b):
    return len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b))


def test_grafting_and_training_never_mutate_the_source_model(params, data):
    source = build_source_model(params)
    before = weights(source)
    model = graft_head(source, num_classes=2, head=NO_DROPOUT, seed=0)
    assert model.get_layer(BASE_NAME) is not source.get_layer(BASE_NAME)
    unfreeze_top(model.get_layer(BASE_NAME), unfreeze=3)
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(*data, epochs=1, verbose=0)
    assert same(before, weights(source))


def test_head_phase_trains_only_the_head(params, data):
    model = graft_head(build_source_model(params), num_classes=2, head=NO_DROPOUT, seed=0)
    base = model.get_layer(BASE_NAME)
    assert not base.trainable and not base.trainable_weights
    before = weights(base)
    head_before = weights(model.get_layer(HEAD_NAME))
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(*data, epochs=1, verbose=0)
    assert same(before, weights(base)), "frozen base changed (BatchNorm statistics included)"
    assert not same(head_before, weights(model.get_layer(HEAD_NAME)))


def test_unfreeze_block_keeps_batchnorm_and_lower_layers_frozen(params, data):
    model = graft_head(build_source_model(params), num_classes=2, head=NO_DROPOUT, seed=0)
    base = model.get_layer(BASE_NAME)
    names = unfreeze_top(base, unfreeze="block2")
    assert names == ["block2_conv1", "block2_conv2"]
    bn = [base.get_layer(f"block2_bn{i}") for i in (1, 2)]
    bn_before = [weights(layer) for layer in bn]
    low_before = weights(base.get_layer("block1_conv1"))
    top_before = weights(base.get_layer("block2_conv2"))
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(*data, epochs=1, verbose=0)
    assert all(same(b, weights(layer)) for b, layer in zip(bn_before, bn)), "BatchNorm moving statistics changed"
    assert same(low_before, weights(base.get_layer("block1_conv1")))
    assert not same(top_before, weights(base.get_layer("block2_conv2")))


def test_unfreeze_by_count_and_bad_names(params):
    base = graft_head(build_source_model(params), num_classes=2, head=NO_DROPOUT, seed=0).get_layer(BASE_NAME)
    assert unfreeze_top(base, unfreeze=3) == ["block2_conv2"]  # conv2, bn2 (kept frozen), relu2
    with pytest.raises(ModelMismatch, match="block9.*blocks"):
        unfreeze_top(base, unfreeze="block9")
    with pytest.raises(ModelMismatch, match="only"):
        unfreeze_top(base, unfreeze=999)


def test_saved_model_keeps_frozen_state_and_adapter(params, data, tmp_path):
    model = graft_head(build_source_model(params), num_classes=2, head=NO_DROPOUT, seed=0)
    model.save(tmp_path / "m.keras")
    loaded = load(tmp_path / "m.keras")
    assert not loaded.get_layer(BASE_NAME).trainable
    np.testing.assert_allclose(loaded.predict(data[0], verbose=0), model.predict(data[0], verbose=0), atol=1e-6)


@pytest.mark.parametrize(("mode", "expected"), [("unit", 1.0), ("tf", 1.0), ("raw", 255.0)])
def test_pixel_adapter_scales_resizes_and_adds_channels(mode, expected):
    adapter = PixelAdapter(size=(8, 8), channels=3, mode=mode)
    out = np.asarray(adapter(np.full((2, 4, 4, 1), 255, dtype=np.uint8)))
    assert out.shape == (2, 8, 8, 3)
    np.testing.assert_allclose(out, expected, atol=1e-5)


def test_clone_base_computes_what_the_source_base_computes_even_with_normalization_layers(tmp_path):
    import keras

    inputs = keras.Input((4, 4, 3))
    norm = keras.layers.Normalization(axis=-1)  # as in EfficientNet: constants derived from its weights
    base = keras.Model(inputs, keras.layers.Conv2D(2, 1)(norm(inputs)), name=BASE_NAME)
    norm.set_weights([np.array([100.0, 50.0, 10.0], "float32"), np.array([4.0, 9.0, 16.0], "float32"), np.array(0)])
    norm.finalize_state()
    source = keras.Model(inputs, base(inputs))
    x = np.random.default_rng(0).uniform(0, 255, (2, 4, 4, 3)).astype("float32")
    np.testing.assert_allclose(clone_base(source)(x), base(x), rtol=1e-6)


def test_scratch_model_is_the_same_architecture_all_trainable_with_fast_batchnorm():
    model = scratch_model(shipped(SMALL_IMAGES, {"base": {"convs_per_block": 2}}), num_classes=2, seed=0)
    base = model.get_layer("base")
    assert base.trainable and all(layer.trainable for layer in base.layers)
    norms = [layer for layer in base.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert norms and all(layer.momentum == 0.9 for layer in norms)
    out = model.predict(np.zeros((3, 16, 16, 1), np.uint8), verbose=0)
    assert out.shape == (3, 2)


def test_flip_tta_averages_the_image_and_its_mirror_and_none_is_the_model_itself(params, data):
    from graft.model.tta import with_tta

    model = graft_head(build_source_model(params), num_classes=2, head=NO_DROPOUT, seed=0)
    assert with_tta(model, "none") is model
    x = data[0]
    tta = with_tta(model, "horizontal_flip")
    plain, mirrored = model.predict(x, verbose=0), model.predict(x[:, :, ::-1], verbose=0)
    assert not np.allclose(plain, mirrored, atol=1e-4)  # the images are not symmetric, so the mean differs from both
    np.testing.assert_allclose(tta.predict(x, verbose=0), (plain + mirrored) / 2, atol=1e-6)
    symmetric = np.concatenate([x[:, :, :8], x[:, :, :8][:, :, ::-1]], axis=2)
    np.testing.assert_allclose(tta.predict(symmetric, verbose=0), model.predict(symmetric, verbose=0), atol=1e-6)
    assert tta.input_shape == model.input_shape and tta.inputs[0].dtype == model.inputs[0].dtype
    with pytest.raises(ValueError, match="unknown tta 'vertical'"):
        with_tta(model, "vertical")

"""Unit: model surgery on a tiny base (inline random data)."""

import numpy as np
import pytest

from graft import model as M
from graft.config import Base, Head, Image, Params


@pytest.fixture
def params():
    return Params(base=Base(filters=(4, 8), convs_per_block=2), image=Image(height=16, width=16, channels=1))


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (32, 16, 16, 1), dtype=np.uint8), rng.integers(0, 2, 32)


def weights(layer):
    return [w.numpy().copy() for w in layer.weights]


def same(a, b):
    return len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b))


def test_grafting_and_training_never_mutate_the_source_model(params, data):
    source = M.build_source_model(params)
    before = weights(source)
    model = M.graft_head(source, num_classes=2, head=Head(dropout=0.0), seed=0)
    assert model.get_layer(M.BASE_NAME) is not source.get_layer(M.BASE_NAME)
    M.unfreeze_top(model.get_layer(M.BASE_NAME), unfreeze=3)
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(*data, epochs=1, verbose=0)
    assert same(before, weights(source))


def test_head_phase_trains_only_the_head(params, data):
    model = M.graft_head(M.build_source_model(params), num_classes=2, head=Head(dropout=0.0), seed=0)
    base = model.get_layer(M.BASE_NAME)
    assert not base.trainable and not base.trainable_weights
    before = weights(base)
    head_before = weights(model.get_layer(M.HEAD_NAME))
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(*data, epochs=1, verbose=0)
    assert same(before, weights(base)), "frozen base changed (BatchNorm statistics included)"
    assert not same(head_before, weights(model.get_layer(M.HEAD_NAME)))


def test_unfreeze_block_keeps_batchnorm_and_lower_layers_frozen(params, data):
    model = M.graft_head(M.build_source_model(params), num_classes=2, head=Head(dropout=0.0), seed=0)
    base = model.get_layer(M.BASE_NAME)
    names = M.unfreeze_top(base, unfreeze="block2")
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
    base = M.graft_head(M.build_source_model(params), num_classes=2, head=Head(dropout=0.0), seed=0).get_layer(M.BASE_NAME)
    assert M.unfreeze_top(base, unfreeze=3) == ["block2_conv2"]  # conv2, bn2 (kept frozen), relu2
    with pytest.raises(ValueError, match="block9.*blocks"):
        M.unfreeze_top(base, unfreeze="block9")
    with pytest.raises(ValueError, match="only"):
        M.unfreeze_top(base, unfreeze=999)


def test_saved_model_keeps_frozen_state_and_adapter(params, data, tmp_path):
    model = M.graft_head(M.build_source_model(params), num_classes=2, head=Head(dropout=0.0), seed=0)
    model.save(tmp_path / "m.keras")
    loaded = M.load(tmp_path / "m.keras")
    assert not loaded.get_layer(M.BASE_NAME).trainable
    np.testing.assert_allclose(loaded.predict(data[0], verbose=0), model.predict(data[0], verbose=0), atol=1e-6)


@pytest.mark.parametrize(("mode", "expected"), [("unit", 1.0), ("tf", 1.0), ("raw", 255.0)])
def test_pixel_adapter_scales_resizes_and_adds_channels(mode, expected):
    adapter = M.PixelAdapter(size=(8, 8), channels=3, mode=mode)
    out = np.asarray(adapter(np.full((2, 4, 4, 1), 255, dtype=np.uint8)))
    assert out.shape == (2, 8, 8, 3)
    np.testing.assert_allclose(out, expected, atol=1e-5)


def test_clone_base_computes_what_the_source_base_computes_even_with_normalization_layers(tmp_path):
    import keras

    inputs = keras.Input((4, 4, 3))
    norm = keras.layers.Normalization(axis=-1)  # as in EfficientNet: constants derived from its weights
    base = keras.Model(inputs, keras.layers.Conv2D(2, 1)(norm(inputs)), name=M.BASE_NAME)
    norm.set_weights([np.array([100.0, 50.0, 10.0], "float32"), np.array([4.0, 9.0, 16.0], "float32"), np.array(0)])
    norm.finalize_state()
    source = keras.Model(inputs, base(inputs))
    x = np.random.default_rng(0).uniform(0, 255, (2, 4, 4, 3)).astype("float32")
    np.testing.assert_allclose(M.clone_base(source)(x), base(x), rtol=1e-6)

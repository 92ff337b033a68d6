"""keras.applications bases: a local weights file (made here, nothing downloaded) is loaded,
checked against its sha256, grafted, fine-tuned by named block and exported with onnxruntime parity."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from graft.data.decode import Rules
from graft.errors import WeightsError
from graft.export.publish import export
from graft.files import sha256_file
from graft.model.backbones import BASE_NAME, application
from graft.model.build import build_source_model, graft_head
from graft.model.kinds import layer_names
from graft.model.pixels import ADAPTER_NAME, PixelAdapter
from graft.model.surgery import unfreeze_top
from graft.train.fit import fit
from tests.helpers import params as shipped

HEAD = shipped({"head": {"dropout": 0.0, "epochs": 1, "batch_size": 8, "lr": 1e-3, "min_steps": 0}}).head

pytestmark = pytest.mark.slow


@pytest.mark.parametrize(("kind", "constructor", "block", "trained", "exported"), [
    # one base goes the whole way (grafted, trained, unfrozen, fine-tuned, exported); the others
    # are loaded, grafted and unfrozen (the same code for every kind), and EfficientNet is also
    # exported for its layers the others lack (Normalization, swish, squeeze-and-excitation).
    # ResNet50's and VGG16's layers (convolution, BatchNorm, ReLU, add, padding, pooling) are all
    # in MobileNetV2 and EfficientNet; converting ResNet50's 23 M weights to ONNX takes 36 s here.
    ("mobilenet_v2", keras.applications.MobileNetV2, "block_16", True, True),
    ("efficientnet_b0", keras.applications.EfficientNetB0, "block7", False, True),
    ("vgg16", keras.applications.VGG16, "block5", False, False),
    ("resnet50", keras.applications.ResNet50, "conv5", False, False),
])
def test_backbone_from_a_local_weights_file(tmp_path, kind, constructor, block, trained, exported):
    reference = constructor(include_top=False, weights=None, input_shape=(32, 32, 3))
    rng = np.random.default_rng(0)
    reference.set_weights([w + rng.normal(0, 0.01, w.shape).astype(w.dtype) for w in reference.get_weights()])
    weights_file = tmp_path / f"{kind}_notop.weights.h5"
    reference.save_weights(weights_file)
    keras.backend.clear_session()  # layer names as a fresh `graft pretrain` process gives them

    params = shipped({"base": {"kind": kind, "weights": str(weights_file), "input_size": 32,
                               "weights_sha256": sha256_file(weights_file)},
                      "image": {"height": 20, "width": 20, "channels": 1}, "finetune": {"unfreeze": block}})
    source = build_source_model(params)
    for got, want in zip(source.get_layer(BASE_NAME).get_weights(), reference.get_weights()):
        np.testing.assert_array_equal(got, want)
    names = [layer.name for layer in source.get_layer(BASE_NAME).layers if not isinstance(layer, keras.layers.InputLayer)]
    assert names == layer_names(kind=kind, filters=params.base.filters, convs_per_block=params.base.convs_per_block)

    x = rng.integers(0, 256, (16, 20, 20, 1), dtype=np.uint8)  # grayscale in, RGB and 32x32 inside the model
    y = np.arange(16) % 2
    model = graft_head(source, num_classes=2, head=HEAD, seed=0)
    pixels = PixelAdapter.from_config(source.get_layer(ADAPTER_NAME).get_config())(x[:4])
    np.testing.assert_allclose(model.get_layer(BASE_NAME)(pixels, training=False),
                               source.get_layer(BASE_NAME)(pixels, training=False), atol=1e-5)  # what A's base computes
    if trained:
        fit(model, train=(x, y), valid=(x, y), recipe=HEAD, seed=0)
    base = model.get_layer(BASE_NAME)
    unfrozen = unfreeze_top(base, unfreeze=block)
    first = next(i for i, layer in enumerate(base.layers) if layer.name.startswith(block))
    assert unfrozen[0].startswith(block)
    assert not any(layer.trainable_weights for layer in base.layers[:first])  # below the block: frozen
    assert not any(layer.trainable for layer in base.layers if isinstance(layer, keras.layers.BatchNormalization))
    if trained:
        fit(model, train=(x, y), valid=(x, y), recipe=HEAD, lr=1e-5, seed=0)
        for got, want in zip(source.get_layer(BASE_NAME).get_weights(), reference.get_weights()):
            np.testing.assert_array_equal(got, want)  # model A untouched by grafting and fine-tuning

    if not exported:
        return
    report = export(model=model, out_dir=tmp_path / "export", test_x=x, test_y=y, calibration=None,
                    classes=["a", "b"], image=params.image, rules=Rules.of(params.validate),
                    settings=params.export, extra={"base": kind})
    assert report.parity["max_abs_diff"] <= params.export.tolerance and (tmp_path / "export" / "model.onnx").is_file()


def test_missing_weights_file_is_named(tmp_path):
    with pytest.raises(WeightsError, match="nope.weights.h5"):
        application(kind="mobilenet_v2", size=32, weights=str(tmp_path / "nope.weights.h5"), sha256=None)


def test_weights_file_with_another_digest_is_refused(tmp_path):
    weights_file = tmp_path / "vgg16_notop.weights.h5"
    keras.applications.VGG16(include_top=False, weights=None, input_shape=(32, 32, 3)).save_weights(weights_file)
    params = shipped({"base": {"kind": "vgg16", "weights": str(weights_file), "input_size": 32, "weights_sha256": "0" * 64},
                      "finetune": {"unfreeze": "block5"}})
    with pytest.raises(WeightsError, match="vgg16_notop.weights.h5"):
        build_source_model(params)


def test_imagenet_weights_that_cannot_be_fetched_are_a_user_error(monkeypatch):
    """Offline (as here), Keras' download fails: the user is told where the file goes or what else to set."""
    def offline(**kwargs):
        raise Exception("URL fetch failure on https://storage.googleapis.com/...: None -- [Errno -3]")

    monkeypatch.setattr(keras.applications, "MobileNetV2", offline)  # no test downloads anything
    with pytest.raises(WeightsError) as err:
        application(kind="mobilenet_v2", size=32, weights="imagenet", sha256=None)
    assert "base.weights: imagenet weights for MobileNetV2" in str(err.value) and "weights: none" in str(err.value)

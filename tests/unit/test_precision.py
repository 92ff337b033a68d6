"""Mixed precision (params.yaml precision): a mixed_bfloat16 run trains with 16-bit layers and a
float32 softmax, and its export is a float32 ONNX model that passes the parity check."""

import keras
import numpy as np
import onnx

from graft.data.decode import Rules
from graft.export.contract import OUTPUT_NAME
from graft.export.publish import export
from graft.model import precision
from graft.model.backbones import BASE_NAME
from graft.model.build import build_source_model
from graft.model.head import HEAD_NAME
from graft.train.recipe import finetune, train_head
from tests.helpers import SMALL_IMAGES
from tests.helpers import params as shipped

TINY_FIT = {"head": {"epochs": 2, "batch_size": 8, "min_steps": 0, "dropout": 0.0},
            "finetune": {"epochs": 1, "batch_size": 8, "min_steps": 0}, "precision": "mixed_bfloat16"}


def data(n: int, seed: int):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    x = (rng.integers(0, 60, (n, 16, 16, 1)) + 150 * y[:, None, None, None]).astype(np.uint8)  # learnable
    return x, y


def compute_dtypes(model) -> set[str]:
    return {layer.compute_dtype for layer in model._flatten_layers(include_self=False) if layer.weights}


def test_a_mixed_bfloat16_run_trains_with_a_float32_softmax_and_exports_float32_with_parity(tmp_path):
    params = shipped(SMALL_IMAGES, TINY_FIT)
    train, valid, test = data(32, 0), data(16, 1), data(24, 2)
    with precision.policy(params.precision):
        source = build_source_model(params)
        model, head_fit = train_head(source=source, train=train, valid=valid, num_classes=2, head=params.head,
                                     seed=params.seed, augment=params.augment)
        _, tune_fit = finetune(model=model, recipe=params.finetune, lr=params.finetune_lr, unfreeze="block2",
                               train=train, valid=valid, seed=params.seed, augment=params.augment)
    assert keras.config.dtype_policy().name == "float32", "the policy leaks out of its block"
    assert head_fit.history["loss"][-1] < head_fit.history["loss"][0]
    assert np.isfinite(tune_fit.history["loss"]).all()
    base = model.get_layer(BASE_NAME)
    assert compute_dtypes(base) == {"bfloat16"} and {w.dtype for w in base.weights} == {"float32"}
    output = model.get_layer(HEAD_NAME).get_layer(OUTPUT_NAME)
    assert output.compute_dtype == "float32" and source.get_layer("source_head").compute_dtype == "float32"
    probs = model.predict(test[0], verbose=0)
    assert probs.dtype == np.float32

    settings = params.export.model_copy(update={"quantize": False})
    record = export(model=model, out_dir=tmp_path / "export", test_x=test[0], test_y=test[1], calibration=None,
                    classes=["a", "b"], image=params.image, rules=Rules.of(params.validate), settings=settings,
                    extra={})
    assert record.parity["max_abs_diff"] <= settings.tolerance
    graph = onnx.load(str(tmp_path / "export" / "model.onnx")).graph
    types = {t.data_type for t in graph.initializer} | {v.type.tensor_type.elem_type for v in graph.output}
    assert onnx.TensorProto.BFLOAT16 not in types and onnx.TensorProto.FLOAT in types
    assert not [n for n in graph.node if n.op_type == "Cast"
                and any(a.name == "to" and a.i == onnx.TensorProto.BFLOAT16 for a in n.attribute)]
    # the float32 copy computes what the bfloat16 model does, up to bfloat16's rounding
    assert np.abs(precision.cast(model, "float32").predict(test[0], verbose=0) - probs).max() < 0.05

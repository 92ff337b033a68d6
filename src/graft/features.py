"""Stage ``features``: the frozen feature extractor's output, computed once.

While the base is frozen and augmentation is off, every head-phase epoch would push the same
images through the same frozen layers. This stage runs them once (adapter, base, pooling) for
train and valid and stores the result as a DVC-cached artifact; ``train_head`` then trains the
head on it, which is many times faster and gives the same model. The key in ``features.json``
(source model, split, pooling) guards against features that do not belong to the inputs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from graft import model as graft_model, splits
from graft.atomic import atomic_path, write_json
from graft.config import Params
from graft.summary import read_json
from graft.training import fingerprint

MANIFEST = "features.json"


@dataclass(frozen=True)
class Features:
    train: tuple[np.ndarray, np.ndarray]
    valid: tuple[np.ndarray, np.ndarray]


def key(params: Params) -> str:
    """What the cached features depend on: model A, the split, and how the head pools."""
    return fingerprint(params.paths.source_model, params.paths.split / "split.csv", params.head.pooling)


def why_not_cached(params: Params) -> str | None:
    if not params.head.cache_features:
        return "head.cache_features is false"
    if params.augment.enabled:
        return "augmentation is on (each epoch sees other pixels)"
    return None


def extract(extractor, x: np.ndarray, *, batch_size: int = 256) -> tuple[np.ndarray, float]:
    """Features of ``x`` and the forward pass's images per second (tracing included).

    One compiled function for any batch size, called batch by batch: Keras' ``predict`` would
    build an input pipeline per call and trace again for each new final-batch shape, fixed costs
    larger than the forward pass on a small set."""
    import tensorflow as tf

    start = time.perf_counter()
    forward = tf.function(lambda batch: extractor(batch, training=False),
                          input_signature=[tf.TensorSpec((None, *x.shape[1:]), tf.as_dtype(x.dtype))])
    features = [forward(x[i:i + batch_size]).numpy() for i in range(0, len(x), batch_size)]
    features = np.concatenate(features) if features else np.zeros((0, *extractor.output_shape[1:]), "float32")
    return features, len(x) / max(time.perf_counter() - start, 1e-9)


def compute(*, source, params: Params, train: tuple[np.ndarray, np.ndarray],
            valid: tuple[np.ndarray, np.ndarray]) -> tuple[Features, float]:
    """The frozen part of model B (adapter, base, pooling) applied to ``train`` and ``valid`` once,
    and its speed in images/s."""
    model = graft_model.graft_head(source, num_classes=len(params.data.target_classes), head=params.head,
                                   seed=params.seed)
    features, speed = extract(graft_model.feature_extractor(model), np.concatenate([train[0], valid[0]]))
    return Features(train=(features[:len(train[0])], train[1]), valid=(features[len(train[0]):], valid[1])), speed


def cache(*, params: Params, out_dir: Path) -> dict:
    """Write ``out_dir/{train,valid}.npz`` and the manifest; return the manifest."""
    reason = why_not_cached(params)
    with atomic_path(out_dir, directory=True) as tmp:
        if reason:
            report = {"cached": False, "reason": reason}
        else:
            train, valid = (splits.load(params, name) for name in ("train", "valid"))
            features, speed = compute(source=graft_model.load(params.paths.source_model), params=params,
                                      train=(train.x, train.y), valid=(valid.x, valid.y))
            report = {"cached": True, "key": key(params), "base": params.base.kind, "pooling": params.head.pooling,
                      "shape": list(features.train[0].shape[1:]), "images_per_second": round(speed, 1)}
            for name in ("train", "valid"):
                x, y = getattr(features, name)
                np.savez(tmp / f"{name}.npz", x=x, y=y)
                report[name] = {"images": len(y)}
        write_json(tmp / MANIFEST, report)
    return report


def load(params: Params) -> Features | None:
    """The cached features when they exist and belong to the current inputs, else None."""
    folder = params.paths.features
    report = read_json(folder / MANIFEST)
    if not report or not report.get("cached") or why_not_cached(params) or report.get("key") != key(params):
        return None
    arrays = {name: np.load(folder / f"{name}.npz") for name in ("train", "valid")}
    return Features(**{name: (a["x"], a["y"]) for name, a in arrays.items()})


def run(params: Params) -> None:
    report = cache(params=params, out_dir=params.paths.features)
    if report["cached"]:
        print(f"features: {report['train']['images']} train and {report['valid']['images']} valid images through the "
              f"frozen {report['base']} base once ({report['shape']} each, {report['images_per_second']:.0f} images/s)")
    else:
        print(f"features: not cached ({report['reason']}); train_head runs the frozen base every epoch")

"""The frozen feature extractor's output, computed once (stage ``features``).

While the base is frozen and augmentation is off, every head-phase epoch would push the same
images through the same frozen layers. The ``features`` stage runs them once (adapter, base,
pooling) for train and valid and stores the result as a DVC-cached artifact; ``train_head``
then trains the head on it, which is many times faster and gives the same model. The key in
``features.json`` (source model, split, pooling) guards against features that do not belong to
the inputs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from graft import artifacts
from graft.files import atomic_path, write_json
from graft.model.build import graft_head
from graft.model.surgery import feature_extractor
from graft.records import FeaturesRecord
from graft.train.resume import fingerprint

ARRAYS = ("train", "valid")  # one .npz each in the features folder


@dataclass(frozen=True)
class Features:
    train: tuple[np.ndarray, np.ndarray]
    valid: tuple[np.ndarray, np.ndarray]


def key(params) -> str:
    """What the cached features depend on: model A, the split, and how the head pools."""
    return fingerprint(artifacts.SOURCE_MODEL.path(params.paths), artifacts.SPLIT_TABLE.path(params.paths),
                       params.head.pooling)


def why_not_cached(params) -> str | None:
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


def compute(*, source, params, train: tuple[np.ndarray, np.ndarray],
            valid: tuple[np.ndarray, np.ndarray]) -> tuple[Features, float]:
    """The frozen part of model B (adapter, base, pooling) applied to ``train`` and ``valid`` once,
    and its speed in images/s."""
    model = graft_head(source, num_classes=len(params.data.target_classes), head=params.head, seed=params.seed)
    features, speed = extract(feature_extractor(model), np.concatenate([train[0], valid[0]]))
    return Features(train=(features[:len(train[0])], train[1]), valid=(features[len(train[0]):], valid[1])), speed


def write(*, params, out_dir: Path, features: Features | None) -> FeaturesRecord:
    """Write ``out_dir``: {train,valid}.npz and features.json, or, when the features are not to
    be cached (``features`` None), only the record of why; return the record. The same features
    give the same bytes (no timings in the record; np.savez dates its entries 1980-01-01): DVC re-runs
    nothing after a features stage that re-ran with the same result."""
    with atomic_path(out_dir, directory=True) as tmp:
        if features is None:
            record = FeaturesRecord(cached=False, reason=why_not_cached(params))
        else:
            for name in ARRAYS:
                x, y = getattr(features, name)
                np.savez(tmp / f"{name}.npz", x=x, y=y)
            record = FeaturesRecord(cached=True, key=key(params), base=params.base.kind, pooling=params.head.pooling,
                                    shape=list(features.train[0].shape[1:]),
                                    **{name: {"images": len(getattr(features, name)[1])} for name in ARRAYS})
        write_json(tmp / artifacts.FEATURES_RECORD.name, record.to_json())
    return record


def load(params) -> Features | None:
    """The cached features when they exist and belong to the current inputs, else None."""
    record = artifacts.FEATURES_RECORD.read_or_none(params.paths)
    if record is None or not record.cached or why_not_cached(params) or record.key != key(params):
        return None
    folder = artifacts.FEATURES.path(params.paths)
    arrays = {name: np.load(folder / f"{name}.npz") for name in ARRAYS}
    return Features(**{name: (a["x"], a["y"]) for name, a in arrays.items()})

"""tf.distribute for the training phases: ``distribute: none | mirrored | multi_worker`` in params.yaml.

- ``none``: TensorFlow's default (one device);
- ``mirrored``: ``tf.distribute.MirroredStrategy`` over every local GPU (or the logical CPU
  devices configured before TensorFlow starts), gradients all-reduced each step;
- ``multi_worker``: ``tf.distribute.MultiWorkerMirroredStrategy`` over the machines listed in
  ``TF_CONFIG`` (JSON: ``{"cluster": {"worker": ["host1:port", ...]}, "task": {"type": "worker",
  "index": i}}``). Run the same stage (``graft train_head``) on every worker, each with its own
  ``task.index``; worker 0 is the chief, whose outputs DVC records.

A training stage builds, compiles and fits its model inside :func:`scope`; ``batch_size`` stays
the global batch, split across the replicas.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator

from graft.errors import DistributeError


def check_tf_config(env: dict[str, str] | None = None) -> dict:
    """The parsed ``TF_CONFIG`` that ``multi_worker`` needs, or :class:`DistributeError` saying what is wrong."""
    raw = (os.environ if env is None else env).get("TF_CONFIG", "")
    fix = ('set TF_CONFIG on every worker, e.g. TF_CONFIG=\'{"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
           '"task": {"type": "worker", "index": 0}}\', or use distribute: mirrored (one machine) or none')
    if not raw:
        raise DistributeError(f"params.yaml: distribute: multi_worker needs TF_CONFIG in the environment; {fix}")
    try:
        spec = json.loads(raw)
        workers = spec["cluster"]["worker"]
        task = spec["task"]
        index = int(task["index"])
    except (ValueError, KeyError, TypeError) as err:
        raise DistributeError(f"params.yaml: distribute: multi_worker: TF_CONFIG is not usable ({err}); {fix}") from None
    if not workers or not 0 <= index < len(workers):
        raise DistributeError(f"params.yaml: distribute: multi_worker: TF_CONFIG task.index {index} is not one of "
                              f"the {len(workers)} workers; {fix}")
    return spec


def strategy(kind: str):
    """The ``tf.distribute`` strategy for ``kind`` (params.yaml's ``distribute``, checked by
    graft.config); None for ``none``."""
    if kind == "none":
        return None
    if kind == "multi_worker":
        check_tf_config()
    import tensorflow as tf

    return tf.distribute.MirroredStrategy() if kind == "mirrored" else tf.distribute.MultiWorkerMirroredStrategy()


@contextlib.contextmanager
def scope(kind: str) -> Iterator[object | None]:
    """Enter the strategy's scope (a no-op for ``none``); yields the strategy or None."""
    chosen = strategy(kind)
    if chosen is None:
        yield None
        return
    print(f"distribute: {kind}, {chosen.num_replicas_in_sync} replicas in sync")
    with chosen.scope():
        yield chosen

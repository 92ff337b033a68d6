"""Unit: TensorFlow's known start-up lines stay out of a stage's output, and nothing else does."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from graft import tf_noise
from tests.helpers import env

# As TF 2.21 printed them here (importing tensorflow, a first op, a tf.data pipeline; TF_CPP_MIN_LOG_LEVEL=2)
NOISE = [
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    "I0000 00:00:1796222666.482173   30899 port.cc:153] oneDNN custom operations are on. You may see slightly different "
    "numerical results due to floating-point round-off errors from different computation orders. To turn them off, set "
    "the environment variable `TF_ENABLE_ONEDNN_OPTS=0`.",
    "I0000 00:00:1796222666.482628   30899 cudart_stub.cc:31] Could not find cuda drivers on your machine, GPU will not be "
    "used.",
    "E0000 00:00:1796222670.133644   30899 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error: Failed call "
    "to cuInit: UNKNOWN ERROR (303)",
    "E0000 00:00:1796223345.767002    9311 node_def_util.cc:682] NodeDef mentions attribute use_unbounded_threadpool which "
    "is not in the op definition: Op<name=MapDataset; ...>",
    "2025-09-17 14:44:05.157831: I external/local_xla/xla/tsl/cuda/cudart_stub.cc:32] Could not find cuda drivers on "
    "your machine, GPU will not be used.",
    # graft evaluate on the default run (reference run of 2026-12-02)
    "WARNING:tensorflow:5 out of the last 17 calls to <function TensorFlowTrainer.make_predict_function.<locals>."
    "one_step_on_data_distributed at 0x7fe7dbf1ff60> triggered tf.function retracing. Tracing is expensive and the "
    "excessive number of tracings could be due to (1) creating @tf.function repeatedly in a loop",
]
REAL = [
    "E0000 00:00:1796222670.133644   30899 cuda_platform.cc:52] failed call to cuInit: CUDA_ERROR_OUT_OF_MEMORY",
    "F0000 00:00:1796222670.133644   30899 port.cc:153] Check failed: oneDNN custom operations are on",
    "graft pretrain: error: something real",
    "WARNING:tensorflow:Model's `__init__()` arguments contain non-serializable objects",
]


def test_known_lines_are_the_measured_ones_and_real_errors_are_not():
    assert all(tf_noise.is_known(line.encode()) for line in NOISE)
    assert not any(tf_noise.is_known(line.encode()) for line in REAL)


STAGE_LIKE = textwrap.dedent("""
    import os, sys, warnings
    import graft
    from graft.tf_noise import filtered_stderr
    with filtered_stderr():
        print("before", file=sys.stderr, flush=True)
        if len(sys.argv) == 1:
            import tensorflow as tf  # as the stages import it, after graft
            tf.data.Dataset.range(3).map(lambda x: x + 1).reduce(tf.constant(0, tf.int64), lambda a, b: a + b).numpy()
        warnings.warn("In the future `np.object` will be defined as the corresponding NumPy scalar.", FutureWarning)
        os.write(2, REAL.encode())  # C-level writes that are not known pass
        os.write(2, b"progress 50%")  # a line without its newline yet, as a progress bar writes
        if len(sys.argv) > 1:
            os.abort()
    print("after", file=sys.stderr)
""")


def stage_like(*args: str) -> subprocess.CompletedProcess:
    script = f"REAL = {chr(10).join(REAL) + chr(10)!r}\n" + STAGE_LIKE
    return subprocess.run([sys.executable, "-c", script, *args], env=env(), capture_output=True, text=True, timeout=300)


def test_tensorflow_s_start_up_lines_stay_out_and_everything_else_passes_in_order():
    result = stage_like()
    assert result.returncode == 0, result.stderr
    assert result.stderr == "before\n" + "".join(f"{line}\n" for line in REAL) + "progress 50%after\n"


def test_a_crash_loses_nothing_but_the_known_lines():
    result = stage_like("abort")  # without TensorFlow: the copier, not TF, is under test
    assert result.returncode < 0  # SIGABRT
    assert result.stderr == "before\n" + "".join(f"{line}\n" for line in REAL) + "progress 50%"

"""TensorFlow's known start-up lines, kept out of a stage's output; every other line passes.

TF 2.21 logs through absl before absl's logging is initialised, so ``TF_CPP_MIN_LOG_LEVEL``
does not reach these lines (tensorflow/tensorflow#100442; measured: level 3 still prints them),
and no other variable does; ``TF_ENABLE_ONEDNN_OPTS=0`` would silence one by changing the
numerics. They are written by C++ straight to file descriptor 2, so :func:`filtered_stderr`
points fd 2 at a pipe read by a small separate process (``python -m graft.tf_noise``) that drops
the lines of :data:`KNOWN` and copies everything else, as it comes, to the real stderr. Being
another process, it still copies every byte if the stage crashes or aborts (a C++ ``F`` line,
then SIGABRT): nothing but these known lines can be lost. Python's one known warning (keras /
tf2onnx touching ``np.object`` at export) is filtered with :mod:`warnings`, by its message.
"""

from __future__ import annotations

import contextlib
import os
import re
import select
import signal
import subprocess
import sys
import warnings
from collections.abc import Iterator

# absl/glog's prefix ("I0000 00:00:1796222666.482173   30899 ") or TF's own ("2025-09-17 14:44:05.157831: I "),
# then the source file, as TF 2.16-2.21 print them on a machine without a GPU
_PREFIX = r"(?:[IWE]\d{4} \d\d:\d\d:\d+\.\d+ +\d+ |\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: [IWE] )(?:\S+/)?"
KNOWN = re.compile("|".join([
    r"WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR",
    _PREFIX + r"port\.cc:\d+\] oneDNN custom operations are on\. ",
    _PREFIX + r"cudart_stub\.cc:\d+\] Could not find cuda drivers on your machine, GPU will not be used\.",
    # cuInit's "no driver" (303) only: any other CUDA error is a real one and passes
    _PREFIX + r"cuda_platform\.cc:\d+\] failed call to cuInit: .*UNKNOWN ERROR \(303\)",
    # tf.data's graphs carry an attribute the installed op registry does not list: harmless, printed per dataset
    _PREFIX + r"node_def_util\.cc:\d+\] NodeDef mentions attribute use_unbounded_threadpool which is not in the op",
    # a performance hint when a stage scores several models in a row (evaluate: head, fine-tuned, scratch); the
    # scores are the same either way
    r"WARNING:tensorflow:\d+ out of the last \d+ calls to <function \S+ at 0x[0-9a-f]+> triggered tf\.function "
    r"retracing\.",
]))
NP_OBJECT = r"In the future `np\.object` will be defined as the corresponding NumPy scalar"
PARTIAL_AFTER = 0.1  # seconds: a line without its newline yet (a progress bar) is copied after this long
EXIT_TIMEOUT = 10  # seconds to wait for the copier to drain at the end (a stage's leftover child may hold the pipe)


def is_known(line: bytes) -> bool:
    return KNOWN.match(line.decode("utf-8", "replace")) is not None


@contextlib.contextmanager
def filtered_stderr() -> Iterator[None]:
    """Within the block, this process's fd 2 (and its children's) loses :data:`KNOWN` lines, and
    Python drops the ``np.object`` FutureWarning; on leaving, fd 2 is the real stderr again."""
    warnings.filterwarnings("ignore", message=NP_OBJECT, category=FutureWarning)
    sys.stderr.flush()
    real = os.dup(2)
    copier = subprocess.Popen([sys.executable, "-m", "graft.tf_noise"], stdin=subprocess.PIPE, stdout=real,
                              stderr=real)
    os.dup2(copier.stdin.fileno(), 2)
    copier.stdin.close()
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(real, 2)  # closes this process's end of the pipe: the copier drains it and exits
        os.close(real)
        with contextlib.suppress(subprocess.TimeoutExpired):
            copier.wait(timeout=EXIT_TIMEOUT)


def copy(source: int, sink: int) -> None:
    """Copy ``source`` to ``sink`` until end of file, dropping the complete lines that are known."""
    pending = b""
    while True:
        ready, _, _ = select.select([source], [], [], PARTIAL_AFTER if pending else None)
        if not ready:  # a partial line that stayed partial: not a log line (they come whole), copy it now
            write(sink, pending)
            pending = b""
            continue
        chunk = os.read(source, 65536)
        if not chunk:
            break
        *lines, pending = (pending + chunk).split(b"\n")
        out = b"".join(line + b"\n" for line in lines if not is_known(line))
        write(sink, out)
    write(sink, pending)


def write(fd: int, data: bytes) -> None:
    while data:
        data = data[os.write(fd, data):]


if __name__ == "__main__":
    for sig in (signal.SIGINT, signal.SIGTERM):  # the group's Ctrl-C or kill is for the stage: drain until it ends
        signal.signal(sig, signal.SIG_IGN)
    copy(sys.stdin.fileno(), sys.stdout.fileno())

"""onnxruntime timings in a process without TensorFlow, as consumers run the model; driven by
``bench/onnx_speed.py`` one command at a time, so that its rounds interleave with Keras'.

    python bench/ort_worker.py --threads N --shape H,W,C --input NAME --output NAME name=path.onnx [...]

Reads commands on stdin, one per line, and answers each with one JSON line on stdout:
``latency <name> <runs>`` -> ``[p50_ms, p99_ms]`` of single-image calls;
``throughput <name> <seconds>`` -> images/s at batch 32.
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np
import onnxruntime as ort
from timing import latency_ms, throughput  # bench/, the script's own folder


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--shape", required=True)
    parser.add_argument("--input", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("models", nargs="+")
    args = parser.parse_args()
    shape = tuple(int(d) for d in args.shape.split(","))
    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads  # 0: onnxruntime's default
    sessions = {}
    for item in args.models:
        name, path = item.split("=", 1)
        sessions[name] = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    calls = {name: (lambda x, session=session: session.run([args.output], {args.input: x}))
             for name, session in sessions.items()}
    if "tensorflow" in sys.modules:
        raise SystemExit("the onnxruntime worker must run without TensorFlow")
    rng = np.random.default_rng(0)
    x1, x32 = (rng.integers(0, 256, (n, *shape), dtype=np.uint8) for n in (1, 32))
    answers, sys.stdout = sys.stdout, sys.stderr  # whatever a library prints cannot break the protocol
    print(json.dumps("ready"), file=answers, flush=True)
    for line in sys.stdin:
        command, name, amount = line.split()
        if command not in ("latency", "throughput"):
            raise SystemExit(f"unknown command {command!r}: latency or throughput")
        call = calls[name]
        answer = list(latency_ms(call, x1, int(amount))) if command == "latency" else throughput(call, x32, float(amount))
        print(json.dumps(answer), file=answers, flush=True)


if __name__ == "__main__":
    main()

"""``graft <stage>``: thin entries that load params.yaml and call one stage.

Errors a user can fix (bad params, missing data, failed validation, ONNX parity) are printed
as one clear message with exit code 1; no traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

import graft  # noqa: F401  (telemetry off before anything else is imported)
from graft import config

STAGES = ("ingest", "validate", "split", "pretrain", "features", "advise", "train_head", "finetune", "scratch", "evaluate",
          "export")


def _user_errors() -> tuple[type[BaseException], ...]:
    from graft.fashion_mnist import DataNotFound

    errors: list[type[BaseException]] = [config.ConfigError, DataNotFound, FileNotFoundError]
    for module, name in (("graft.validate", "ValidationFailed"), ("graft.export", "ParityError"),
                         ("graft.gate", "GateRefused"), ("graft.compare", "PoolTooSmall"),
                         ("graft.ingest", "TargetFolderError"), ("graft.split", "SplitError"),
                         ("graft.advise", "ProbeError")):
        if module in sys.modules:
            errors.append(getattr(sys.modules[module], name))
    return tuple(errors)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="graft", description=__doc__.splitlines()[0])
    parser.add_argument("--params", default=str(config.DEFAULT_PARAMS), help="params file (default: params.yaml)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for stage in STAGES:
        commands.add_parser(stage, help=f"run the {stage} stage (as `dvc repro` does)")
    commands.add_parser("summary", help="print the summary of the last run")
    predict = commands.add_parser("predict", help="score images with model.onnx (no TensorFlow needed)")
    predict.add_argument("images", nargs="+", help="image files or folders")
    predict.add_argument("--model", default="models/export/model.onnx")
    predict.add_argument("--format", choices=("json", "csv"), default="json")
    predict.add_argument("--top-k", type=int, default=1)
    comp = commands.add_parser("compare", help="transfer against training from scratch, over seeds and sizes")
    comp.add_argument("--seeds", type=int, default=3, help="how many seeds (seed, seed+1, ...)")
    comp.add_argument("--sizes", default="", help="training images per class for the data-efficiency curve, "
                                                   "e.g. 10,50,100,500 (drawn from the unused labelled pool)")
    comp.add_argument("--out", default="reports/compare")
    args = parser.parse_args(argv)
    try:
        if args.command == "predict":
            return _predict(args)
        if args.command == "compare":
            return _compare(args)
        params = config.load(args.params)
        if args.command == "summary":
            from graft.summary import summarize

            print(summarize(params))
        else:
            importlib.import_module(f"graft.{args.command}").run(params)
    except _user_errors() as err:
        print(f"graft {args.command}: error: {err}", file=sys.stderr)
        return 1
    return 0


def _compare(args: argparse.Namespace) -> int:
    from pathlib import Path

    from graft.compare import compare

    params = config.load(args.params)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    summary = compare(params=params, seeds=[params.seed + i for i in range(args.seeds)], sizes=sizes,
                      out_dir=Path(args.out))
    t, s = summary["transfer"], summary["scratch"]
    print(f"compare: over {args.seeds} seeds, {summary['train_per_class']} training images per class: "
          f"transfer {t['mean']:.4f} +- {t['std']:.4f}, scratch {s['mean']:.4f} +- {s['std']:.4f}; "
          f"transfer removes {summary['lift']['error_reduction']:.1f}x the errors ({args.out}/compare.json)")
    return 0


def _predict(args: argparse.Namespace) -> int:
    import csv
    import json

    from graft.predict import Predictor, expand

    results = Predictor(args.model).predict(expand(args.images), top_k=args.top_k)
    if args.format == "json":
        print(json.dumps(results, indent=2))
    else:
        writer = csv.writer(sys.stdout)
        writer.writerow(["path", "label", "confidence", "error"])
        for r in results:
            writer.writerow([r["path"], r.get("label", ""), r.get("confidence", ""), r.get("error", "")])
    return 1 if any("error" in r for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())

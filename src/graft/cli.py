"""``graft <command>``: a thin command line over graft's keyword-only cores.

``graft <stage>`` runs one DVC stage as ``dvc repro`` does (the stages are the modules of
graft.stages); ``graft summary``, ``graft register``, ``graft compare`` and ``graft predict`` are
the other commands.
A user error (:class:`graft.errors.GraftError`) is printed as one message with exit code 1 and
no traceback; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import json
import sys
from pathlib import Path

import graft  # noqa: F401  (tool defaults set before anything else is imported)
from graft import config
from graft.config.outputs import sweep
from graft.errors import GraftError, ModelFileError

DISK_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)  # the user's to fix: free space


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="graft", description=__doc__.splitlines()[0].strip("`"))
    top.add_argument("--params", default=None, help="params file (default: params.yaml)")
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for stage in config.stage_names():
        commands.add_parser(stage, help=f"run the {stage} stage (as `dvc repro` does)")
    commands.add_parser("summary", help="print the summary of the last run")
    commands.add_parser("register", help="register HEAD's committed, blessed run as a version of the model in GTO's "
                                         "registry and assign it prod (git tags only; commits nothing)")
    commands.add_parser("schema", help="print the JSON Schema of params.yaml (docs/params.schema.json, for editors)")
    predict = commands.add_parser("predict", help="score images with model.onnx (no TensorFlow needed)")
    predict.add_argument("images", nargs="+", help="image files or folders")
    predict.add_argument("--model", default=None, help="an ONNX model graft exported (default: the project's published "
                                                        "model.onnx, from params.yaml's paths.export)")
    predict.add_argument("--format", choices=("json", "csv"), default="json")
    predict.add_argument("--top-k", type=int, default=1)
    comp = commands.add_parser("compare", help="transfer against training from scratch, over seeds and sizes")
    comp.add_argument("--seeds", type=int, default=3, help="how many seeds (seed, seed+1, ...)")
    comp.add_argument("--sizes", default="", help="training images per class for the data-efficiency curve, "
                                                   "e.g. 10,50,100,500 (drawn from the unused labelled pool)")
    comp.add_argument("--out", default="reports/compare")
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        if args.command == "predict":
            return _predict(args)
        if args.command == "schema":
            print(json.dumps(config.json_schema(), indent=2))
            return 0
        params = config.load(args.params or config.DEFAULT_PARAMS)
        sweep(params, Path(args.params or config.DEFAULT_PARAMS).parent)  # what killed writers left (graft's names only)
        if args.command == "summary":
            from graft.evaluate.summary import summarize

            print(summarize(params))
        elif args.command == "register":
            from graft.registry import register

            print("register: " + register(Path("."), paths=params.paths))
        elif args.command == "compare":
            _compare(args, params)
        else:
            importlib.import_module(f"graft.stages.{args.command}").run(params)
    except GraftError as err:
        print(f"graft {args.command}: error: {err}", file=sys.stderr)
        return 1
    except OSError as err:
        if err.errno not in DISK_FULL:
            raise  # any other OSError is a bug, with its traceback
        print(f"graft {args.command}: error: {err.strerror} writing {err.filename or 'an output'}: the disk (or a "
              "quota) is full; nothing was published; free space and run again", file=sys.stderr)
        return 1
    return 0


def _compare(args: argparse.Namespace, params) -> None:
    from graft.evaluate.compare import compare
    from graft.strategy.plan import read_plan

    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    summary = compare(params=params, plan=read_plan(params), seeds=[params.seed + i for i in range(args.seeds)],
                      sizes=sizes, out_dir=Path(args.out))
    t, s, lift = summary["transfer"], summary["scratch"], summary["lift"]
    ratio = (f"; scratch makes {lift['error_reduction']:.1f}x transfer's errors" if lift.get("error_reduction")
             else "")
    print(f"compare: over {args.seeds} seeds, {summary['train_per_class']} training images per class: "
          f"transfer ({summary['plan']}) {t['mean']:.4f} +- {t['std']:.4f}, scratch {s['mean']:.4f} +- {s['std']:.4f}"
          f"{ratio} ({args.out}/compare.json)")


def _predict(args: argparse.Namespace) -> int:
    from graft.predict import Predictor, expand, print_results

    model = args.model or published_model(Path(args.params or config.DEFAULT_PARAMS))
    results = Predictor(model).predict(expand(args.images), top_k=args.top_k)
    print_results(results, fmt=args.format)
    return 1 if any("error" in r for r in results) else 0


def published_model(params_file: Path) -> Path:
    """Where the project of ``params_file`` publishes model.onnx."""
    from graft import artifacts

    if not params_file.is_file():
        raise ModelFileError(f"no --model given, and no {params_file} here to find the published model in; "
                             "pass --model path/to/model.onnx")
    return artifacts.MODEL_ONNX.path(config.load(params_file).paths)


if __name__ == "__main__":
    sys.exit(main())

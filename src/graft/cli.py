"""``graft <command>``: a thin command line over graft's keyword-only cores.

``graft <stage>`` runs one DVC stage as ``dvc repro`` does (the stages are the modules of
graft.stages); ``graft summary``, ``graft register``, ``graft compare`` and ``graft predict`` are
the other commands.
A user error (:class:`graft.errors.GraftError`) is printed as one message with exit code 1 and
no traceback; anything else is a bug and keeps its traceback. The module imports only what
``graft predict`` needs (the consumer install, without ``graft[pipeline]``): params.yaml's schema
and the stages are imported by the commands that use them.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import json
import re
import sys
from importlib import metadata
from pathlib import Path

import graft  # (tool defaults set before anything else is imported)
from graft import stages
from graft.errors import ExtraMissing, GraftError, ModelFileError

DISK_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)  # the user's to fix: free space
PIPELINE_EXTRA = "pipeline"
PARAMS_HELP = "the params file to read (default: params.yaml in the current folder, the project root)"


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="graft", description=__doc__.splitlines()[0].strip("`"))
    top.add_argument("--version", action="version", version=f"graft {graft.__version__}")
    top.add_argument("--params", default=None, metavar="FILE", help=PARAMS_HELP)
    # --params after the command too (`graft evaluate --params p.yaml`); not given there, the one before it stands
    after = argparse.ArgumentParser(add_help=False)
    after.add_argument("--params", default=argparse.SUPPRESS, metavar="FILE", help=PARAMS_HELP)
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, summary: str, description: str | None = None) -> argparse.ArgumentParser:
        return commands.add_parser(name, parents=[after], help=summary, description=description or summary)

    for stage in stages.names():
        what = stages.description(stage)
        command(stage, f"run the {stage} stage (as `dvc repro` does)",
                f"Run the {stage} stage of dvc.yaml, as `dvc repro` does: {what} Needs "
                f"`pip install 'graft[{PIPELINE_EXTRA}]'`.")
    command("summary", "print the summary of the last run",
            "Print the summary of the last run: the data, the split, each phase's test accuracy, the gate and the "
            "published model, read from the run's records.")
    command("register", "register HEAD's committed, blessed run in GTO's registry and assign it prod",
            "Register HEAD's committed, blessed run as a version of the model in GTO's registry and assign it the "
            "prod stage (git tags only; commits nothing). Commit the run first.")
    command("schema", "print the JSON Schema of params.yaml (docs/params.schema.json, for editors)")
    predict = command("predict", "score images with model.onnx (no TensorFlow needed)",
                      "Score image files with a model.onnx graft exported, with onnxruntime alone (the base install "
                      "`pip install graft` is enough). Prints one result per image; a file that cannot be read "
                      "gets an error in its row and the exit code is 1.")
    predict.add_argument("images", nargs="+", help="image files, or folders (walked for image files, sorted)")
    predict.add_argument("--model", default=None, help="an ONNX model graft exported (default: the project's published "
                                                        "model.onnx, from params.yaml's paths.export)")
    predict.add_argument("--format", choices=("json", "csv"), default="json",
                         help="json: a list of {path, label, confidence, top} (default); csv: path,label,confidence,error")
    predict.add_argument("--top-k", type=int, default=1, metavar="K",
                         help="how many of the most probable classes each result lists under `top` (default: 1)")
    comp = command("compare", "transfer against training from scratch, over seeds and sizes",
                   "Train the transfer model and the scratch baseline over several seeds (and, with --sizes, several "
                   "training-set sizes) and report the lift with its spread; writes compare.json under --out.")
    comp.add_argument("--seeds", type=int, default=3, help="how many seeds (seed, seed+1, ...; default: 3)")
    comp.add_argument("--sizes", default="", help="training images per class for the data-efficiency curve, "
                                                   "e.g. 10,50,100,500 (drawn from the unused labelled pool)")
    comp.add_argument("--out", default="reports/compare", help="the folder for compare.json (default: reports/compare)")
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        try:
            return _run(args)
        except ModuleNotFoundError as err:
            if (err.name or "").split(".")[0] not in extra_modules(PIPELINE_EXTRA):
                raise  # not a package of the extra: a broken environment or a bug, with its traceback
            raise ExtraMissing(f"needs the {PIPELINE_EXTRA} extra (no module named {err.name!r} here): "
                               f"pip install 'graft[{PIPELINE_EXTRA}]'") from None
    except GraftError as err:
        print(f"graft {args.command}: error: {err}", file=sys.stderr)
        return 1
    except OSError as err:
        if err.errno not in DISK_FULL:
            raise  # any other OSError is a bug, with its traceback
        print(f"graft {args.command}: error: {err.strerror} writing {err.filename or 'an output'}: the disk (or a "
              "quota) is full; nothing was published; free space and run again", file=sys.stderr)
        return 1


def _run(args: argparse.Namespace) -> int:
    if args.command == "predict":
        return _predict(args)
    if args.command == "schema":
        from graft import config

        print(json.dumps(config.json_schema(), indent=2))
    elif args.command == "summary":
        from graft.evaluate.summary import summarize

        print(summarize(load_params(args.params)))
    elif args.command == "register":
        from graft.registry import register

        print("register: " + register(Path("."), paths=load_params(args.params).paths))
    elif args.command == "compare":
        from graft.tf_noise import filtered_stderr

        with filtered_stderr():
            _compare(args, load_params(args.params))
    else:
        run_stage(args.command, args.params)
    return 0


def load_params(params_file: str | None):
    """params.yaml (or ``params_file``) read and checked, and what killed writers left swept (graft's names only)."""
    from graft import config
    from graft.config.outputs import sweep

    path = Path(params_file or config.DEFAULT_PARAMS)
    params = config.load(path)
    sweep(params, path.parent)
    return params


def run_stage(stage: str, params_file: str | None) -> None:
    """``graft <stage>``: the stage's module run on the params, TensorFlow's start-up lines kept out of its output."""
    from graft.tf_noise import filtered_stderr

    params = load_params(params_file)
    with filtered_stderr():
        importlib.import_module(f"graft.stages.{stage}").run(params)


def extra_modules(extra: str) -> set[str]:
    """The top-level modules of the packages graft's ``extra`` adds (their names as pip spells them);
    empty where graft is not installed as a distribution."""
    try:
        requires = metadata.requires("graft") or []
    except metadata.PackageNotFoundError:
        return set()
    return {re.match(r"[A-Za-z0-9_.-]+", r)[0].replace("-", "_").replace(".", "_").lower()
            for r in requires if f'extra == "{extra}"' in r}


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

    model = args.model or published_model(args.params)
    results = Predictor(model).predict(expand(args.images), top_k=args.top_k)
    print_results(results, fmt=args.format)
    return 1 if any("error" in r for r in results) else 0


def published_model(params_file: str | Path | None) -> Path:
    """Where the project of ``params_file`` (default: params.yaml here) publishes model.onnx."""
    from graft import artifacts, config

    params_file = Path(params_file or config.DEFAULT_PARAMS)
    if not params_file.is_file():
        raise ModelFileError(f"no --model given, and no {params_file} here to find the published model in; "
                             "pass --model path/to/model.onnx")
    return artifacts.MODEL_ONNX.path(config.load(params_file).paths)


if __name__ == "__main__":
    sys.exit(main())

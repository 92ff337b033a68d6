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

STAGES = ("ingest", "validate", "split", "pretrain", "train_head", "finetune", "evaluate", "export")


def _user_errors() -> tuple[type[BaseException], ...]:
    from graft.fashion_mnist import DataNotFound

    errors: list[type[BaseException]] = [config.ConfigError, DataNotFound, FileNotFoundError]
    for module, name in (("graft.validate", "ValidationFailed"), ("graft.export", "ParityError"),
                         ("graft.ingest", "TargetFolderError")):
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
    args = parser.parse_args(argv)
    try:
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


if __name__ == "__main__":
    sys.exit(main())

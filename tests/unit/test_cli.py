"""Unit: the command line, the one error type, and the package's one import-time side effect."""

from __future__ import annotations

import argparse
import ast
import subprocess
import sys
import textwrap
from importlib import metadata

import pytest
import yaml

import graft
from graft import cli, config, errors
from tests.helpers import BIN, ROOT, env, raw_params


def run_graft(*args: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "graft"), *args], cwd=cwd, env=env(), capture_output=True, text=True, timeout=300)


def test_every_stage_is_a_command(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    shown = capsys.readouterr().out
    assert all(stage in shown for stage in config.stage_names()) and "predict" in shown and "schema" in shown


def test_a_user_error_is_one_line_and_exit_1(tmp_path):
    missing = run_graft("--params", "nope.yaml", "summary", cwd=tmp_path)
    assert missing.returncode == 1 and missing.stdout == ""
    assert missing.stderr == "graft summary: error: nope.yaml: no such params file; run from the project root or pass " \
                             "--params\n"
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw_params()))
    early = run_graft("finetune", cwd=tmp_path)  # advise has not run here
    assert early.returncode == 1 and "Traceback" not in early.stderr
    assert "metrics/advice.json: missing; run `graft advise` (or `dvc repro`) first" in early.stderr


def test_a_bug_keeps_its_traceback(monkeypatch, tmp_path):
    from graft.stages import ingest

    def broken(params):
        raise ZeroDivisionError("a bug in graft")

    monkeypatch.setattr(ingest, "run", broken)
    with pytest.raises(ZeroDivisionError, match="a bug in graft"):
        cli.main(["--params", str(ROOT / "params.yaml"), "ingest"])


def test_error_types_live_in_one_module_and_are_graft_errors():
    assert all(issubclass(cls, errors.GraftError) for cls in vars(errors).values()
               if isinstance(cls, type) and issubclass(cls, Exception))
    elsewhere = []
    for path in (ROOT / "src" / "graft").rglob("*.py"):
        if path.name == "errors.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef) and any(getattr(b, "id", getattr(b, "attr", "")).endswith(("Error", "Exception"))
                                                      for b in node.bases):
                elsewhere.append(f"{path.relative_to(ROOT)}:{node.name}")
    assert elsewhere == ["src/graft/config/sections.py:ParamError"]  # pydantic's carrier of a rule's message


def test_importing_graft_sets_only_the_tool_defaults_and_its_modules_set_nothing(tmp_path):
    script = textwrap.dedent("""
        import os, pkgutil, importlib, json
        before = dict(os.environ)
        import graft
        graft_set = dict(os.environ)
        for library in ("tensorflow", "keras", "onnx", "onnxruntime", "prefect", "great_expectations", "dvc.repo",
                        "matplotlib.pyplot", "pandas", "pydantic"):
            importlib.import_module(library)  # what the libraries do on import is theirs, not graft's
        after_graft = dict(os.environ)
        for module in pkgutil.walk_packages(graft.__path__, "graft."):
            if module.name != "graft.__main__":  # `python -m graft` runs the CLI
                importlib.import_module(module.name)
        print(json.dumps({"set": sorted(set(graft_set) - set(before)), "defaults": sorted(graft.TOOL_DEFAULTS),
                          "changed_later": sorted(k for k in set(os.environ) | set(after_graft)
                                                  if os.environ.get(k) != after_graft.get(k))}))
    """)
    clean = {k: v for k, v in env().items() if k not in graft.TOOL_DEFAULTS}
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=clean, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    import json

    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert found["set"] == found["defaults"] and "DVC_NO_ANALYTICS" in found["set"]
    assert found["changed_later"] == []
    assert list(tmp_path.iterdir()) == []  # importing writes nothing


def subcommands() -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in cli.parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_every_subcommand_s_help_says_what_it_does_and_explains_each_option():
    commands = subcommands()
    assert set(commands) == {*config.stage_names(), "summary", "register", "schema", "predict", "compare"}
    for name, sub in commands.items():
        assert len(sub.description or "") > 30, name
        unexplained = [a.dest for a in sub._actions if not (a.help and len(a.help) > 10)]
        assert unexplained == [], f"graft {name}: options without help: {unexplained}"
    assert "the frozen base's output for train and valid" in commands["features"].description  # the stage's docstring
    assert "Stage ``" not in commands["features"].description


def test_version_is_the_installed_distribution_s(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out == f"graft {metadata.version('graft')}\n" == f"graft {graft.__version__}\n"


@pytest.mark.parametrize("argv", [["--params", "elsewhere/p.yaml", "evaluate"], ["evaluate", "--params", "elsewhere/p.yaml"],
                                  ["--params", "ignored.yaml", "evaluate", "--params", "elsewhere/p.yaml"]])
def test_params_is_read_before_or_after_the_command(argv, capsys):
    assert cli.parser().parse_args(argv).params == "elsewhere/p.yaml"
    assert cli.main(argv) == 1
    assert capsys.readouterr().err == ("graft evaluate: error: elsewhere/p.yaml: no such params file; run from the project "
                                       "root or pass --params\n")


def test_without_params_the_command_reads_params_yaml():
    assert cli.parser().parse_args(["evaluate"]).params is None


def test_the_consumer_path_imports_neither_the_pipeline_nor_the_params_schema():
    script = textwrap.dedent("""
        import sys
        from graft import cli, predict
        cli.parser().parse_args(["predict", "--model", "m.onnx", "x.png"])
        heavy = ("tensorflow", "keras", "dvc", "prefect", "great_expectations", "pandas", "matplotlib", "pydantic", "yaml")
        print(sorted({m.split(".")[0] for m in sys.modules} & set(heavy)))
    """)
    result = subprocess.run([sys.executable, "-c", script], env=env(), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "[]\n"


def test_the_pipeline_extra_s_modules_come_from_graft_s_own_metadata():
    modules = cli.extra_modules("pipeline")
    assert {"tensorflow", "dvc", "prefect", "great_expectations", "tqdm"} <= modules
    assert not {"onnxruntime", "numpy", "pillow", "pydantic", "yaml"} & modules  # the base install's

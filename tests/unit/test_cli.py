"""Unit: the command line, the one error type, and the package's one import-time side effect."""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap

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

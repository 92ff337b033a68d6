"""Unit: dvc.yaml and the code agree. Each stage's deps cover exactly the graft code it imports; the
stage modules are the stages of dvc.yaml; every artifact is an output of the stage that writes it,
and every output of dvc.yaml is an artifact."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

from graft import artifacts, config
from tests.helpers import ROOT, stages

SRC = ROOT / "src"
DVC_YAML = yaml.safe_load((ROOT / "dvc.yaml").read_text())
STAGE_PATH = ("run_stage", "load_params")  # the functions of graft.cli that `graft <stage>` runs


def module_file(name: str) -> Path | None:
    path = SRC / Path(*name.split("."))
    if (path / "__init__.py").is_file():
        return path / "__init__.py"
    return path.with_suffix(".py") if path.with_suffix(".py").is_file() else None


def imported(path: Path, package: str, *, top_level_only: bool = False, functions: tuple[str, ...] = ()) -> list[str]:
    """The graft modules (or names in them) that ``path`` imports; with ``top_level_only``, only the
    imports that run when the module is imported (and those in its ``functions``), not those inside other functions."""
    tree = ast.parse(path.read_text())
    nodes = ([*tree.body, *(n for f in tree.body if isinstance(f, ast.FunctionDef) and f.name in functions
                            for n in ast.walk(f))] if top_level_only else ast.walk(tree))
    found = []
    for node in nodes:
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the package upwards
                parts = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            found += [base, *(f"{base}.{a.name}" for a in node.names)]
    return [name for name in found if name.split(".")[0] == "graft"]


def closure(*roots: str, entry: str | None = None, through: tuple[str, ...] = ()) -> set[Path]:
    """Every file of the package that importing ``roots`` can run: each module, its parent packages,
    and what they import (inside functions too: a lazy import runs on some path). ``entry`` is
    followed only through its module-level imports and those inside its functions named in
    ``through`` (the CLI imports lazily, for each command what it needs)."""
    seen: set[Path] = set()
    todo = list(roots)
    if entry is not None:
        seen.add(module_file(entry))
        todo += imported(module_file(entry), entry.rpartition(".")[0], top_level_only=True, functions=through)
    while todo:
        name = todo.pop()
        path = module_file(name)
        if path is None or path in seen:
            continue  # a name inside a module, not a module
        seen.add(path)
        parts = name.split(".")
        todo += [".".join(parts[:i]) for i in range(1, len(parts))]
        todo += imported(path, name if path.name == "__init__.py" else ".".join(parts[:-1]))
    return seen


def docstring_only(path: Path) -> bool:
    """A module with nothing but its docstring cannot change what a stage computes."""
    return all(isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant) for n in ast.parse(path.read_text()).body)


def code_deps(stage: str) -> set[str]:
    return {d for d in DVC_YAML["stages"][stage]["deps"] if d.startswith("src/")}


def covered(path: Path, deps: set[str]) -> bool:
    rel = path.relative_to(ROOT).as_posix()
    return any(rel == d or rel.startswith(d.rstrip("/") + "/") for d in deps)


@pytest.mark.parametrize("stage", stages())
def test_a_stages_deps_cover_exactly_the_code_it_imports(stage):
    """`graft <stage>` runs graft.cli, then graft.stages.<stage>: a change to any file either runs
    must re-run the stage, and a change to a file neither runs must not."""
    code = {p for p in closure(f"graft.stages.{stage}", entry="graft.cli", through=STAGE_PATH) if not docstring_only(p)}
    deps = code_deps(stage)
    missing = sorted(p.relative_to(ROOT).as_posix() for p in code if not covered(p, deps))
    assert not missing, f"dvc.yaml: stage {stage} imports these but does not list them in deps: {missing}"
    for dep in deps:
        files = [ROOT / dep] if (ROOT / dep).is_file() else sorted((ROOT / dep).glob("*.py"))
        assert files, f"dvc.yaml: stage {stage}: {dep} does not exist"
        unused = [f.relative_to(ROOT).as_posix() for f in files if f not in code and not docstring_only(f)]
        assert not unused, f"dvc.yaml: stage {stage} lists {dep}, but never imports {unused}"


def test_the_walk_follows_lazy_imports_and_finds_a_missing_dep():
    """The check above can fail: a module the stage imports only inside a function is in its closure."""
    found = closure("graft.stages.finetune", entry="graft.cli", through=STAGE_PATH)
    assert SRC / "graft" / "strategy" / "plan.py" in found  # imported at module level by the stage
    assert SRC / "graft" / "evaluate" / "compare.py" not in found  # the CLI imports it lazily, for `graft compare`
    assert not covered(SRC / "graft" / "evaluate" / "compare.py", code_deps("finetune"))


def test_the_stage_modules_are_the_stages_of_dvc_yaml():
    assert config.stage_names() == sorted(stages())
    for stage, spec in DVC_YAML["stages"].items():
        assert spec["cmd"] == f"graft {stage}"
        assert len((SRC / "graft" / "stages" / f"{stage}.py").read_text().splitlines()) <= 60  # thin


def outputs(stage: str) -> list[str]:
    spec = DVC_YAML["stages"][stage]
    entries = [*spec.get("outs", []), *spec.get("metrics", []), *spec.get("plots", [])]
    return [next(iter(e)) if isinstance(e, dict) else e for e in entries]


def test_every_artifact_is_an_output_of_the_stage_that_writes_it():
    for artifact in artifacts.ALL:
        outs = outputs(artifact.stage)
        assert any(artifact.dvc == out or artifact.dvc.startswith(out + "/") for out in outs), \
            f"{artifact.dvc} is written by {artifact.stage}, but dvc.yaml does not declare it there ({outs})"


def test_every_output_of_dvc_yaml_is_an_artifact():
    spelled = {a.dvc: a for a in artifacts.ALL}
    for stage in stages():
        for out in outputs(stage):
            assert out in spelled and spelled[out].stage == stage, f"dvc.yaml: {stage} declares {out}, not in graft.artifacts"


def test_the_published_model_s_name_is_dvc_yaml_s_artifact():
    """The model card's model-index names the model as dvc.yaml's artifacts entry does (GTO, DVC Studio)."""
    assert DVC_YAML["artifacts"][artifacts.MODEL_NAME]["path"] == artifacts.EXPORT.dvc

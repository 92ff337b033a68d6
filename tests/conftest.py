"""Fixtures (shared helpers are in tests/helpers.py), and the tier markers, set by folder:
tests/unit, tests/data, tests/pipeline and tests/consumer."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from filelock import FileLock

from tests.helpers import dvc, make_project, write_fake_fashion_mnist

TIERS = ("unit", "data", "pipeline", "consumer")


# The files that take longest, longest first (measured 2026-12-03 on the 2-core AMD EPYC, pytest's
# --durations): `make test` runs pytest-xdist with --dist loadfile --no-loadscope-reorder, so the
# files go to the two workers in this order and none of the long ones starts last, to run alone
# while the other core idles (longest-processing-time-first). Every other file follows, as collected.
LONGEST_FIRST = ("pipeline/test_faults.py", "pipeline/test_pipeline.py", "pipeline/test_operations.py",
                 "unit/test_backbones.py", "consumer/test_export.py", "pipeline/test_deployment.py",
                 "pipeline/test_registry.py", "pipeline/test_flows.py", "unit/test_engine.py", "pipeline/test_compare.py",
                 "pipeline/test_strategies.py")


def _rank(item) -> int:
    name = Path(item.fspath).relative_to(Path(__file__).parent).as_posix()
    return LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST)


def pytest_collection_modifyitems(items):
    items.sort(key=_rank)  # stable: a file's tests keep their order
    for item in items:
        tier = Path(item.fspath).relative_to(Path(__file__).parent).parts[0]
        if tier not in TIERS:
            raise pytest.UsageError(f"{item.nodeid}: every test lives in one tier folder: {', '.join(TIERS)}")
        item.add_marker(getattr(pytest.mark, tier))


@pytest.fixture(scope="session")
def fake_fashion_mnist(tmp_path_factory) -> Path:
    return write_fake_fashion_mnist(tmp_path_factory.mktemp("fashion-mnist"))


@pytest.fixture(scope="session")
def tiny_project_run(tmp_path_factory, worker_id, fake_fashion_mnist) -> tuple[Path, str]:
    """One real `dvc repro` of the whole pipeline on tiny data, shared by the slow tests: made once
    for the whole run (the first pytest-xdist worker to need it makes it, under a file lock, and
    the others wait for it), and each worker gets its own copy, so its tests may change it."""
    shared = tmp_path_factory.getbasetemp() if worker_id == "master" else tmp_path_factory.getbasetemp().parent
    made, output = shared / "tiny-project", shared / "tiny-project.repro.txt"
    with FileLock(shared / "tiny-project.lock", timeout=900):  # a wait with an end: the repro takes ~80 s
        if not output.exists():
            make_project(made, fake_data=fake_fashion_mnist)  # (the maker's; the copies read it too)
            output.write_text(dvc(made, "repro").stdout)  # written last: its presence says the project is whole
    copy = tmp_path_factory.mktemp("pipeline") / "project"
    subprocess.run(["cp", "-a", str(made), str(copy)], check=True, timeout=300)  # -a: hard links stay links (DVC's cache)
    return copy, output.read_text()


@pytest.fixture(scope="session")
def tiny_project(tiny_project_run) -> Path:
    return tiny_project_run[0]


@pytest.fixture(scope="session")
def tiny_project_first_run(tiny_project_run) -> str:
    return tiny_project_run[1]

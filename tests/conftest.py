"""Fixtures (shared helpers are in tests/helpers.py), and the tier markers, set by folder:
tests/unit, tests/data, tests/pipeline and tests/consumer."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import dvc, make_project, write_fake_fashion_mnist

TIERS = ("unit", "data", "pipeline", "consumer")


def pytest_collection_modifyitems(items):
    for item in items:
        tier = Path(item.fspath).relative_to(Path(__file__).parent).parts[0]
        if tier not in TIERS:
            raise pytest.UsageError(f"{item.nodeid}: every test lives in one tier folder: {', '.join(TIERS)}")
        item.add_marker(getattr(pytest.mark, tier))


@pytest.fixture(scope="session")
def fake_fashion_mnist(tmp_path_factory) -> Path:
    return write_fake_fashion_mnist(tmp_path_factory.mktemp("fashion-mnist"))


@pytest.fixture(scope="session")
def tiny_project_run(tmp_path_factory, fake_fashion_mnist) -> tuple[Path, str]:
    """One real `dvc repro` of the whole pipeline on tiny data, shared by the slow tests."""
    root = make_project(tmp_path_factory.mktemp("pipeline") / "project", fake_data=fake_fashion_mnist)
    return root, dvc(root, "repro").stdout


@pytest.fixture(scope="session")
def tiny_project(tiny_project_run) -> Path:
    return tiny_project_run[0]


@pytest.fixture(scope="session")
def tiny_project_first_run(tiny_project_run) -> str:
    return tiny_project_run[1]

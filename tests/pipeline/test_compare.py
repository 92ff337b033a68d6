"""Pipeline tier: transfer against scratch, the scratch recipe, and `graft compare` on the tiny pipeline."""

from __future__ import annotations

import json

import pytest

from tests.helpers import BIN, run


@pytest.mark.slow
def test_compare_runs_seeds_and_sizes(tiny_project):
    result = run([str(BIN / "graft"), "compare", "--seeds", "2", "--sizes", "3,6", "--out", "reports/cmp"],
                 tiny_project)
    summary = json.loads((tiny_project / "reports" / "cmp" / "compare.json").read_text())
    plan = json.loads((tiny_project / "metrics" / "advice.json").read_text())["plan"]["label"]
    assert summary["plan"] == plan and f"transfer ({plan})" in result.stdout  # it follows the advisor's plan
    for name in ("head", "transfer", "scratch"):
        runs = summary[name]["runs"]
        assert len(runs) == 2 and summary[name]["mean"] == pytest.approx(sum(runs) / 2)
        assert all(float(run * 20).is_integer() for run in runs)  # accuracies on the 20 test images
    assert summary["lift"]["accuracy_points"] == pytest.approx(
        round((summary["transfer"]["mean"] - summary["scratch"]["mean"]) * 100, 4))
    assert [row["per_class"] for row in summary["data_efficiency"]] == [3, 6]
    assert (tiny_project / "reports" / "cmp" / "data_efficiency.png").stat().st_size > 0


@pytest.mark.slow
def test_compare_says_when_the_pool_is_too_small(tiny_project):
    result = run([str(BIN / "graft"), "compare", "--seeds", "1", "--sizes", "10000", "--out", "reports/cmp2"],
                 tiny_project, check=False)
    assert result.returncode == 1 and "--sizes 10000" in result.stderr and "Traceback" not in result.stderr

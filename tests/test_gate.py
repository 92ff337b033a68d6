"""Unit: the release gate's decisions on hand-made metrics."""

import pytest

from graft import gate


def scores(accuracy, recalls):
    return {"accuracy": accuracy, "per_class": {c: {"recall": r} for c, r in recalls.items()}}


THRESHOLDS = {"min_accuracy": 0.99, "min_class_recall": 0.98, "max_regression": 0.005}


def test_good_model_is_blessed():
    decision = gate.decide(scores=scores(0.995, {"a": 0.99, "b": 1.0}), previous=None, **THRESHOLDS)
    assert decision == {"blessed": True, "reasons": [], "checks": decision["checks"]}
    assert all(check["ok"] for check in decision["checks"].values())


@pytest.mark.parametrize(("candidate", "previous", "words"), [
    (scores(0.985, {"a": 0.99, "b": 0.98}), None, ["accuracy 0.9850", "gate.min_accuracy 0.99"]),
    (scores(0.995, {"a": 1.0, "b": 0.97}), None, ["recall of b 0.9700", "gate.min_class_recall"]),
    (scores(0.992, {"a": 0.99, "b": 0.99}), {"accuracy": 0.998, "git_revision": "abc"},
     ["gate.max_regression", "0.9980", "abc"]),
])
def test_each_refusal_names_the_threshold(candidate, previous, words):
    decision = gate.decide(scores=candidate, previous=previous, **THRESHOLDS)
    assert not decision["blessed"] and len(decision["reasons"]) == 1
    for word in words:
        assert word in decision["reasons"][0]


def test_small_regression_within_budget_is_blessed():
    decision = gate.decide(scores=scores(0.994, {"a": 0.99, "b": 0.99}), previous={"accuracy": 0.998}, **THRESHOLDS)
    assert decision["blessed"]


def test_require_and_records(tmp_path):
    gate.require({"blessed": True}, allow_unblessed=False)
    gate.require({"blessed": False, "reasons": ["x"]}, allow_unblessed=True)
    with pytest.raises(gate.GateRefused, match="x.*export.allow_unblessed"):
        gate.require({"blessed": False, "reasons": ["x"]}, allow_unblessed=False)
    assert gate.read_record(tmp_path / "none.json") is None
    (tmp_path / "empty.json").write_text("{}")
    assert gate.read_record(tmp_path / "empty.json") is None

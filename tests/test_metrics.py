"""Unit: metrics against values computed by hand."""

import numpy as np
import pytest

from graft import metrics


def test_report_matches_hand_computed_values():
    y = np.array([0, 0, 0, 1, 1])
    probs = np.array([[0.9, 0.1], [0.6, 0.4], [0.2, 0.8], [0.3, 0.7], [0.5, 0.5]])
    r = metrics.report(y, probs, ["a", "b"])
    # predictions: 0, 0, 1, 1, 0 (ties go to the first class)
    assert r["confusion_matrix"] == [[2, 1], [1, 1]]
    assert r["accuracy"] == pytest.approx(3 / 5)
    assert r["errors"] == 2
    assert r["per_class"]["a"] == {"precision": pytest.approx(2 / 3, abs=1e-6), "recall": pytest.approx(2 / 3, abs=1e-6),
                                   "f1": pytest.approx(2 / 3, abs=1e-6), "support": 3}
    assert r["per_class"]["b"]["precision"] == pytest.approx(0.5)
    assert r["per_class"]["b"]["recall"] == pytest.approx(0.5)
    expected_loss = -np.mean(np.log([0.9, 0.6, 0.2, 0.7, 0.5]))
    assert r["loss"] == pytest.approx(expected_loss, abs=1e-6)

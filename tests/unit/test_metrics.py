"""Unit: metrics against values computed by hand."""

import numpy as np
import pytest

from graft.evaluate import metrics


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


def test_macro_f1_auc_and_calibration_by_hand():
    y = np.array([0, 0, 0, 1, 1])
    probs = np.array([[0.9, 0.1], [0.6, 0.4], [0.2, 0.8], [0.3, 0.7], [0.5, 0.5]])
    r = metrics.report(y, probs, ["a", "b"])
    assert r["macro_f1"] == pytest.approx((2 / 3 + 0.5) / 2, abs=1e-6)
    # positives (class b) score 0.7 and 0.5; negatives 0.1, 0.4, 0.8.
    # pairs won by the positive: 0.7 beats 0.1 and 0.4; 0.5 beats 0.1 and 0.4 -> 4 of 6
    assert r["roc_auc"] == pytest.approx(4 / 6)
    # confidences 0.9 (right), 0.6 (right), 0.8 (wrong), 0.7 (right), 0.5 (wrong, a tie predicts a)
    # bins of width 0.1, right-closed: (0.4,0.5]: 0.5 wrong; (0.5,0.6]: 0.6 right; (0.6,0.7]: 0.7 right;
    # (0.7,0.8]: 0.8 wrong; (0.8,0.9]: 0.9 right -> ECE = (0.5 + 0.4 + 0.3 + 0.8 + 0.1) / 5
    assert r["ece"] == pytest.approx((0.5 + 0.4 + 0.3 + 0.8 + 0.1) / 5, abs=1e-6)
    assert "top_5_accuracy" not in r


def test_auc_ties_and_top_k():
    assert metrics.roc_auc(np.array([True, False]), np.array([0.5, 0.5])) == pytest.approx(0.5)
    assert metrics.roc_auc(np.array([True, True, False]), np.array([0.9, 0.8, 0.1])) == pytest.approx(1.0)
    ranked = np.array([7, 6, 5, 4, 3, 2, 1], dtype=float)  # class 0 most likely, class 6 least
    probs = np.stack([ranked, ranked, ranked]) / ranked.sum()
    # true classes 0 (rank 1), 4 (rank 5: inside the top 5) and 5 (rank 6: outside)
    assert metrics.top_k_accuracy(np.array([0, 4, 5]), probs, 5) == pytest.approx(2 / 3)


def test_a_model_that_predicts_one_class_has_collapsed():
    one = np.array([[0.9, 0.1], [0.6, 0.4], [0.7, 0.3]])
    assert metrics.collapsed_to(one, ["a", "b"]) == "a"
    assert metrics.collapsed_to(np.array([[0.9, 0.1], [0.2, 0.8]]), ["a", "b"]) is None


@pytest.mark.parametrize(("successes", "trials", "low", "high"), [
    (81, 263, 0.2553, 0.3662),  # Newcombe (1998), Statistics in Medicine 17:857, table I, method 3
    (15, 148, 0.0624, 0.1605),
    (0, 20, 0.0, 0.1611),
    (1, 29, 0.0061, 0.1718),
])
def test_wilson_interval_matches_the_textbook_values(successes, trials, low, high):
    assert metrics.wilson_interval(successes=successes, trials=trials, confidence=0.95) == (
        pytest.approx(low, abs=5e-5), pytest.approx(high, abs=5e-5))


def test_wilson_interval_is_symmetric_stays_in_range_and_narrows_with_more_images():
    low, high = metrics.wilson_interval(successes=7, trials=10, confidence=0.95)
    mirror = metrics.wilson_interval(successes=3, trials=10, confidence=0.95)
    assert (low, high) == (pytest.approx(1 - mirror[1]), pytest.approx(1 - mirror[0]))
    assert metrics.wilson_interval(successes=2000, trials=2000, confidence=0.95)[1] == 1.0
    assert metrics.wilson_interval(successes=0, trials=0, confidence=0.95) == (0.0, 1.0)
    wide, narrow = (metrics.wilson_interval(successes=9 * n // 10, trials=n, confidence=0.95) for n in (100, 10000))
    assert wide[1] - wide[0] > narrow[1] - narrow[0]
    assert (metrics.wilson_interval(successes=7, trials=10, confidence=0.99)[0] < low)  # surer: wider
    with pytest.raises(ValueError):
        metrics.wilson_interval(successes=11, trials=10, confidence=0.95)

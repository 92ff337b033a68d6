"""Unit: the advisor's four scenarios and its "do not transfer" answer on constructed measurements,
the linear probe, the params that choose a strategy, the source model restricted to a subset of its
classes, and small-set budgets."""

from __future__ import annotations

import numpy as np
import pytest

from graft.config import load
from graft.errors import ConfigError, ModelMismatch, NoUnlabelledImages, ProbeError
from graft.strategy import advisor as advise
from graft.strategy.probe import probe_accuracy
from graft.train.fit import repeated
from tests.helpers import changed, params, raw_params

ADVISOR = params({"advisor": {"small_per_class": 50, "similar_gain": 0.5, "scratch_below_gain": -0.5,
                              "top_half": 0.5}}).advisor


def measured(*, per_class: int, probe: float, random: float, images: int = 200) -> advise.Measurements:
    return advise.Measurements(per_class={"a": per_class, "b": per_class + 7}, probe_accuracy=probe,
                               random_probe_accuracy=random, images=images)


@pytest.mark.parametrize(("per_class", "probe", "random", "scenario", "strategy", "unfreeze"), [
    (20, 0.99, 0.80, ("small", "similar"), "feature_extraction", None),
    (500, 0.99, 0.80, ("large", "similar"), "finetune_top", "block3"),
    (20, 0.80, 0.79, ("small", "different"), "finetune_top", 0.5),
    (500, 0.70, 0.80, ("large", "different"), "finetune_all", 1.0),  # gain 1 - 61/41 = -0.49: different, not worse
    (20, 0.50, 0.90, ("small", "worse than random"), "scratch", None),  # gain 1 - 101/21: do not transfer
    (500, 0.50, 0.90, ("large", "worse than random"), "scratch", None),
])
def test_the_four_scenarios_and_do_not_transfer(per_class, probe, random, scenario, strategy, unfreeze):
    m = measured(per_class=per_class, probe=probe, random=random)
    assert advise.scenario(m, ADVISOR) == scenario
    plan, why = advise.decide(m, ADVISOR, top_part="block3")
    assert (plan.strategy, plan.unfreeze) == (strategy, unfreeze)
    assert plan.finetunes is (unfreeze is not None)
    threshold = "advisor.scratch_below_gain=-0.5" if strategy == "scratch" else "advisor.similar_gain=0.5"
    assert why.startswith(f"{scenario[0]} and {scenario[1]}") and str(per_class) in why and threshold in why
    assert why.endswith(plan.label) and ("do not transfer" in why) is (strategy == "scratch")


def test_thresholds_are_inclusive_where_documented():
    # exactly small_per_class images is large; a gain exactly at similar_gain is similar
    m = measured(per_class=50, probe=1 - 9 / 200, random=1 - 19 / 200)  # errors 9 against 19: gain 1 - 10/20 = 0.5
    assert m.probe_gain == pytest.approx(0.5)
    assert advise.scenario(m, ADVISOR) == ("large", "similar")
    assert advise.scenario(measured(per_class=49, probe=0.8, random=0.85), ADVISOR) == ("small", "different")


def test_do_not_transfer_starts_strictly_below_its_threshold_and_can_be_switched_off():
    at = measured(per_class=10, probe=1 - 14 / 200, random=1 - 9 / 200)  # errors 14 against 9: gain 1 - 15/10 = -0.5
    below = measured(per_class=10, probe=1 - 15 / 200, random=1 - 9 / 200)  # 1 - 16/10 = -0.6
    assert at.probe_gain == -0.5 and below.probe_gain == pytest.approx(-0.6)
    assert advise.scenario(at, ADVISOR) == ("small", "different")
    assert advise.scenario(below, ADVISOR) == ("small", "worse than random")
    never = ADVISOR.model_copy(update={"scratch_below_gain": None})
    hopeless = measured(per_class=10, probe=0.5, random=1.0)  # gain -100
    assert advise.scenario(hopeless, never) == ("small", "different")
    assert advise.decide(hopeless, never, top_part="block3")[0].strategy == "finetune_top"  # the top half


def test_do_not_transfer_needs_the_scratch_stage():
    worse = measured(per_class=10, probe=0.5, random=0.9)
    record = advise.advise(params({"strategy": "auto"}), worse)
    assert record.plan.strategy == record.advised_choice == "scratch" and record.plan.unfreeze is None
    assert "below advisor.scratch_below_gain=-0.25" in record.reason  # the shipped threshold
    with pytest.raises(ConfigError, match="scratch.enabled: true") as err:
        advise.advise(params({"strategy": "auto", "scratch": {"enabled": False}}), worse)
    assert ": scratch.enabled:" in str(err.value) and "advisor.scratch_below_gain" in str(err.value)
    explicit = advise.advise(params({"strategy": "scratch"}), measured(per_class=10, probe=0.99, random=0.8))
    assert explicit.plan.strategy == "scratch" and explicit.advised_choice == "feature_extraction"


def test_probe_gain_counts_errors_plus_one():
    assert measured(per_class=10, probe=1.0, random=1.0).probe_gain == 0.0  # both perfect: no evidence either way
    assert measured(per_class=10, probe=1.0, random=0.9).probe_gain == pytest.approx(1 - 1 / 21)
    assert measured(per_class=10, probe=0.8, random=0.9).probe_gain < 0  # worse than random features


PROBE = {"folds": 5, "c": 1.0, "max_iter": 1000}


def test_linear_probe_separates_what_is_separable_and_not_noise():
    rng = np.random.default_rng(0)
    y = np.arange(120) % 3
    noise = rng.normal(size=(120, 16))
    signal = noise.copy()
    signal[:, 0] += 6 * (y == 1)
    signal[:, 1] += 6 * (y == 2)
    assert probe_accuracy(signal, y, seed=0, **PROBE) > 0.95
    assert probe_accuracy(noise, y, seed=0, **PROBE) < 0.6  # chance is 1/3
    with pytest.raises(ProbeError, match="at least 2 training images per class"):
        probe_accuracy(signal[:4], np.array([0, 0, 0, 1]), seed=0, **PROBE)


def test_the_probe_scores_every_image_once_seeded_and_says_when_it_did_not_converge():
    rng = np.random.default_rng(1)
    y = np.array([0] * 10 + [1] * 5)
    x = rng.normal(size=(15, 8)) + y[:, None]
    scores = {seed: probe_accuracy(x, y, seed=seed, **PROBE) for seed in range(6)}
    assert all(round(a * 15, 9).is_integer() for a in scores.values())  # whole images right: each held out once
    assert probe_accuracy(x, y, seed=1, **PROBE) == scores[1]
    assert len(set(scores.values())) > 1  # the seed shuffles the folds
    with pytest.raises(ProbeError, match=r"advisor.probe_max_iter=1 iterations.*raise advisor.probe_max_iter"):
        probe_accuracy(x, y, seed=0, **{**PROBE, "max_iter": 1})


def test_the_stage_prints_the_scenario_the_probe_and_the_plan():
    from graft.stages.advise import summary

    m = measured(per_class=10, probe=1 - 28 / 200, random=1 - 21 / 200)
    for strategy, followed in (("auto", "(the advisor's choice)"),
                               ("finetune_all", "(strategy: finetune_all in params.yaml; the advisor would choose "
                                                "do not transfer")):
        p = params({"strategy": strategy})
        lines = summary(p, m, advise.advise(p, m))
        assert lines[0] == ("scenario: small and worse than random (10 labelled images in the smallest class, below "
                            "advisor.small_per_class=50)")
        assert lines[1].startswith("linear probe (5-fold, 200 train images): 0.8600 on the source's features (28 "
                                   "errors), 0.8950 on a random base's (21); gain -0.32, below "
                                   "advisor.scratch_below_gain=-0.25, with 7 more probe errors")
        assert lines[2].startswith("plan: ") and followed in lines[2] and len(lines) == 3


def test_an_explicit_strategy_is_followed_and_the_advice_still_recorded():
    m = measured(per_class=20, probe=0.99, random=0.80)
    record = advise.advise(params({"strategy": "finetune_all"}), m)
    assert record.plan.strategy == "finetune_all" and record.plan.unfreeze == 1.0
    assert record.advised.strategy == "feature_extraction" and record.advised_choice == "feature_extraction"
    assert "strategy: finetune_all in params.yaml" in record.reason
    auto = advise.advise(params({"strategy": "auto"}), m)
    assert auto.plan == auto.advised and auto.scenario == {"size": "small", "domain": "similar"}
    assert auto.measurements["min_per_class"] == 20 and auto.thresholds["small_per_class"] == 50


def write_params(tmp_path, changes: dict):
    import yaml

    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw_params(changes)))
    return path


@pytest.mark.parametrize(("changes", "key", "fix"), [
    ({"strategy": "transfer_everything"}, "strategy", "feature_extraction"),
    ({"strategy": "as_classifier"}, "strategy", "data.source_classes"),
    ({"data": {"source_classes": ["Sandal", "Bag"]}}, "data.source_classes", "as_classifier"),
    ({"strategy": "as_classifier", "data": {"source_classes": ["Sandal", "Shirt", "Bag"]},
      "pretrain": {"method": "autoencoder"}}, "strategy", "pretrain.method supervised"),
    ({"pretrain": {"method": "contrastive"}}, "pretrain.method", "autoencoder"),
    ({"pretrain": {"method": "autoencoder"}, "base": {"kind": "mobilenet_v2"}}, "pretrain.method", "compact_cnn"),
    ({"pretrain": {"method": "autoencoder", "data": "data/raw/target/test"}}, "pretrain.data", "never see"),
    ({"advisor": {"similar_gain": 1.5}}, "advisor.similar_gain", "less than or equal to 1"),
    ({"advisor": {"small_per_class": 0}}, "advisor.small_per_class", "greater than or equal to 1"),
    ({"advisor": {"top_half": 0}}, "advisor.top_half", "fraction"),
    ({"advisor": {"probe_folds": 1}}, "advisor.probe_folds", "greater than or equal to 2"),
    ({"advisor": {"probe_c": 0}}, "advisor.probe_c", "greater than 0"),
    ({"advisor": {"probe_max_iter": 0}}, "advisor.probe_max_iter", "greater than or equal to 1"),
    ({"advisor": {"scratch_below_gain": 0.1}}, "advisor.scratch_below_gain", "at most advisor.similar_gain"),
    ({"advisor": {"scratch_below_gain": "never"}}, "advisor.scratch_below_gain", "float"),
    ({"strategy": "scratch", "scratch": {"enabled": False}}, "scratch.enabled", "scratch.enabled: true"),
    ({"advisor": {"min_error_gap": -1}}, "advisor.min_error_gap", "greater than or equal to 0"),
    ({"head": {"min_steps": -1}}, "head.min_steps", "0"),
])
def test_bad_strategy_params_name_the_key_and_the_fix(tmp_path, changes, key, fix):
    with pytest.raises(ConfigError) as err:
        load(write_params(tmp_path, changes))
    assert f": {key}:" in str(err.value) and fix in str(err.value)


def test_scratch_and_a_switched_off_threshold_load(tmp_path):
    params = load(write_params(tmp_path, {"strategy": "scratch", "advisor": {"scratch_below_gain": None}}))
    assert params.strategy == "scratch" and params.advisor.scratch_below_gain is None
    assert load(write_params(tmp_path, {})).advisor.scratch_below_gain == -0.25  # as shipped


def test_as_classifier_is_allowed_when_the_source_knows_every_target_class(tmp_path):
    params = load(write_params(tmp_path, {"strategy": "as_classifier",
                                          "data": {"source_classes": ["Sandal", "Shirt", "Bag"]}}))
    assert params.strategy == "as_classifier"


def test_restricting_a_softmax_to_some_classes_renormalises_it(tmp_path):
    from graft.model.build import build_source_model
    from graft.model.saved import load as load_model
    from graft.model.subset import as_classifier

    p = params({"strategy": "as_classifier", "data": {"source_classes": ["Bag", "Sandal", "Coat", "Shirt"]},
                "base": {"filters": [4], "convs_per_block": 1}, "finetune": {"unfreeze": "block1"}})
    source = build_source_model(p)
    before = [w.copy() for w in source.get_weights()]
    model = as_classifier(source, source_classes=p.data.source_classes, target_classes=("Shirt", "Sandal"))
    x = np.random.default_rng(0).integers(0, 256, (6, 28, 28, 1), dtype=np.uint8)
    full = source.predict(x, verbose=0)
    want = full[:, [3, 1]] / full[:, [3, 1]].sum(axis=1, keepdims=True)
    np.testing.assert_allclose(model.predict(x, verbose=0), want, rtol=1e-5)
    model.save(tmp_path / "m.keras")
    np.testing.assert_allclose(load_model(tmp_path / "m.keras").predict(x, verbose=0), want, rtol=1e-5)
    assert all(np.array_equal(a, b) for a, b in zip(before, source.get_weights()))
    with pytest.raises(ModelMismatch, match="no class"):
        as_classifier(source, source_classes=p.data.source_classes, target_classes=("Trouser", "Bag"))


def test_small_sets_are_repeated_up_to_the_minimum_steps():
    x, y = np.arange(20)[:, None], np.arange(20) % 2
    rx, ry = repeated((x, y), batch_size=32, steps=5)
    assert len(rx) == 160 and np.array_equal(rx[:20], x) and np.array_equal(ry[140:], y)
    assert repeated((x, y), batch_size=4, steps=5)[0] is x  # already 5 batches: unchanged
    assert repeated((x, y), batch_size=32, steps=0)[0] is x


@pytest.mark.parametrize("size", [28, 27])
def test_the_autoencoder_reconstructs_images_of_the_input_size(size):
    from graft.model.autoencoder import autoencoder

    model = autoencoder(params({"base": {"filters": [4, 8, 8], "convs_per_block": 1},
                                "image": {"height": size, "width": size, "channels": 1}}))
    x = np.zeros((2, size, size, 1), dtype=np.uint8)
    out = model.predict(x, verbose=0)
    assert out.shape == (2, size, size, 1)
    assert model.get_layer("decoder").get_layer("decoder_pixels").activation.__name__ == "sigmoid"  # pixels in [0, 1]
    assert model.get_layer("base").output.shape[1:] == (size // 4, size // 4, 8)  # the encoder is the base


def test_the_autoencoder_never_sees_the_targets_test_or_valid_images(tmp_path):
    from PIL import Image as PILImage

    from graft.train.pretrain import unlabelled_files

    for part in ("train/Sandal", "train/Shirt", "valid/Shirt", "test/Sandal", "elsewhere"):
        (tmp_path / part).mkdir(parents=True)
        PILImage.fromarray(np.zeros((4, 4), dtype=np.uint8)).save(tmp_path / part / "a.png")
    target = tmp_path / "train"
    p = params({"paths": {"target": str(target.parent)}, "data": {"target": "folder"},
                "pretrain": {"method": "autoencoder", "data": str(target.parent)}})
    assert [f.relative_to(tmp_path).as_posix() for f in unlabelled_files(p)] == ["elsewhere/a.png", "train/Sandal/a.png",
                                                                                "train/Shirt/a.png"]
    assert len(unlabelled_files(changed(p, {"pretrain": {"data": str(target)}}))) == 2  # inside the train part
    for folder in (tmp_path / "test", tmp_path / "valid" / "Shirt"):  # the target's held-out images themselves
        with pytest.raises(ConfigError, match="pretrain.data.*never see"):
            changed(p, {"pretrain": {"data": str(folder)}})
    (tmp_path / "test" / "Sandal" / "a.png").unlink()
    (tmp_path / "test" / "Sandal").rmdir()
    (tmp_path / "test").rmdir()
    with pytest.raises(NoUnlabelledImages, match="no test/ folder"):
        unlabelled_files(p)
    with pytest.raises(NoUnlabelledImages, match="not a folder"):
        unlabelled_files(changed(p, {"pretrain": {"data": str(tmp_path / "nope")}}))


def test_a_few_more_probe_errors_are_not_enough_to_drop_the_source():
    """Near-perfect probes are coarse: 2 errors against 1 is a gain of -0.5 (the default task did that
    once, and transfer won); do not transfer needs advisor.min_error_gap more errors as well."""
    two_against_one = measured(per_class=100, probe=1 - 2 / 200, random=1 - 1 / 200)
    assert two_against_one.probe_gain == pytest.approx(-0.5)
    assert (two_against_one.errors, two_against_one.random_errors) == (2, 1)
    advisor = params().advisor  # as shipped: scratch_below_gain -0.25, min_error_gap 3
    assert advise.scenario(two_against_one, advisor) == ("large", "different")
    plan, why = advise.decide(two_against_one, advisor, top_part="block3")
    assert plan.strategy == "finetune_all" and "fewer than advisor.min_error_gap=3" in why
    three_more = measured(per_class=100, probe=1 - 4 / 200, random=1 - 1 / 200)  # gain 1 - 5/2 = -1.5, 3 more errors
    assert advise.scenario(three_more, advisor) == ("large", "worse than random")
    assert advise.scenario(three_more, advisor.model_copy(update={"min_error_gap": 4})) == ("large", "different")

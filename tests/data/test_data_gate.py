"""Data tier: the manifest, the real GX suites and the split on small image folders the tests make."""

import json
import zlib

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from graft.data import duplicates, manifest, split, validate
from graft.data.annotate import Checks
from graft.errors import SplitError, ValidationFailed
from tests.helpers import params

CLASSES = ("cat", "dog")
RULES = manifest.Rules.of(params().validate)


def smooth(rng, size=(24, 24)):
    """A smooth random image (low-resolution noise, upscaled): perceptual hashes behave as on photos."""
    low = Image.fromarray(rng.integers(0, 256, (5, 5), dtype=np.uint8))
    return np.asarray(low.resize(size[::-1], Image.Resampling.BICUBIC))


def textured(rng):
    """A 48x48 image with detail at several scales: a JPEG re-encode stays within a few hash bits."""
    low = Image.fromarray(rng.integers(0, 256, (12, 12), dtype=np.uint8))
    return np.asarray(low.resize((48, 48), Image.Resampling.BICUBIC))


def make_folder(root, counts, *, prefix="", size=(24, 24), seed=None, start=0):
    """Class folders of smooth random images; the same images wherever the test runs (the seed
    comes from what is made, never from the temporary path, so a split's outcome is reproducible)."""
    rng = np.random.default_rng([zlib.crc32(f"{prefix}:{sorted(counts.items())}".encode()), start] if seed is None else seed)
    for cls, n in counts.items():
        (root / prefix / cls).mkdir(parents=True, exist_ok=True)
        for i in range(start, start + n):
            Image.fromarray(smooth(rng, size)).save(root / prefix / cls / f"{cls}-{i:04d}.png")
    return root


def checks(**settings):
    """The shipped data gate for a user's folder of cats and dogs, with ``settings`` changed."""
    return Checks.of(params({"data": {"target": "folder", "target_classes": list(CLASSES)},
                             "paths": {"target": "my_images"},
                             "validate": {"min_images_per_class": 5, **settings}}))


def test_clean_folder_passes_and_writes_manifest_quarantine_summary_and_gx_objects(tmp_path):
    data = make_folder(tmp_path / "data", {"cat": 6, "dog": 7})
    out = tmp_path / "out"
    summary = validate.validate(target_dir=data, checks=checks(), out_dir=out)
    assert summary.success and summary.class_counts == {"cat": 6, "dog": 7}
    assert summary.critical == [] and summary.quarantined == 0
    assert json.loads((out / "summary.json").read_text())["files"] == 13
    table = manifest.read(out / "manifest.csv")
    assert len(table) == 13 and set(manifest.COLUMNS) <= set(table.columns)
    assert table["sha256"].str.len().eq(64).all() and table["phash"].str.len().eq(64).all()
    assert (table[["width", "height", "channels", "orientation"]] == [24, 24, 1, 1]).all().all()
    assert list(pd.read_csv(out / "quarantine.csv").columns) == ["path", "class", "given_split", "reason"]
    site = out / "gx" / "uncommitted" / "data_docs" / "local_site"
    assert (site / "index.html").is_file()  # one Data Docs site: each suite and each of its results
    assert {p.stem for p in (site / "expectations").glob("*.html")} == {"files", "images", "classes"}
    assert {p.relative_to(site / "validations").parts[0] for p in (site / "validations").rglob("*.html")} == {
        "files", "images", "classes"}
    suites = {p.stem: json.loads(p.read_text()) for p in (out / "gx" / "expectations").glob("*.json")}
    assert set(suites) == {"files", "images", "classes"}  # persisted GX suites, with GX severities
    severities = {e["type"] + ":" + e["kwargs"]["column"]: e["severity"] for s in suites.values() for e in s["expectations"]}
    assert severities["expect_column_values_to_be_in_set:decodes"] == "critical"
    assert severities["expect_column_values_to_be_null:near_duplicate_in_other_class"] == "warning"


def test_manifest_is_the_same_from_one_process_or_a_pool(tmp_path):
    data = make_folder(tmp_path / "data", {"cat": 150, "dog": 150}, size=(16, 16))
    assert manifest.PARALLEL_MIN_FILES <= 300
    serial = manifest.build(data, rules=RULES, workers=1)
    pooled = manifest.build(data, rules=RULES, workers=2)
    pd.testing.assert_frame_equal(serial, pooled)
    assert serial["decodes"].all() and serial["path"].is_monotonic_increasing


def test_near_duplicate_search_finds_exactly_the_pairs_brute_force_finds():
    rng = np.random.default_rng(0)
    bits = rng.integers(0, 2, (400, 256), dtype=np.uint8)
    for k in range(40):  # planted pairs at distances 0..19
        bits[400 - 1 - k] = bits[k]
        flip = rng.choice(256, k // 2, replace=False)
        bits[400 - 1 - k, flip] ^= 1
    hashes = [row.tobytes().hex() for row in np.packbits(bits, axis=1)]
    apart = (bits[:, None, :] != bits[None, :, :]).sum(axis=2)
    for distance in (0, 4, 12):
        expected = {(i, j) for i, j in zip(*np.nonzero(np.triu(apart <= distance, 1)))}
        assert {tuple(p) for p in duplicates.near_pairs(hashes, distance).tolist()} == expected
    assert len(expected) >= 20


@pytest.mark.parametrize(("counts", "words"), [
    ({"cat": 6, "dog": 2}, ["dog", "has 2 usable images", "min_images_per_class"]),
    ({"cat": 6}, ["'dog' has no folder"]),
    ({"cat": 6, "dog": 6, "cow": 6}, ["'cow' (6 files) is not a configured class"]),
])
def test_class_problems_fail_with_a_named_reason(tmp_path, counts, words):
    data = make_folder(tmp_path / "data", counts)
    with pytest.raises(ValidationFailed) as err:
        validate.validate(target_dir=data, checks=checks(), out_dir=tmp_path / "out")
    for word in words:
        assert word in str(err.value)


def test_class_imbalance_is_a_warning_and_the_run_goes_on(tmp_path):
    data = make_folder(tmp_path / "data", {"cat": 30, "dog": 5})
    summary = validate.validate(target_dir=data, checks=checks(max_imbalance=3.0), out_dir=tmp_path / "out")
    assert summary.success
    (warning,) = summary.warnings
    assert warning["column"] == "imbalance" and "dog" in warning["files"] and "6.0" in warning["files"]["dog"]


def validated_split(tmp_path, data, *, seed=1, check_kwargs=None, **kwargs):
    out = tmp_path / "v"
    validate.validate(target_dir=data, checks=checks(min_images_per_class=1, **(check_kwargs or {})), out_dir=out)
    options = {"test_fraction": 0.25, "valid_fraction": 0.25, "train_fraction": None, "train_per_class": None,
               "valid_per_class": None, "hard_links": False, **kwargs}
    return split.split(manifest_csv=out / "manifest.csv", data_dir=data, out_dir=tmp_path / "split",
                       classes=CLASSES, seed=seed, **options)


def test_split_is_stratified_deterministic_never_linked_to_a_users_images_and_records_every_file(tmp_path):
    data = make_folder(tmp_path / "data", {"cat": 40, "dog": 30})
    first = validated_split(tmp_path, data)
    assert len(first) == 70 and set(first["split"]) == {"train", "valid", "test"}
    for cls, n in (("cat", 40), ("dog", 30)):
        shares = first[first["class"] == cls]["split"].value_counts() / n
        assert all(0.05 < shares[s] < 0.7 for s in ("train", "valid", "test")), shares
        for name in ("train", "valid", "test"):
            files = {p.name for p in (tmp_path / "split" / name / cls).iterdir()}
            assert files == {p.split("/")[-1] for p in first[(first["split"] == name) & (first["class"] == cls)]["path"]}
    row = first.iloc[0]
    copy, original = tmp_path / "split" / row["split"] / row["class"] / row["path"].split("/")[-1], data / row["path"]
    assert copy.read_bytes() == original.read_bytes()
    assert copy.stat().st_ino != original.stat().st_ino and original.stat().st_nlink == 1  # a copy (or reflink), no link
    pd.testing.assert_frame_equal(first, validated_split(tmp_path, data))
    other_seed = validated_split(tmp_path, data, seed=2).set_index("path").loc[first["path"], "split"]
    assert (other_seed.to_numpy() != first["split"].to_numpy()).any()
    recorded = pd.read_csv(tmp_path / "split" / "split.csv", keep_default_na=False)
    assert len(recorded) == 70


def test_split_honours_given_test_and_valid_folders(tmp_path):
    data = make_folder(tmp_path / "data", {"cat": 20, "dog": 20}, prefix="train")
    make_folder(data, {"cat": 4, "dog": 4}, prefix="test", start=100)
    make_folder(data, {"cat": 3, "dog": 3}, prefix="valid", start=200)
    table = validated_split(tmp_path, data)
    assert (table["split"] == table["given_split"]).all()  # given folders kept; the train/ pool all train (fraction null)
    assert len(table[table["split"] == "test"]) == 8 and len(table[table["split"] == "valid"]) == 6


def pool_table(per_class: dict[str, int], *, test_per_class: int = 0, start: int = 0) -> pd.DataFrame:
    """A manifest as validate writes it, without files: distinct images, some given as test."""
    rows = []
    for cls, n in per_class.items():
        for i in range(start, start + n):
            sha = f"{cls}-{i}".encode().hex().ljust(64, "0")
            rows.append({"path": f"train/{cls}/{i}.png", "class": cls, "given_split": "train", "decodes": True,
                         "error": "", "sha256": sha, "group": sha, "quarantine": ""})
        for i in range(test_per_class):
            sha = f"{cls}-test-{i}".encode().hex().ljust(64, "0")
            rows.append({"path": f"test/{cls}/{i}.png", "class": cls, "given_split": "test", "decodes": True,
                         "error": "", "sha256": sha, "group": sha, "quarantine": ""})
    return pd.DataFrame(rows)


def default_assign(table: pd.DataFrame, p) -> pd.DataFrame:
    return split.assign(table, classes=p.data.target_classes, seed=p.seed, **p.split.model_dump()).set_index("path")


def test_default_configuration_adding_100_images_moves_no_existing_image():
    """The shipped params.yaml on the default data's shape: 6,000 pool + 1,000 given test images a class."""
    shipped = params()
    classes = shipped.data.target_classes
    before = default_assign(pool_table({c: 6000 for c in classes}, test_per_class=1000), shipped)
    counts = before[before["split"] != ""].groupby(["split", "class"]).size()
    assert all(80 <= counts["train", c] <= 120 and 900 <= counts["valid", c] <= 1100 for c in classes), counts
    grown = pd.concat([pool_table({c: 6000 for c in classes}, test_per_class=1000),
                       pool_table({classes[0]: 100}, start=6000)])
    after = default_assign(grown, shipped)
    assert len(after) == len(before) + 100
    moved = (after.loc[before.index, "split"] != before["split"])
    assert not moved.any(), before[moved]
    assert set(after.drop(before.index)["split"]) <= {"train", "valid", ""}  # the new ones go where their hash says


def test_with_caps_images_never_move_between_train_valid_and_test():
    table = pool_table({"cat": 300, "dog": 300})
    kwargs = {"classes": CLASSES, "seed": 3, "test_fraction": 0.2, "valid_fraction": 0.2, "train_fraction": None,
              "train_per_class": 50, "valid_per_class": 30}
    before = split.assign(table, **kwargs).set_index("path")
    assert before[before["split"] == "train"].groupby("class").size().tolist() == [50, 50]
    after = split.assign(pd.concat([table, pool_table({"cat": 100}, start=300)]), **kwargs).set_index("path")
    was, now = before["split"], after.loc[before.index, "split"]
    labelled = (was != "") & (now != "")
    assert (was[labelled] == now[labelled]).all()  # a capped image may become unused, never another split


def test_duplicates_and_near_duplicates_share_a_split(tmp_path):
    rng = np.random.default_rng(5)
    data = make_folder(tmp_path / "data", {"cat": 30, "dog": 30})
    for i in range(8):  # exact copies and brightened re-encodes (near-duplicates) inside each class
        cat, dog = smooth(rng), textured(rng)
        Image.fromarray(cat).save(data / "cat" / f"twin-{i}-a.png")
        Image.fromarray(cat).save(data / "cat" / f"twin-{i}-b.png")
        Image.fromarray(dog).save(data / "dog" / f"near-{i}-a.png")
        Image.fromarray(dog).save(data / "dog" / f"near-{i}-b.jpg", quality=90)
    for seed in (1, 2, 3):
        table = validated_split(tmp_path, data, seed=seed).set_index("path")
        for i in range(8):
            assert table.at[f"cat/twin-{i}-a.png", "split"] == table.at[f"cat/twin-{i}-b.png", "split"]
            assert table.at[f"dog/near-{i}-a.png", "group"] == table.at[f"dog/near-{i}-b.jpg", "group"]
            assert table.at[f"dog/near-{i}-a.png", "split"] == table.at[f"dog/near-{i}-b.jpg", "split"]


def test_adding_100_images_to_a_folder_moves_none_end_to_end(tmp_path):
    data = make_folder(tmp_path / "data", {"cat": 60, "dog": 60}, prefix="train")
    make_folder(data, {"cat": 5, "dog": 5}, prefix="test", start=500)
    before = validated_split(tmp_path, data, valid_fraction=0.2, train_fraction=0.3).set_index("path")["split"]
    make_folder(data, {"cat": 100}, prefix="train", start=1000)
    after = validated_split(tmp_path, data, valid_fraction=0.2, train_fraction=0.3).set_index("path")["split"]
    assert len(after) == len(before) + 100
    assert (after.loc[before.index] == before).all()


def test_exact_copy_across_given_splits_is_critical_naming_both_files(tmp_path):
    data = make_folder(tmp_path / "data", {"cat": 8, "dog": 8}, prefix="train")
    make_folder(data, {"cat": 3, "dog": 3}, prefix="test", start=100)
    (data / "test" / "cat" / "leak.png").write_bytes((data / "train" / "cat" / "cat-0003.png").read_bytes())
    with pytest.raises(ValidationFailed) as err:
        validate.validate(target_dir=data, checks=checks(), out_dir=tmp_path / "out")
    message = str(err.value)
    assert "test/cat/leak.png: train/cat/cat-0003.png" in message and "train/cat/cat-0003.png: test/cat/leak.png" in message


@pytest.mark.parametrize("policy", ["quarantine", "fail"])
def test_near_duplicate_across_given_splits_quarantines_the_train_copy_or_fails(tmp_path, policy):
    data = make_folder(tmp_path / "data", {"cat": 8, "dog": 8}, prefix="train")
    make_folder(data, {"cat": 3, "dog": 3}, prefix="test", start=100)
    original = textured(np.random.default_rng(7))
    Image.fromarray(original).save(data / "test" / "cat" / "original.png")
    Image.fromarray(original).save(data / "train" / "cat" / "twin.jpg", quality=90)
    out = tmp_path / "out"
    if policy == "fail":
        with pytest.raises(ValidationFailed, match="train/cat/twin.jpg: test/cat/original.png"):
            validate.validate(target_dir=data, checks=checks(near_duplicate_leak="fail"), out_dir=out)
        return
    summary = validate.validate(target_dir=data, checks=checks(), out_dir=out)
    assert summary.success and summary.quarantined == 1
    assert "train/cat/twin.jpg" in summary.warnings[0]["files"]
    quarantine = pd.read_csv(out / "quarantine.csv")
    assert quarantine["path"].tolist() == ["train/cat/twin.jpg"] and "test/cat/original.png" in quarantine["reason"][0]
    table = split.split(manifest_csv=out / "manifest.csv", data_dir=data, out_dir=tmp_path / "split", classes=CLASSES,
                        seed=1, test_fraction=0.2, valid_fraction=0.3, train_fraction=None, train_per_class=None,
                        valid_per_class=None, hard_links=False).set_index("path")
    assert table.at["train/cat/twin.jpg", "split"] == "excluded"
    assert "near-duplicate" in table.at["train/cat/twin.jpg", "reason"]


def test_split_says_which_class_and_fraction_leave_a_split_empty(tmp_path):
    data = make_folder(tmp_path / "data", {"cat": 6, "dog": 6})
    with pytest.raises(SplitError, match=r"class '(cat|dog)' gets no train"):
        validated_split(tmp_path, data, test_fraction=0.4, valid_fraction=0.5, train_fraction=0.01)


def test_graft_s_own_ingested_images_are_hard_linked_into_the_split(tmp_path):
    """Only data graft owns (ingest's paths.raw) is linked: one copy of each image for raw, split and DVC's cache."""
    data = make_folder(tmp_path / "raw", {"cat": 10, "dog": 10})
    table = validated_split(tmp_path, data, hard_links=True)
    row = table[table["split"] == "train"].iloc[0]
    linked = tmp_path / "split" / "train" / row["class"] / row["path"].split("/")[-1]
    assert linked.stat().st_ino == (data / row["path"]).stat().st_ino and linked.stat().st_nlink == 2

"""Data tier: the real GX suite and the split on small image folders the tests make."""

import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from graft import split, validate

CLASSES = ["cat", "dog"]


def make_folder(root, counts, *, prefix="", size=(12, 12)):
    rng = np.random.default_rng(len(str(root)))
    for cls, n in counts.items():
        (root / prefix / cls).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            Image.fromarray(rng.integers(0, 256, size, dtype=np.uint8)).save(root / prefix / cls / f"{cls}-{i:03d}.png")
    return root


def test_clean_folder_passes_and_writes_summary_manifest_and_data_docs(tmp_path):
    data = make_folder(tmp_path / "data", {"cat": 6, "dog": 7})
    out = tmp_path / "out"
    summary = validate.validate(target_dir=data, classes=CLASSES, min_images_per_class=5, out_dir=out)
    assert summary["success"] and summary["class_counts"] == {"cat": 6, "dog": 7}
    assert json.loads((out / "summary.json").read_text())["files"] == 13
    assert len(pd.read_csv(out / "manifest.csv")) == 13
    assert (out / "gx" / "uncommitted" / "data_docs" / "local_site" / "index.html").is_file()
    assert (out / "gx" / "expectations").is_dir()  # the suites are persisted as GX objects


def test_corrupt_file_fails_naming_the_file_and_the_raw_folder_is_untouched(tmp_path):
    data = make_folder(tmp_path / "data", {"cat": 6, "dog": 6})
    (data / "dog" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    before = sorted((p.name, p.stat().st_mtime_ns) for p in data.rglob("*"))
    with pytest.raises(validate.ValidationFailed) as err:
        validate.validate(target_dir=data, classes=CLASSES, min_images_per_class=5, out_dir=tmp_path / "out")
    assert "dog/broken.png" in str(err.value)
    assert sorted((p.name, p.stat().st_mtime_ns) for p in data.rglob("*")) == before
    assert not json.loads((tmp_path / "out" / "summary.json").read_text())["success"]


@pytest.mark.parametrize(("counts", "words"), [
    ({"cat": 6, "dog": 2}, ["dog", "min_images_per_class"]),
    ({"cat": 6}, ["dog", "min_images_per_class"]),
    ({"cat": 6, "dog": 6, "cow": 6}, ["cow", "configured class"]),
])
def test_class_problems_fail_with_a_named_reason(tmp_path, counts, words):
    data = make_folder(tmp_path / "data", counts)
    with pytest.raises(validate.ValidationFailed) as err:
        validate.validate(target_dir=data, classes=CLASSES, min_images_per_class=5, out_dir=tmp_path / "out")
    for word in words:
        assert word in str(err.value)


def split_folder(tmp_path, data, **kwargs):
    validate.validate(target_dir=data, classes=CLASSES, min_images_per_class=1, out_dir=tmp_path / "v")
    options = {"seed": 1, "train_per_class": 3, "valid_per_class": 2, "test_fraction": 0.25, **kwargs}
    return split.split(manifest_csv=tmp_path / "v" / "manifest.csv", data_dir=data, out_dir=tmp_path / "split",
                       classes=CLASSES, **options)


def test_split_is_stratified_deterministic_and_disjoint(tmp_path):
    data = make_folder(tmp_path / "data", {"cat": 12, "dog": 8})
    first = split_folder(tmp_path, data)
    counts = first[first["split"] != ""].groupby(["class", "split"]).size().to_dict()
    assert counts == {("cat", "test"): 3, ("cat", "train"): 3, ("cat", "valid"): 2,
                      ("dog", "test"): 2, ("dog", "train"): 3, ("dog", "valid"): 2}
    for name in ("train", "valid", "test"):
        for cls in CLASSES:
            files = {p.name for p in (tmp_path / "split" / name / cls).iterdir()}
            assert files == {p.split("/")[-1] for p in first[(first["split"] == name) & (first["class"] == cls)]["path"]}
    again = split_folder(tmp_path, data)
    pd.testing.assert_frame_equal(first, again)
    other_seed = split_folder(tmp_path, data, seed=2)
    assert not first["split"].equals(other_seed.set_index("path").loc[first["path"], "split"].reset_index(drop=True))


def test_split_honours_a_given_test_folder_and_hard_links(tmp_path):
    data = make_folder(tmp_path / "data", {"cat": 10, "dog": 10}, prefix="train")
    make_folder(data, {"cat": 4, "dog": 4}, prefix="test")
    table = split_folder(tmp_path, data)
    test = table[table["split"] == "test"]
    assert len(test) == 8 and set(test["given_split"]) == {"test"}
    assert not set(table[table["split"] == "train"]["given_split"]) & {"test"}
    linked = tmp_path / "split" / "test" / "cat" / "cat-000.png"
    assert linked.stat().st_ino == (data / "test" / "cat" / "cat-000.png").stat().st_ino

"""Data tier: the source task packed in one archive per split (graft.data.packed) reads as the same
arrays as the same images in class folders, at the model's size, and ingest writes it that way."""

import numpy as np
import pytest

from graft.data import fashion_mnist, packed
from graft.data.decode import Rules
from graft.data.ingest import ingest, write_packed, write_pngs
from graft.errors import MissingInput
from graft.train.pretrain import labelled
from tests.helpers import params, synthetic_images

CLASSES = ["Coat", "T-shirt_top", "Bag"]  # not in Fashion-MNIST's label order, so the order is tested too


@pytest.fixture
def images():
    labels = np.random.default_rng(0).permutation(np.tile(np.arange(10, dtype=np.uint8), 7))
    return synthetic_images(labels, seed=1), labels


@pytest.mark.parametrize("shape", [(28, 28, 1), (16, 20, 3)])  # as stored, and resized to RGB as decode does
def test_an_archive_reads_as_the_same_images_in_class_folders(tmp_path, images, shape):
    x, labels = images
    (tmp_path / "packed").mkdir()
    counts = write_packed(images=x, labels=labels, split="train", classes=CLASSES, out=tmp_path / "packed", per_class=5)
    assert counts == write_pngs(images=x, labels=labels, split="train", classes=CLASSES, out=tmp_path / "pngs",
                                per_class=5) == dict.fromkeys(CLASSES, 5)
    args = {"rules": Rules.of(params().validate), **dict(zip(("height", "width", "channels"), shape, strict=True))}
    want_classes = ["Bag", "Coat"]  # a subset, in another order: labels are positions in this list
    got = labelled(tmp_path / "packed", "train", classes=want_classes, **args)
    assert (tmp_path / "packed" / "train.npz").is_file() and not (tmp_path / "packed" / "train").exists()
    want = labelled(tmp_path / "pngs", "train", classes=want_classes, **args)
    assert got.x.shape == (10, *shape) and got.x.dtype == np.uint8
    np.testing.assert_array_equal(got.x, want.x)
    np.testing.assert_array_equal(got.y, want.y)
    assert got.y.tolist() == [0] * 5 + [1] * 5
    # traceable: each row names its position in the file it came from, as the PNG's name does
    assert [int(str(p).rsplit("#", 1)[1]) for p in got.paths] == [int(p.stem.split("-")[1]) for p in want.paths]


def test_a_class_the_archive_lacks_is_named_with_the_fix(tmp_path, images):
    x, labels = images
    write_packed(images=x, labels=labels, split="test", classes=CLASSES[:2], out=tmp_path, per_class=None)
    with pytest.raises(MissingInput, match=r"test\.npz: no class \['Bag'\].*data\.source_classes.*dvc repro ingest"):
        packed.read(packed.archive(tmp_path, "test"), classes=["Bag", "Coat"], height=28, width=28, channels=1)


def test_ingest_packs_the_source_and_writes_the_target_as_class_folders(tmp_path, fake_fashion_mnist):
    p = params({"data": {"fashion_mnist_dir": str(fake_fashion_mnist), "source_per_class": 7}})
    record = ingest(data=p.data, source_out=tmp_path / "raw" / "source", target_dir=tmp_path / "raw" / "target")
    source = sorted(f.relative_to(tmp_path).as_posix() for f in (tmp_path / "raw" / "source").rglob("*"))
    assert source == ["raw/source/test.npz", "raw/source/train.npz"]
    assert record.source["train"] == dict.fromkeys(p.data.source_classes, 7)
    assert {d.name for d in (tmp_path / "raw" / "target" / "train").iterdir()} == set(p.data.target_classes)
    test = packed.read(tmp_path / "raw" / "source" / "test.npz", classes=p.data.source_classes, height=28, width=28,
                       channels=1)
    official = fashion_mnist.load(str(fake_fashion_mnist))
    first = int(str(test.paths[0]).rsplit("#", 1)[1])
    np.testing.assert_array_equal(test.x[0, ..., 0], official.test_images[first])
    assert len(test.y) == sum(record.source["test"].values())

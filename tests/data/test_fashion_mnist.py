"""Data tier: IDX reading, and the data source is named (or the user told how to get it)."""

import gzip

import numpy as np
import pytest

from graft.data import fashion_mnist
from graft.errors import DataNotFound
from tests.helpers import write_fake_fashion_mnist


def test_idx_round_trip(tmp_path):
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    fashion_mnist.write_idx(tmp_path / "x.gz", array)
    np.testing.assert_array_equal(fashion_mnist.read_idx(tmp_path / "x.gz"), array)


def test_truncated_idx_is_named(tmp_path):
    fashion_mnist.write_idx(tmp_path / "x.gz", np.zeros((4, 28, 28), np.uint8))
    data = gzip.open(tmp_path / "x.gz").read()
    with gzip.open(tmp_path / "x.gz", "wb") as f:
        f.write(data[:-10])
    with pytest.raises(DataNotFound, match="truncated"):
        fashion_mnist.read_idx(tmp_path / "x.gz")


def test_configured_folder_is_used_and_named(tmp_path):
    folder = write_fake_fashion_mnist(tmp_path / "fm", train_per_class=3, test_per_class=2)
    data = fashion_mnist.load(folder)
    assert data.train_images.shape == (30, 28, 28)
    assert data.test_labels.shape == (20,)
    assert str(folder) in data.origin


def test_configured_folder_without_files_says_how_to_get_them(tmp_path):
    with pytest.raises(DataNotFound, match="apt-get install dataset-fashion-mnist"):
        fashion_mnist.load(tmp_path)


def test_falls_back_to_the_keras_cache_and_says_so(tmp_path, monkeypatch):
    monkeypatch.setattr(fashion_mnist, "DEBIAN_DIR", tmp_path / "no-debian")
    cache = write_fake_fashion_mnist(tmp_path / "keras-cache", train_per_class=2, test_per_class=1)
    monkeypatch.setattr(fashion_mnist, "KERAS_CACHE_DIR", cache)
    data = fashion_mnist.load()
    assert "Keras dataset cache" in data.origin and len(data.train_labels) == 20


def test_no_source_at_all_fails_with_instructions(tmp_path, monkeypatch):
    import keras

    def offline(*args, **kwargs):
        raise OSError("network unreachable")

    monkeypatch.setattr(fashion_mnist, "DEBIAN_DIR", tmp_path / "no-debian")
    monkeypatch.setattr(fashion_mnist, "KERAS_CACHE_DIR", tmp_path / "keras" / "datasets" / "fashion-mnist")
    monkeypatch.setattr(keras.utils, "get_file", offline)  # no test downloads anything
    with pytest.raises(DataNotFound) as err:
        fashion_mnist.load()
    assert "network unreachable" in str(err.value) and "dataset-fashion-mnist" in str(err.value)


def test_a_download_that_is_not_the_published_file_is_refused(tmp_path, monkeypatch):
    """The fallback download checks each file's sha256 (served here from a local folder, not the network)."""
    mirror = write_fake_fashion_mnist(tmp_path / "mirror", train_per_class=2, test_per_class=1)  # other bytes
    cache = tmp_path / "keras" / "datasets" / "fashion-mnist"
    monkeypatch.setattr(fashion_mnist, "DEBIAN_DIR", tmp_path / "no-debian")
    monkeypatch.setattr(fashion_mnist, "KERAS_CACHE_DIR", cache)
    monkeypatch.setattr(fashion_mnist, "DOWNLOAD", mirror.as_uri() + "/")
    with pytest.raises(DataNotFound) as err:
        fashion_mnist.load()
    assert "download failed" in str(err.value) and "hash" in str(err.value).lower()
    assert not any(cache.glob("*.gz"))  # nothing that failed its check stays in the cache

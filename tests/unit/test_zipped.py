"""The same model saved twice at different times is the same bytes (so DVC re-runs nothing after a
stage that re-ran with the same result), and it loads as before."""

from __future__ import annotations

import time
import zipfile

import keras
import numpy as np

from graft.files import sha256_file
from graft.model.build import build_source_model
from graft.model.saved import load, save
from graft.zipped import ZIP_EPOCH
from tests.helpers import SMALL_IMAGES, params


def test_the_same_model_built_twice_is_saved_as_the_same_bytes(tmp_path):
    p = params(SMALL_IMAGES)
    paths = [tmp_path / f"{i}.keras" for i in range(2)]
    for i, path in enumerate(paths):  # two builds: the same weights in new Python objects (new shared_object_ids)
        time.sleep(2.1 * i)  # zip dates count in 2 s steps: the second save is dated later
        keras.utils.set_random_seed(0)
        save(build_source_model(p), path)
    assert sha256_file(paths[0]) == sha256_file(paths[1])
    assert {i.date_time for i in zipfile.ZipFile(paths[0]).infolist()} == {ZIP_EPOCH}
    x = np.random.default_rng(0).integers(0, 256, (4, 16, 16, 1), dtype=np.uint8)
    keras.utils.set_random_seed(0)
    np.testing.assert_array_equal(load(paths[0]).predict(x, verbose=0), build_source_model(p).predict(x, verbose=0))

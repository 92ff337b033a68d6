"""Read the split directories into arrays in the model's input contract."""

from __future__ import annotations

from graft import images
from graft.config import Params


def load(params: Params, name: str) -> images.Images:
    """``name`` is train, valid or test."""
    return images.load_folder(params.paths.split / name, classes=params.data.target_classes,
                              height=params.image.height, width=params.image.width, channels=params.image.channels)

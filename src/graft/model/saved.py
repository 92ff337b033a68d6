"""Saving and loading graft's Keras models (``.keras`` files), with every custom layer registered."""

from __future__ import annotations

from pathlib import Path

import keras

from graft.files import atomic_path
from graft.model import pixels, subset  # noqa: F401  (PixelAdapter and ClassSubset, registered for loading)
from graft.zipped import restamp_keras


def load(path) -> keras.Model:
    return keras.saving.load_model(path, compile=False)


def save(model: keras.Model, path: Path) -> None:
    """Save atomically (a killed run never leaves a half-written model that looks complete), the
    same weights as the same bytes (graft.zipped: DVC sees an unchanged model as unchanged)."""
    with atomic_path(path) as tmp:
        model.save(tmp)
        restamp_keras(tmp)

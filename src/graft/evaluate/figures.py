"""Pictures of a run: confusion matrices, learning curves across both phases, a sample grid."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from graft.files import atomic_path  # noqa: E402


def _save(fig, path: Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")
    plt.close(fig)


def confusion_matrices(path: Path, matrices: dict[str, np.ndarray], classes: Sequence[str]) -> None:
    fig, axes = plt.subplots(1, len(matrices), figsize=(4.6 * len(matrices), 3.8), squeeze=False)
    fig.subplots_adjust(wspace=0.35)
    for ax, (title, cm) in zip(axes[0], matrices.items()):
        cm = np.asarray(cm)
        ax.imshow(cm, cmap="Blues")
        for (i, j), v in np.ndenumerate(cm):
            ax.text(j, i, str(v), ha="center", va="center", color="white" if v > cm.max() / 2 else "black")
        ax.set(xticks=range(len(classes)), yticks=range(len(classes)), xticklabels=classes, yticklabels=classes,
               xlabel="predicted", ylabel="true", title=f"{title}: {np.trace(cm)}/{cm.sum()} right")
    _save(fig, path)


def learning_curves(path: Path, histories: Sequence[Path]) -> None:
    """Loss and accuracy per epoch of the phases' DVCLive folders ``histories``, in order."""
    from graft.train.history import read

    table = pd.DataFrame(read(histories), columns=["phase", "epoch", "step", "loss", "accuracy", "val_loss", "val_accuracy"])
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, metric in zip(axes, ("loss", "accuracy")):
        ax.plot(table["epoch"], table[metric], "o-", ms=3, label=f"train {metric}")
        ax.plot(table["epoch"], table[f"val_{metric}"], "o-", ms=3, label=f"valid {metric}")
        phases = table.groupby("phase", sort=False)["epoch"].min()
        for phase, start in phases.items():
            ax.axvline(start - 0.5, color="grey", ls="--", lw=1)
            ax.annotate(phase, (start - 0.4, 1.0), xycoords=("data", "axes fraction"), va="top", color="grey")
        ax.set(xlabel="epoch", title=metric)
        ax.legend(loc="center right")
    _save(fig, path)


def sample_grid(path: Path, *, pixels: np.ndarray, true: np.ndarray, pred: np.ndarray, confidence: np.ndarray,
                classes: Sequence[str], n: int = 24) -> None:
    """Misclassified images first (red titles), then the least confident right ones."""
    wrong = np.flatnonzero(true != pred)
    right = np.flatnonzero(true == pred)
    chosen = np.concatenate([wrong[np.argsort(-confidence[wrong])], right[np.argsort(confidence[right])]])[:n]
    cols = 8
    rows = max(1, int(np.ceil(len(chosen) / cols)))
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.4, rows * 1.6), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, i in zip(axes.flat, chosen):
        image = pixels[i].squeeze()
        ax.imshow(image, cmap="gray" if image.ndim == 2 else None, vmin=0, vmax=255)
        ax.set_title(f"{classes[pred[i]]} {confidence[i]:.2f}\n(true {classes[true[i]]})", fontsize=7,
                     color="red" if true[i] != pred[i] else "black")
    fig.suptitle("test images: mistakes first, then least confident", fontsize=9)
    _save(fig, path)


def reliability_diagram(path: Path, tables: dict[str, list[dict]], eces: dict[str, float]) -> None:
    """Accuracy against confidence per bin, one line per model; the diagonal is perfect calibration."""
    fig, ax = plt.subplots(figsize=(4.6, 4.2))
    ax.plot([0, 1], [0, 1], color="grey", ls="--", lw=1, label="perfect calibration")
    for name, table in tables.items():
        used = [b for b in table if b["images"]]
        ax.plot([b["confidence"] for b in used], [b["accuracy"] for b in used], "o-", ms=4,
                label=f"{name} (ECE {eces[name]:.3f})")
    ax.set(xlabel="confidence (top probability)", ylabel="accuracy", xlim=(0, 1.02), ylim=(0, 1.02),
           title="reliability on the test split")
    ax.legend(loc="upper left", fontsize=8)
    _save(fig, path)


def data_efficiency(path: Path, curve: list[dict]) -> None:
    """Test accuracy against labelled images per class, transfer and scratch."""
    fig, ax = plt.subplots(figsize=(5, 3.8))
    sizes = [row["per_class"] for row in curve]
    for name, style in (("transfer", "o-"), ("scratch", "s--")):
        ax.plot(sizes, [row[name] for row in curve], style, label=name)
    ax.set(xscale="log", xlabel="labelled training images per class", ylabel="test accuracy",
           title="data efficiency")
    ax.set_xticks(sizes, [str(s) for s in sizes])
    ax.legend()
    _save(fig, path)

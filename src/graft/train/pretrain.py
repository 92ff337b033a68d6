"""Model A, the source model whose base the target task reuses (stage ``pretrain``).

The default compact CNN is trained on the source task (Fashion-MNIST's 8 classes other than
the target's), as Hands-On ML ch. 11 does; a keras.applications base comes with its weights
(ImageNet, none, or a local file) and is saved as it is.

``pretrain.method: autoencoder`` needs no labelled source at all (Hands-On ML's unsupervised
pretraining): the compact CNN is the encoder of an autoencoder (graft.model.autoencoder)
trained to reconstruct the unlabelled images in ``pretrain.data``, labels ignored, leaving out
its test/ and valid/ folders (given the target folder, no test image is ever seen). Model A is
then the autoencoder, and the target task transfers its encoder (the base) as usual.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from graft.data import packed
from graft.data.decode import is_image_candidate
from graft.data.load import Images, decode_all, decode_args, load_folder
from graft.errors import NoUnlabelledImages
from graft.model.autoencoder import autoencoder
from graft.model.backbones import BASE_NAME
from graft.model.build import build_source_model
from graft.model.kinds import KINDS
from graft.records import PretrainRecord
from graft.train.fit import fit, seed_everything
from graft.train.history import write_empty
from graft.train.resume import backup_dir

HELD_OUT = ("test", "valid")  # folders of pretrain.data the autoencoder never reads


def holdout(n: int, *, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic train / validation indices."""
    order = np.random.default_rng(seed).permutation(n)
    cut = max(1, int(round(n * fraction)))
    return np.sort(order[cut:]), np.sort(order[:cut])


def labelled(folder: Path, split: str, *, classes, height: int, width: int, channels: int, rules) -> Images:
    """``split`` (train or test) of a labelled source: ingest's archive ``folder/<split>.npz``
    (graft.data.packed) when there is one, else the class folders ``folder/<split>/<class>/``."""
    if (path := packed.archive(folder, split)).is_file():
        return packed.read(path, classes=classes, height=height, width=width, channels=channels)
    return load_folder(Path(folder) / split, classes=classes, height=height, width=width, channels=channels, rules=rules)


def resume_key(params, *arrays: np.ndarray) -> tuple:
    """What a killed pretrain's state belongs to: the params that shape it and the images
    themselves (their content, not their count, so new source data never resumes stale state)."""
    return (params.seed, params.image, params.base, params.pretrain, params.data.source_classes, *arrays)


def pretrain(*, params, backup_root: Path | None, live: Path | None = None):
    """Model A and its record, by ``pretrain.method``; ``backup_root`` makes training resumable,
    ``live`` is the DVCLive folder of its epochs (graft.train.history)."""
    if params.pretrain.method == "autoencoder":
        return pretrain_autoencoder(params=params, backup_root=backup_root, live=live)
    return pretrain_supervised(params=params, backup_root=backup_root, live=live)


def pretrain_supervised(*, params, backup_root: Path | None, live: Path | None = None):
    """Train model A on the labelled source task in ``pretrain.data`` (a keras.applications base
    is returned as it comes)."""
    seed_everything(params.seed)
    source = build_source_model(params)
    record = {"base": params.base.kind, "weights": params.base.weights,
              "base_params": int(source.get_layer(BASE_NAME).count_params())}
    if KINDS[params.base.kind].application is not None:
        if live is not None:
            write_empty(live)  # nothing trained
        return source, PretrainRecord(**record)
    shape, classes, folder = decode_args(params), params.data.source_classes, params.pretrain.data
    data = labelled(folder, "train", classes=classes, **shape)
    fit_idx, val_idx = holdout(len(data.y), fraction=params.pretrain.valid_fraction, seed=params.seed)
    backup = backup_root and backup_dir(backup_root, "pretrain", *resume_key(params, data.x, data.y))
    result = fit(source, train=(data.x[fit_idx], data.y[fit_idx]), valid=(data.x[val_idx], data.y[val_idx]),
                 recipe=params.pretrain, seed=params.seed, backup=backup, live=live)
    record.update(source_classes=list(classes), train_images=len(fit_idx), valid_images=len(val_idx),
                  best_epoch=result.best_epoch, valid_loss=result.best_val_loss,
                  valid_accuracy=result.history["val_accuracy"][result.best_epoch - 1])
    test = labelled(folder, "test", classes=classes, **shape)
    if len(test.y):
        loss, accuracy = source.evaluate(test.x, test.y, batch_size=256, verbose=0)
        record.update(test_images=len(test.y), test_loss=float(loss), test_accuracy=float(accuracy))
    return source, PretrainRecord(**record)


def unlabelled_files(params) -> list[Path]:
    """The autoencoder's images: every image under ``pretrain.data`` except its top-level test/ and
    valid/ folders, so a target folder's test images are never seen (graft.config refuses a
    folder that holds the target's without being it). Given the target folder itself, its test
    images must be apart in test/: else the split would draw test images from what pretrain saw."""
    folder = params.pretrain.data
    if not folder.is_dir():
        raise NoUnlabelledImages(f"pretrain.data={folder} is not a folder; give a folder of unlabelled images")
    if folder.resolve() == params.paths.target.resolve() and not (folder / "test").is_dir():
        raise NoUnlabelledImages(
            f"pretrain.method autoencoder: pretrain.data is the target folder {folder}, which has no test/ folder, so its "
            "test images cannot be kept out of pretraining; give the target as train/ and test/ folders, or set "
            "pretrain.data to another folder")
    files = sorted(p for p in folder.rglob("*") if is_image_candidate(p)
                   and p.relative_to(folder).parts[0] not in HELD_OUT)
    if not files:
        raise NoUnlabelledImages(f"pretrain.method autoencoder: no images in pretrain.data={folder} (test/ and valid/ "
                                 "are left out)")
    return files


def pretrain_autoencoder(*, params, backup_root: Path | None, live: Path | None = None):
    seed_everything(params.seed)
    files = unlabelled_files(params)
    x = decode_all(files, **decode_args(params), label=f"reading pretrain.data={params.pretrain.data}")
    target = x.astype("float32") / 255.0
    fit_idx, val_idx = holdout(len(x), fraction=params.pretrain.valid_fraction, seed=params.seed)
    model = autoencoder(params)
    recipe = params.pretrain.model_copy(update={"class_weight": "none"})  # no classes to weigh
    backup = backup_root and backup_dir(backup_root, "pretrain", *resume_key(params, x))
    result = fit(model, train=(x[fit_idx], target[fit_idx]), valid=(x[val_idx], target[val_idx]),
                 recipe=recipe, seed=params.seed, backup=backup, live=live, loss="mse", metrics=())
    return model, PretrainRecord(
        base=params.base.kind, weights="none", method="autoencoder",
        base_params=int(model.get_layer(BASE_NAME).count_params()), unlabelled_images=len(x),
        unlabelled_from=str(params.pretrain.data), train_images=len(fit_idx), valid_images=len(val_idx),
        best_epoch=result.best_epoch, valid_reconstruction_mse=result.best_val_loss)

"""Stage ``pretrain``: model A, the source model whose base the target task reuses.

The default compact CNN is trained on the source task (Fashion-MNIST's 8 classes other than
the target's), as Hands-On ML ch. 11 does; a keras.applications base comes with its weights
(ImageNet, none, or a local file) and is saved as it is.

``pretrain.method: autoencoder`` needs no labelled source at all (Hands-On ML's unsupervised
pretraining): the compact CNN is the encoder of an autoencoder, with a small decoder of
transposed convolutions, trained to reconstruct unlabelled images (``pretrain.unlabelled``, or
the target's own images other than its test/ and valid/ folders: the unused labelled pool
included, labels ignored). Model A is then the autoencoder, and the target task transfers its
encoder (the base) as usual.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from graft import images, model as graft_model, training
from graft.atomic import write_json
from graft.bases import KINDS
from graft.config import Params


def holdout(n: int, *, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic train / validation indices."""
    order = np.random.default_rng(seed).permutation(n)
    cut = max(1, int(round(n * fraction)))
    return np.sort(order[cut:]), np.sort(order[:cut])


def resume_key(params: Params, *arrays: np.ndarray) -> tuple:
    """What a killed pretrain's state belongs to: the params that shape it and the images
    themselves (their content, not their count, so new source data never resumes stale state)."""
    return (params.seed, params.image, params.base, params.pretrain, params.data.source_classes, *arrays)


def pretrain(*, params: Params, source_dir: Path, backup_root: Path | None = None) -> tuple["graft_model.keras.Model", dict]:
    """Train model A on the source task; ``backup_root`` makes it resumable (graft.training)."""
    training.seed_everything(params.seed)
    source = graft_model.build_source_model(params)
    report: dict = {"base": params.base.kind, "weights": params.base.weights,
                    "base_params": int(source.get_layer("base").count_params())}
    if KINDS[params.base.kind].application is not None:
        return source, report
    shape = {"height": params.image.height, "width": params.image.width, "channels": params.image.channels}
    classes = params.data.source_classes
    data = images.load_folder(source_dir / "train", classes=classes, **shape)
    fit_idx, val_idx = holdout(len(data.y), fraction=params.pretrain.valid_fraction, seed=params.seed)
    backup = backup_root and training.backup_dir(backup_root, "pretrain", *resume_key(params, data.x, data.y))
    result = training.fit(source, train=(data.x[fit_idx], data.y[fit_idx]), valid=(data.x[val_idx], data.y[val_idx]),
                          recipe=params.pretrain, seed=params.seed, backup=backup)
    report.update(source_classes=list(classes), train_images=len(fit_idx), valid_images=len(val_idx),
                  best_epoch=result.best_epoch, valid_loss=result.best_val_loss,
                  valid_accuracy=result.history["val_accuracy"][result.best_epoch - 1])
    test = images.load_folder(source_dir / "test", classes=classes, **shape)
    if len(test.y):
        loss, accuracy = source.evaluate(test.x, test.y, batch_size=256, verbose=0)
        report.update(test_images=len(test.y), test_loss=float(loss), test_accuracy=float(accuracy))
    return source, report


class NoUnlabelledImages(FileNotFoundError):
    """pretrain.method autoencoder found no images it may use."""


def unlabelled_files(params: Params) -> list[Path]:
    """The autoencoder's images: every image under ``pretrain.unlabelled``, or under the target
    folder except its test/ and valid/ folders (which must exist apart, so test images are never seen)."""
    if params.pretrain.unlabelled is not None:
        files = sorted(p for p in params.pretrain.unlabelled.rglob("*") if images.is_image_candidate(p))
        where = f"pretrain.unlabelled={params.pretrain.unlabelled}"
    else:
        target = params.paths.target
        if not (target / "test").is_dir():
            raise NoUnlabelledImages(
                f"pretrain.method autoencoder: {target} has no test/ folder, so its test images cannot be kept out of "
                "pretraining; give the target as train/ and test/ folders, or set pretrain.unlabelled to a folder")
        files = sorted(p for p in target.rglob("*") if images.is_image_candidate(p)
                       and p.relative_to(target).parts[0] not in ("test", "valid"))
        where = f"{target} (without test/ and valid/)"
    if not files:
        raise NoUnlabelledImages(f"pretrain.method autoencoder: no images in {where}")
    return files


def decoder(*, encoded_shape: tuple[int, int, int], filters: tuple[int, ...], height: int, width: int, channels: int,
            seed: int):
    """Transposed convolutions back up the base's pooling steps, to pixels in [0, 1]."""
    import keras
    from keras import layers

    inputs = keras.Input(shape=encoded_shape, name="code")
    x = inputs
    for i, width_ in enumerate(reversed(filters[:-1]), start=1):
        x = layers.Conv2DTranspose(width_, 3, strides=2, padding="same", activation="relu", name=f"decoder_up{i}",
                                   kernel_initializer=keras.initializers.HeNormal(seed=seed + 50 + i))(x)
    x = layers.Conv2D(channels, 3, padding="same", activation="sigmoid", name="decoder_pixels",
                      kernel_initializer=keras.initializers.GlorotUniform(seed=seed + 50))(x)
    if tuple(x.shape[1:3]) != (height, width):  # sizes that pooling floored
        x = layers.Resizing(height, width, name="decoder_resize")(x)
    return keras.Model(inputs, x, name="decoder")


def autoencoder(params: Params):
    """pixels -> adapter -> base (the encoder) -> decoder -> reconstruction in [0, 1]."""
    import keras

    base, adapter = graft_model.build_base(params)
    inputs = graft_model.pixel_input(params)
    code = base(adapter(inputs))
    image = params.image
    outputs = decoder(encoded_shape=tuple(code.shape[1:]), filters=params.base.filters, height=image.height,
                      width=image.width, channels=image.channels, seed=params.seed)(code)
    return keras.Model(inputs, outputs, name="source")


def pretrain_autoencoder(*, params: Params, backup_root: Path | None = None) -> tuple["graft_model.keras.Model", dict]:
    import dataclasses

    training.seed_everything(params.seed)
    files = unlabelled_files(params)
    shape = {"height": params.image.height, "width": params.image.width, "channels": params.image.channels}
    x = np.stack([images.decode(f, **shape) for f in files])
    target = x.astype("float32") / 255.0
    fit_idx, val_idx = holdout(len(x), fraction=params.pretrain.valid_fraction, seed=params.seed)
    model = autoencoder(params)
    recipe = dataclasses.replace(params.pretrain, class_weight="none")  # no classes to weigh
    backup = backup_root and training.backup_dir(backup_root, "pretrain", *resume_key(params, x))
    result = training.fit(model, train=(x[fit_idx], target[fit_idx]), valid=(x[val_idx], target[val_idx]),
                          recipe=recipe, seed=params.seed, backup=backup, loss="mse", metrics=())
    report = {"base": params.base.kind, "weights": "none", "method": "autoencoder",
              "base_params": int(model.get_layer("base").count_params()),
              "unlabelled_images": len(x), "unlabelled_from": str(params.pretrain.unlabelled or params.paths.target),
              "train_images": len(fit_idx), "valid_images": len(val_idx), "best_epoch": result.best_epoch,
              "valid_reconstruction_mse": result.best_val_loss}
    return model, report


def run(params: Params) -> None:
    if params.pretrain.method == "autoencoder":
        source, report = pretrain_autoencoder(params=params, backup_root=params.paths.backup)
    else:
        source, report = pretrain(params=params, source_dir=params.paths.source, backup_root=params.paths.backup)
    training.save_model(source, params.paths.source_model)
    write_json(params.paths.metrics / "pretrain.json", report)
    if "test_accuracy" in report:
        print(f"pretrain: source model on {len(report['source_classes'])} classes, "
              f"test accuracy {report['test_accuracy']:.4f} ({report['test_images']} images)")
    elif "unlabelled_images" in report:
        print(f"pretrain: autoencoder on {report['unlabelled_images']} unlabelled images ({report['unlabelled_from']}), "
              f"valid reconstruction MSE {report['valid_reconstruction_mse']:.4f} (best epoch {report['best_epoch']})")
    else:
        print(f"pretrain: {report['base']} base with weights={report['weights']}")

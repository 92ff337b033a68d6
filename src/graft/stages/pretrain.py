"""Stage ``pretrain``: model A, the source model (supervised on the source task, or an autoencoder)."""

from __future__ import annotations

from graft import artifacts
from graft.model import precision
from graft.model.saved import save
from graft.train.pretrain import pretrain


def run(params) -> None:
    with precision.policy(params.precision):
        source, record = pretrain(params=params, backup_root=params.paths.backup,
                                  live=artifacts.live_dir(artifacts.PRETRAIN_LIVE, params.paths))
    save(source, artifacts.SOURCE_MODEL.path(params.paths))
    artifacts.PRETRAIN.write(params.paths, record)
    if record.test_accuracy is not None:
        print(f"pretrain: source model on {len(record.source_classes)} classes, test accuracy "
              f"{record.test_accuracy:.4f} ({record.test_images} images)")
    elif record.unlabelled_images is not None:
        print(f"pretrain: autoencoder on {record.unlabelled_images} unlabelled images ({record.unlabelled_from}), "
              f"valid reconstruction MSE {record.valid_reconstruction_mse:.4f} (best epoch {record.best_epoch})")
    else:
        print(f"pretrain: {record.base} base with weights={record.weights}")

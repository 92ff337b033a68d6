"""Stage ``train_head``: model B = a clone of A's base, frozen, under a new head; train the head."""

from __future__ import annotations

from graft import model as graft_model, splits, training
from graft.atomic import write_json
from graft.distribute import distributed
from graft.config import Params


def train_head(*, source: "graft_model.keras.Model", train, valid, num_classes: int, dropout: float,
               epochs: int, batch_size: int, lr: float, seed: int):
    """Graft a head onto a frozen clone of ``source``'s base and fit it; ``source`` is unchanged."""
    training.seed_everything(seed)
    model = graft_model.graft_head(source, num_classes=num_classes, dropout=dropout, seed=seed)
    result = training.fit(model, train=train, valid=valid, epochs=epochs, batch_size=batch_size, lr=lr)
    return model, result


@distributed
def run(params: Params) -> None:
    train, valid = splits.load(params, "train"), splits.load(params, "valid")
    h = params.head
    model, result = train_head(source=graft_model.load(params.paths.source_model), train=(train.x, train.y),
                               valid=(valid.x, valid.y), num_classes=len(params.data.target_classes),
                               dropout=h.dropout, epochs=h.epochs, batch_size=h.batch_size, lr=h.lr, seed=params.seed)
    training.save_model(model, params.paths.head_model)
    training.write_history(params.paths.plots / "head_history.csv", result, phase="head")
    write_json(params.paths.metrics / "head.json", {
        "best_epoch": result.best_epoch, "valid_loss": result.best_val_loss,
        "valid_accuracy": result.history["val_accuracy"][result.best_epoch - 1],
        "trainable_params": int(sum(w.numpy().size for w in model.trainable_weights))})
    print(f"train_head: best epoch {result.best_epoch}/{h.epochs}, valid loss {result.best_val_loss:.4f}, "
          f"valid accuracy {result.history['val_accuracy'][result.best_epoch - 1]:.4f}")

"""Stage ``finetune``: unfreeze the top of the base (BatchNorm stays frozen), recompile at a low
learning rate, and continue from the head-phase weights."""

from __future__ import annotations

from graft import model as graft_model, splits, training
from graft.atomic import write_json
from graft.distribute import distributed
from graft.bases import BASE_NAME
from graft.config import Params


def finetune(*, model: "graft_model.keras.Model", unfreeze: int | str, train, valid, epochs: int,
             batch_size: int, lr: float, seed: int):
    """Fine-tune ``model`` (a head-phase model) in place; return the unfrozen layers and the fit."""
    training.seed_everything(seed)
    unfrozen = graft_model.unfreeze_top(model.get_layer(BASE_NAME), unfreeze=unfreeze)
    result = training.fit(model, train=train, valid=valid, epochs=epochs, batch_size=batch_size, lr=lr)
    return unfrozen, result


@distributed
def run(params: Params) -> None:
    train, valid = splits.load(params, "train"), splits.load(params, "valid")
    f = params.finetune
    model = graft_model.load(params.paths.head_model)
    head_epochs = sum(1 for _ in open(params.paths.plots / "head_history.csv")) - 1
    unfrozen, result = finetune(model=model, unfreeze=f.unfreeze, train=(train.x, train.y), valid=(valid.x, valid.y),
                                epochs=f.epochs, batch_size=f.batch_size, lr=f.lr, seed=params.seed)
    training.save_model(model, params.paths.finetuned_model)
    training.write_history(params.paths.plots / "finetune_history.csv", result, phase="finetune",
                           first_epoch=head_epochs + 1)
    write_json(params.paths.metrics / "finetune.json", {
        "unfrozen_layers": unfrozen, "best_epoch": result.best_epoch, "valid_loss": result.best_val_loss,
        "valid_accuracy": result.history["val_accuracy"][result.best_epoch - 1],
        "trainable_params": int(sum(w.numpy().size for w in model.trainable_weights))})
    print(f"finetune: unfroze {unfrozen}; best epoch {result.best_epoch}/{f.epochs}, "
          f"valid loss {result.best_val_loss:.4f}")

"""Pipeline tier: the model registry on the real tiny project (a copy of the session's reproduced one):
a committed blessed run registered with GTO lands in prod, and a worse model is then refused
against that prod model's metrics, read from its commit. The two models are the tiny run's own
(accuracy 0.5) and the same with its output bias moved so that it gets every test image right."""

from __future__ import annotations

import json
import shutil

import pytest
import yaml

from tests.helpers import BIN, dvc, run

pytestmark = pytest.mark.slow

GIT = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]


def better_model(root) -> None:
    """The tiny run's fine-tuned model ranks every test image right (ROC-AUC 1) but its output bias
    puts them all in one class (accuracy 0.5): moved between the two classes' logits, it gets them
    all right. Changes only the output layer's bias of models/finetuned.keras."""
    import keras
    import numpy as np

    from graft import config
    from graft.data.load import load_split
    from graft.model.saved import load, save

    params = config.load(root / "params.yaml")  # its paths are relative to the project (the cwd)
    test, model = load_split(params, "test", progress=False), load(params.paths.finetuned_model)
    p = np.clip(model.predict(test.x, verbose=0), 1e-12, 1)
    margin = np.log(p[:, 1]) - np.log(p[:, 0])
    assert margin[test.y == 0].max() < margin[test.y == 1].min(), "the tiny model must rank the classes apart"
    last = [layer for layer in model._flatten_layers() if isinstance(layer, keras.layers.Dense)][-1]
    kernel, bias = last.get_weights()
    bias[1] -= (margin[test.y == 0].max() + margin[test.y == 1].min()) / 2
    last.set_weights([kernel, bias])
    save(model, params.paths.finetuned_model)


def repro_export(root, *, check: bool = True):
    """The evaluate and export stages only, as `dvc repro` runs them (the model changed by hand)."""
    dvc(root, "repro", "--single-item", "evaluate")
    return dvc(root, "repro", "--single-item", "export", check=check)


def test_a_registered_blessed_run_is_in_prod_and_a_worse_model_is_refused_against_it(tiny_project, tmp_path,
                                                                                      monkeypatch):
    root = tmp_path / "project"
    shutil.copytree(tiny_project, root, symlinks=True)
    for who in ("AUTHOR", "COMMITTER"):  # GTO's tags are the user's: any git identity will do
        monkeypatch.setenv(f"GIT_{who}_NAME", "t")
        monkeypatch.setenv(f"GIT_{who}_EMAIL", "t@t")
    monkeypatch.chdir(root)
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["gate"]["max_regression"] = 0.0  # the tiny task's gate blesses anything else: only the comparison refuses
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    model = root / params["paths"]["finetuned_model"]
    shutil.copy(model, tmp_path / "worse.keras")
    better_model(root)
    repro_export(root)
    graft = str(BIN / "graft")
    refused = run([graft, "register"], root, check=False)  # the run is not committed yet
    assert refused.returncode == 1 and "HEAD's dvc.lock has no export stage" in refused.stderr, refused.stderr
    run(["git", "add", "-A"], root)
    run([*GIT, "commit", "-q", "-m", "blessed run"], root)
    assert "registered and assigned to prod" in run([graft, "register"], root).stdout
    shown = json.loads(run([str(BIN / "gto"), "show", "--json"], root).stdout)
    assert shown["graft-classifier"]["stage"] == {"prod": "v0.0.1"}, shown
    prod = json.loads((root / "metrics" / "metrics.json").read_text())["finetuned"]["accuracy"]
    assert prod == 1.0

    model.unlink()
    shutil.move(tmp_path / "worse.keras", model)  # the tiny run's own model: accuracy 0.5 on the same test images
    failed = repro_export(root, check=False)
    assert failed.returncode != 0 and "gate.max_regression 0.0 below the prod model's" in failed.stderr, failed.stderr
    assert "graft-classifier v0.0.1" in failed.stderr
    gate = json.loads((root / "metrics" / "gate.json").read_text())
    assert gate["checks"]["regression"]["compared"] and gate["checks"]["regression"]["previous"] == prod
    assert gate["checks"]["regression"]["value"] == 0.5
    again = run([graft, "register"], root, check=False)  # HEAD is still the blessed run; the workspace is not
    assert again.returncode == 1 and "not the ones HEAD holds" in again.stderr, again.stderr
    assert json.loads(run([str(BIN / "gto"), "show", "--json"], root).stdout) == shown

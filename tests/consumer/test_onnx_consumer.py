"""Consumer tier: the exported model used as other teams use it, in processes without TensorFlow."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.helpers import BIN, ROOT, env, run

pytestmark = pytest.mark.slow

NO_TENSORFLOW = textwrap.dedent("""
    import sys
    class _Block:  # any attempt to import TensorFlow or Keras fails loudly
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("tensorflow", "keras", "tf2onnx"):
                raise ImportError(f"consumer code imported {name}")
    sys.meta_path.insert(0, _Block())
""")


def python(code: str, cwd) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-c", NO_TENSORFLOW + textwrap.dedent(code)], cwd=cwd, env=env(),
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return result


def test_plain_onnxruntime_with_only_the_metadata(tiny_project):
    out = python("""
        import json, sys
        import numpy as np, onnxruntime as ort
        from PIL import Image
        s = ort.InferenceSession("models/export/model.onnx")
        meta = s.get_modelmeta().custom_metadata_map
        classes, spec = json.loads(meta["graft.classes"]), json.loads(meta["graft.input"])
        img = Image.open("data/split/test/Shirt/" + sorted(__import__("os").listdir("data/split/test/Shirt"))[0])
        x = np.asarray(img.convert("L").resize((spec["width"], spec["height"])), dtype=np.uint8)
        x = x.reshape(1, spec["height"], spec["width"], spec["channels"])
        batch = np.repeat(x, 3, axis=0)  # the batch axis is dynamic
        probs = s.run(["probabilities"], {spec["name"]: batch})[0]
        assert "tensorflow" not in sys.modules
        print(json.dumps({"classes": classes, "shape": list(probs.shape), "sum": float(probs.sum(axis=1).mean())}))
    """, tiny_project)
    result = json.loads(out.stdout)
    assert result["classes"] == ["Sandal", "Shirt"]
    assert result["shape"] == [3, 2]
    assert result["sum"] == pytest.approx(1.0, abs=1e-5)


def test_graft_predict_cli_never_imports_tensorflow_and_reports_bad_files(tiny_project):
    bad = tiny_project / "not-an-image.png"
    bad.write_bytes(b"garbage")
    try:
        result = subprocess.run([str(BIN / "graft"), "predict", "data/split/test/Sandal", str(bad), "--top-k", "2"],
                                cwd=tiny_project, env=env(), capture_output=True, text=True, timeout=300)
    finally:
        bad.unlink()
    assert result.returncode == 1, result.stderr  # one file could not be read
    rows = json.loads(result.stdout)
    assert len(rows) == 11
    assert "error" in rows[-1] and "not-an-image.png" in rows[-1]["path"]
    assert all(r["label"] in ("Sandal", "Shirt") and len(r["top"]) == 2 for r in rows[:-1])
    python("""
        import graft.predict, graft.cli, sys
        graft.predict.Predictor("models/export/model.onnx")
        assert "tensorflow" not in sys.modules
    """, tiny_project)


def graft_predict(root, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "graft"), "predict", *args], cwd=root, env=env(), capture_output=True,
                          text=True, timeout=300)


def test_predict_refuses_bad_requests_in_one_line(tiny_project, tmp_path):
    """Each refusal exits 1 with one line that names what was wrong, prints no rows, no traceback."""
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes.onnx").write_text("not a model")
    fifo = tmp_path / "model.onnx"
    os.mkfifo(fifo)
    cases = {
        ("data/split/test/Sandal", "--top-k", "0"): "--top-k 0",
        ("data/split/test/Sandal", "--top-k", "3"): "--top-k 3",
        (str(tmp_path / "empty"),): "no image files",
        (str(tmp_path / "missing.png"),): "no such file",
        ("data/split/test/Sandal", "--model", str(tmp_path / "notes.onnx")): "not an ONNX model",
        ("data/split/test/Sandal", "--model", str(fifo)): "not a regular file",
        ("data/split/test/Sandal", "--model", str(tmp_path / "gone.onnx")): "no such model",
    }
    for args, message in cases.items():
        result = graft_predict(tiny_project, *args)
        assert result.returncode == 1 and result.stdout == "", (args, result.stderr)
        assert "Traceback" not in result.stderr and message in result.stderr, (args, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_a_fifo_among_the_images_is_a_row_error_not_a_hang(tiny_project, tmp_path):
    folder = tmp_path / "images"
    shutil.copytree(tiny_project / "data/split/test/Shirt", folder)
    os.mkfifo(folder / "pipe.png")
    result = graft_predict(tiny_project, str(folder))
    assert result.returncode == 1, result.stderr
    rows = {Path(r["path"]).name: r for r in json.loads(result.stdout)}
    assert "not a regular file" in rows["pipe.png"]["error"]
    assert all("label" in r for name, r in rows.items() if name != "pipe.png")


def test_the_base_install_alone_runs_graft_predict_and_has_no_tensorflow(tiny_project, tmp_path):
    """`pip install graft` without extras, from the wheel, in a fresh venv: the consumer's install."""
    source = tmp_path / "source"  # a copy, so that building writes nothing into the repository
    shutil.copytree(ROOT / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        if (ROOT / name).exists():
            shutil.copy2(ROOT / name, source / name)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    run([*pip, "wheel", "--no-deps", "-w", str(tmp_path / "dist"), str(source)], tmp_path, timeout=600)
    wheel = next((tmp_path / "dist").glob("graft-*.whl"))
    # fast: no pip of its own in the venv (this one installs into it), no .pyc compiling, wheels from pip's cache
    run([sys.executable, "-m", "venv", "--without-pip", str(tmp_path / "venv")], tmp_path, timeout=300)
    venv = tmp_path / "venv" / "bin"
    run([*pip, "--python", str(venv / "python"), "install", "--no-compile", "--constraint", str(ROOT / "requirements.lock"),
         str(wheel)], tmp_path, timeout=600)

    model = tiny_project / "models" / "export" / "model.onnx"
    scored = subprocess.run([str(venv / "graft"), "predict", "--model", str(model), "--format", "csv",
                             "data/split/test/Shirt"], cwd=tiny_project, env=env(), capture_output=True, text=True,
                            timeout=300)
    assert scored.returncode == 0, scored.stderr
    rows = scored.stdout.splitlines()
    assert rows[0] == "path,label,confidence,error" and len(rows) == 1 + len(os.listdir(tiny_project / "data/split/test/Shirt"))
    assert all(row.split(",")[1] in ("Sandal", "Shirt") for row in rows[1:])
    assert scored.stderr == ""
    default = subprocess.run([str(venv / "graft"), "predict", "data/split/test/Shirt"], cwd=tiny_project, env=env(),
                             capture_output=True, text=True, timeout=300)  # the published model, from params.yaml
    assert default.returncode == 0 and len(json.loads(default.stdout)) == len(rows) - 1, default.stderr

    absent = subprocess.run([str(venv / "python"), "-c", "import tensorflow"], env=env(), capture_output=True, text=True,
                            timeout=60)
    assert absent.returncode == 1 and "ModuleNotFoundError: No module named 'tensorflow'" in absent.stderr
    stage = subprocess.run([str(venv / "graft"), "split"], cwd=tiny_project, env=env(), capture_output=True, text=True,
                           timeout=300)
    assert stage.returncode == 1 and stage.stdout == ""
    assert stage.stderr.endswith("pip install 'graft[pipeline]'\n") and stage.stderr.count("\n") == 1, stage.stderr

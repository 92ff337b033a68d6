"""What the tests share: the real params.yaml with overrides, tiny data the tests make (nothing is
downloaded), tiny projects, and running commands. Fixtures live in conftest.py; this module is
imported by the tests that need it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import yaml

import graft  # noqa: F401  (tool defaults, telemetry off, for everything the tests start)
from graft import config
from graft.data.fashion_mnist import FILES, write_idx

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

TINY = {
    "data": {"source_per_class": 24, "source_test_per_class": 6,
             "target_train_pool_per_class": 30, "target_test_per_class": 10},
    "validate": {"min_images_per_class": 5},
    "split": {"valid_fraction": 0.4, "train_fraction": None, "train_per_class": 12, "valid_per_class": 12},
    "base": {"filters": [4, 8], "convs_per_block": 1},
    "pretrain": {"epochs": 2, "batch_size": 32},
    "head": {"epochs": 2, "batch_size": 8, "min_steps": 0},
    "finetune": {"epochs": 2, "batch_size": 8, "unfreeze": "block2", "min_steps": 0},
    "advisor": {"small_per_class": 10},  # 12 train images per class count as large: auto fine-tunes the top part
    "gate": {"min_accuracy": 0.0, "min_class_recall": 0.0, "max_regression": 1.0},  # tiny models bless
}
SMALL_IMAGES = {"image": {"height": 16, "width": 16, "channels": 1}, "base": {"filters": [4, 8], "convs_per_block": 1},
                "finetune": {"unfreeze": "block2"}}  # a two-block base


def deep_update(base: dict, changes: dict) -> dict:
    out = dict(base)
    for key, value in changes.items():
        out[key] = deep_update(out.get(key, {}), value) if isinstance(value, dict) else value
    return out


def raw_params(*changes: dict) -> dict:
    """params.yaml as shipped, as a mapping, with each of ``changes`` merged in (nested dicts)."""
    raw = config.read_yaml((ROOT / "params.yaml").read_text())
    for change in changes:
        raw = deep_update(raw, change)
    return raw


def params(*changes: dict) -> config.Params:
    """The shipped params.yaml with ``changes`` merged in, checked by graft.config: tests exercise
    the recipe users run, never defaults of their own."""
    return config.parse(raw_params(*changes), where="params.yaml (with test overrides)")


def synthetic_images(labels: np.ndarray, *, seed: int) -> np.ndarray:
    """28x28 images where class k is a stripe texture (period 2 + k % 5; horizontal for k < 5,
    vertical otherwise) under noise: local patterns a small CNN with global pooling can learn
    in a few steps, so tiny runs are better than chance."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 60, size=(len(labels), 28, 28), dtype=np.uint8)
    for i, k in enumerate(labels):
        stripes = np.arange(28) % (2 + int(k) % 5) == 0
        bright = 180 + rng.integers(0, 75)
        if k < 5:
            images[i, stripes, :] = bright
        else:
            images[i, :, stripes] = bright
    return images


def write_fake_fashion_mnist(folder: Path, *, train_per_class: int = 40, test_per_class: int = 12) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", train_per_class), ("test", test_per_class)):
        labels = np.tile(np.arange(10, dtype=np.uint8), n)
        images_name, labels_name = FILES[split]
        write_idx(folder / images_name, synthetic_images(labels, seed=len(labels)))
        write_idx(folder / labels_name, labels)
    return folder


USER_FOLDER = {  # params for a project on a user's own images (write_user_folder), outside the project
    "data": {"target": "folder", "target_classes": ["cat", "dog"]},
    "image": {"height": 16, "width": 16, "channels": 3},
    "split": {"test_fraction": 0.25, "valid_fraction": 0.3, "train_fraction": None},
    "head": {"min_steps": 40},  # the scratch baseline gets head + finetune min_steps: enough not to collapse
}


def write_user_folder(folder: Path, *, per_class: int = 20) -> Path:
    """A user's own images: cats (horizontal stripes) and dogs (vertical), PNG and JPEG, spaces in names."""
    from PIL import Image

    rng = np.random.default_rng(3)
    for k, cls in enumerate(["cat", "dog"]):
        (folder / cls).mkdir(parents=True)
        for i in range(per_class):
            pixels = rng.integers(0, 60, (20, 24, 3), dtype=np.uint8)
            if k == 0:
                pixels[::2] = 230
            else:
                pixels[:, ::3] = 230
            Image.fromarray(pixels).save(folder / cls / f"{cls} {i}.{'jpg' if i % 2 else 'png'}")
    return folder


def untouched(folder: Path) -> list[tuple]:
    """What must not change about a user's files: each one's mode, link count, inode, mtime and content."""
    import hashlib

    entries = []
    for path in sorted(folder.rglob("*")):
        info = path.lstat()
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else ""
        entries.append((str(path.relative_to(folder)), info.st_mode, info.st_nlink, info.st_ino, info.st_mtime_ns, digest))
    return entries


def env() -> dict[str, str]:
    """The environment the stages run in: this interpreter's venv first on PATH."""
    return {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}


def run(cmd: list[str], cwd: Path, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess:
    result = subprocess.run(cmd, cwd=cwd, env=env(), capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def dvc(project: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return run([str(BIN / "dvc"), *args], project, check=check)


def stages() -> list[str]:
    """The stages of dvc.yaml, in the file's order (the pipeline's own order comes from DVC)."""
    return list(yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"])


def ran(output: str) -> list[str]:
    """The stages a `dvc repro`'s output says it ran (not those it skipped or restored from its run cache)."""
    return [s for s in stages() if f"Running stage '{s}'" in output]


def make_project(root: Path, *, fake_data: Path, overrides: dict | None = None) -> Path:
    """A temp copy of the project (pipeline, params, code) as a git + DVC repo on tiny data."""
    root.mkdir(parents=True, exist_ok=True)
    for name in ("dvc.yaml", "prefect.yaml", "flows", "src"):
        src = ROOT / name
        (shutil.copytree(src, root / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
         if src.is_dir() else shutil.copy2(src, root / name))
    raw = raw_params(TINY, {"data": {"fashion_mnist_dir": str(fake_data)}}, overrides or {})
    (root / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    run(["git", "init", "-q", "-b", "main"], root)
    run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty", "-m", "init"], root)
    run([str(BIN / "dvc"), "init", "-q"], root)
    shutil.copy2(ROOT / ".dvc" / "config", root / ".dvc" / "config")  # the project's DVC settings (cache links)
    run([str(BIN / "dvc"), "config", "core.check_update", "false"], root)
    return root


def changed(p: config.Params, *changes: dict) -> config.Params:
    """``p`` with ``changes`` (nested dicts) merged in, checked again by graft.config."""
    for change in changes:
        p = config.with_changes(p, change)
    return p


def optimized_ops(path: Path, tmp_path: Path) -> list[str]:
    """The op types onnxruntime runs for the model at ``path``, after its graph optimizations."""
    import onnx
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.optimized_model_filepath = str(tmp_path / f"{path.stem}.optimized.onnx")
    ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return [n.op_type for n in onnx.load(options.optimized_model_filepath).graph.node]

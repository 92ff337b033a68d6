"""Unit: publishing a folder never leaves a moment with nothing published nor a half-written one,
and what a killed writer left is cleaned (and only that)."""

from __future__ import annotations

import os

import pytest

from graft import files
from graft.files import atomic_path, clean_stale


def published(tmp_path, text="v1"):
    final = tmp_path / "export"
    final.mkdir()
    (final / "model.onnx").write_text(text)
    return final


def test_a_new_folder_replaces_the_old_one_only_once_complete(tmp_path):
    final = published(tmp_path)
    with atomic_path(final, directory=True) as tmp:
        (tmp / "model.onnx").write_text("v2")
        assert (final / "model.onnx").read_text() == "v1"  # still published while the new one is written
    assert (final / "model.onnx").read_text() == "v2"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export"]  # no temporary or old folder left


def test_a_failed_write_leaves_the_published_folder_as_it_was(tmp_path):
    final = published(tmp_path)
    with pytest.raises(RuntimeError):
        with atomic_path(final, directory=True) as tmp:
            (tmp / "model.onnx").write_text("half")
            raise RuntimeError("killed mid-export")
    assert (final / "model.onnx").read_text() == "v1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export"]


def test_where_folders_cannot_be_exchanged_a_kill_between_the_renames_loses_nothing(tmp_path, monkeypatch):
    final = published(tmp_path)
    monkeypatch.setattr(files, "exchange", lambda a, b: False)  # a filesystem without RENAME_EXCHANGE
    renames = []
    real_rename = os.rename

    def killed_after_one_rename(src, dst):
        if renames:
            raise KeyboardInterrupt("SIGKILL between the two renames")
        renames.append((src, dst))
        real_rename(src, dst)

    monkeypatch.setattr(files.os, "rename", killed_after_one_rename)
    with pytest.raises(KeyboardInterrupt):
        with atomic_path(final, directory=True) as tmp:
            (tmp / "model.onnx").write_text("v2")
    monkeypatch.setattr(files.os, "rename", real_rename)
    assert not final.exists() and any(p.name.endswith(".old") for p in tmp_path.iterdir())
    clean_stale(final)  # what the next run does first
    assert (final / "model.onnx").read_text() == "v1"
    with atomic_path(final, directory=True) as tmp:  # and the fallback path publishes normally
        (tmp / "model.onnx").write_text("v3")
    assert (final / "model.onnx").read_text() == "v3" and sorted(p.name for p in tmp_path.iterdir()) == ["export"]


def test_only_graft_s_own_leftovers_are_removed(tmp_path):
    final = published(tmp_path)
    (tmp_path / ".export.ab12cd34.tmp").mkdir()  # a killed writer's folder
    (tmp_path / ".metrics.json.zz99yy88.tmp.json").write_text("{")  # a killed writer's file
    (tmp_path / ".export.backup").mkdir()  # the user's: not graft's naming
    (tmp_path / "export.tmp").write_text("mine")
    removed = clean_stale(final) + clean_stale(tmp_path / "metrics.json")
    assert sorted(p.name for p in removed) == [".export.ab12cd34.tmp", ".metrics.json.zz99yy88.tmp.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".export.backup", "export", "export.tmp"]


def test_files_are_flushed_before_they_are_published(tmp_path, monkeypatch):
    synced = []
    real = os.fsync
    monkeypatch.setattr(files.os, "fsync", lambda fd: (synced.append(os.readlink(f"/proc/self/fd/{fd}")), real(fd)))
    with atomic_path(tmp_path / "export", directory=True) as tmp:
        (tmp / "model.onnx").write_text("v1")
        written = str(tmp / "model.onnx")
    assert written in synced  # the file, flushed under its temporary name, before the rename
    assert str(tmp_path) in synced  # and the folder that holds the new name


def test_a_killed_phase_s_half_written_state_is_swept_and_finished_state_kept(tmp_path):
    from graft.files import clean_stale_tree

    key = tmp_path / "backup" / "pretrain" / "1b4b64e2deec6256"
    (key / ".checkpoint.vep4lbo3.tmp").mkdir(parents=True)  # killed while writing its first checkpoint
    (key / ".checkpoint.vep4lbo3.tmp" / "arrays.npz").write_bytes(b"half")
    kept = tmp_path / "backup" / "train_head" / "aa" / "checkpoint"
    kept.mkdir(parents=True)  # a checkpoint that was written whole: resumable
    (kept / "state.json").write_text("{}")
    clean_stale_tree(tmp_path / "backup")
    assert not (tmp_path / "backup" / "pretrain").exists() and (kept / "state.json").is_file()

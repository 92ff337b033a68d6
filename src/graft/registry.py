"""The model registry: GTO's git tags on the commits that hold a blessed run.

A version of ``graft-classifier`` (artifacts.MODEL_NAME, dvc.yaml's ``artifacts:`` entry) is a
GTO tag (``graft-classifier@v0.0.1``) on a commit whose dvc.lock holds the exported model, and
``prod`` is a GTO stage tag (``graft-classifier#prod#1``). ``export`` runs inside ``dvc repro``
(or ``dvc exp run``) before its outputs are committed, so it cannot tag honestly; registration is
the explicit step after the commit (``graft register``), and it tags nothing unless HEAD really
holds a blessed run: its dvc.lock, and the metrics and gate records that lock names, as committed.

The release gate compares a candidate with the model in ``prod``: its scores and test-image digest
are read from its own commit (``metrics.json``, ``gate.json``), so the registry has no second copy
that could drift. Git (``git``, GTO) is asked for nothing else; each call has a timeout.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import time
from pathlib import Path

import yaml

from graft import artifacts
from graft.errors import RegistryError
from graft.records import BlessedRecord, GateRecord, MetricsRecord

MODEL = artifacts.MODEL_NAME
STAGE = "prod"
GIT_TIMEOUT = 60  # seconds for one git command on a local repository
EXPERIMENTS = (".dvc", "tmp", "exps")  # where `dvc exp run --temp` / the queue make their copies of the repo


def _git(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=GIT_TIMEOUT)


def git_root(start: Path) -> Path | None:
    """The top of the git checkout holding ``start``, or None outside git."""
    try:
        done = _git(start, "rev-parse", "--show-toplevel")
    except OSError:  # no git installed: not a git project for graft's purposes
        return None
    return Path(done.stdout.strip()) if done.returncode == 0 else None


def registry_root(start: Path) -> Path | None:
    """The repository whose tags are the registry: the checkout itself, or, inside a copy DVC made
    for ``dvc exp run --temp`` or the queue (under ``<repo>/.dvc/tmp/exps/``, with no tags), the
    repository that made it."""
    top = git_root(start)
    if top is None:
        return None
    for parent in top.parents:
        if parent.parts[-3:] == EXPERIMENTS:
            return git_root(parent.parent.parent.parent) or top
    return top


def _has_commit(root: Path) -> bool:
    return _git(root, "rev-parse", "--verify", "-q", "HEAD^{commit}").returncode == 0


def _show(root: Path, rev: str, path: str) -> bytes | None:
    done = subprocess.run(["git", "show", f"{rev}:{path}"], cwd=root, capture_output=True, timeout=GIT_TIMEOUT)
    return done.stdout if done.returncode == 0 else None


def _in_repo(root: Path, path: Path) -> str:
    try:
        return (Path.cwd() / path).resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        raise RegistryError(f"{path}: outside the git repository {root}, so no commit can hold it; keep paths.metrics "
                            "inside the project to use the model registry") from None


def prod(start: Path, *, paths) -> tuple[BlessedRecord | None, str | None]:
    """The model in ``prod``, read from the commit its version tags, or None and why there is none.
    A prod version whose records cannot be read is refused: a gate that skipped it would fail open."""

    root = registry_root(start)
    if root is None:
        return None, (f"{start.resolve()} is not a git repository, so it has no model registry (GTO tags); "
                      "`git init`, commit a blessed run and `graft register` it")
    if not _has_commit(root):
        return None, f"the git repository {root} has no commits, so no model is in {STAGE} yet"
    found = _in_stage(root)
    if found is None:
        return None, f"no version of {MODEL} is in {STAGE} yet (commit a blessed run, then `graft register`)"
    sha, where = found.commit_hexsha, f"{MODEL} {found.version} in {STAGE} (commit {found.commit_hexsha[:12]})"
    fix = (f"assign {STAGE} to a version `graft register` made (`gto assign {MODEL} --version vX.Y.Z --stage "
           f"{STAGE}`), or `gto unassign {MODEL} --stage {STAGE}` to publish with no model to compare against")
    records = {}
    for artifact in (artifacts.METRICS, artifacts.GATE):
        rel = _in_repo(root, artifact.path(paths))
        text = _show(root, sha, rel)
        try:
            records[artifact.name] = artifact.record.model_validate(json.loads(text or b"null"))
        except ValueError as err:
            why = "missing" if text is None else f"unreadable ({str(err).splitlines()[0]})"
            raise RegistryError(f"{where}: its {rel} is {why}; {fix}") from None
    scores: MetricsRecord = records[artifacts.METRICS.name]
    decision: GateRecord = records[artifacts.GATE.name]
    return BlessedRecord(accuracy=scores.finetuned.accuracy, per_class=scores.finetuned.per_class,
                         test_data=decision.test_data, git_revision=sha, version=found.version), None


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()  # noqa: S324 (DVC's content hash, not security)


def register(start: Path, *, paths) -> str:
    """Register HEAD's blessed run as a version of the model and assign it ``prod``; what was done.
    Refuses (RegistryError) unless HEAD's dvc.lock holds an export whose committed gate record says
    blessed and whose committed records are the ones that lock names. Tags only; never commits."""
    import gto.api

    root = git_root(start)
    if root is None:
        raise RegistryError(f"{start.resolve()} is not a git repository: the model registry is git tags (GTO); "
                            "`git init`, then commit dvc.lock and the metrics of a blessed run, then `graft register`")
    if not _has_commit(root):
        raise RegistryError(f"the git repository {root} has no commits: commit dvc.lock and the metrics of a blessed "
                            "run (`git add dvc.lock params.yaml metrics && git commit`), then `graft register`")
    lock_path = _in_repo(root, Path("dvc.lock"))
    commit = f"(`git add {lock_path} {_in_repo(root, artifacts.METRICS.path(paths).parent)} && git commit`)"
    lock = yaml.safe_load(_show(root, "HEAD", lock_path) or b"{}") or {}
    export = lock.get("stages", {}).get("export")
    if export is None:
        raise RegistryError(f"HEAD's {lock_path} has no export stage: run `dvc repro`, commit the run {commit}, "
                            "then `graft register`")
    locked = {_in_repo(root, Path(out["path"])): out.get("md5")  # metrics.json is evaluate's, gate.json export's
              for stage in lock["stages"].values() for out in stage.get("outs", [])}
    texts = {}
    for artifact in (artifacts.METRICS, artifacts.GATE):
        rel = _in_repo(root, artifact.path(paths))
        texts[artifact.name] = _show(root, "HEAD", rel)
        if texts[artifact.name] is None or locked.get(rel) != _md5(texts[artifact.name]):
            raise RegistryError(f"HEAD's {rel} is not the one its {lock_path} names (uncommitted, or from another "
                                f"run): commit the run {commit}, then `graft register`")
    run = [lock_path, *(_in_repo(root, a.path(paths)) for a in (artifacts.METRICS, artifacts.GATE))]
    if _git(root, "status", "--porcelain", "--", *run).stdout.strip():
        raise RegistryError(f"the workspace's {', '.join(run)} are not the ones HEAD holds (a later run, not "
                            f"committed yet): commit the run {commit}, or restore HEAD's, then `graft register`")
    decision = GateRecord.model_validate(json.loads(texts[artifacts.GATE.name]))
    if not decision.blessed:
        raise RegistryError(f"HEAD's model is not blessed ({'; '.join(decision.reasons)}), so it may not go to "
                            f"{STAGE}: only a model the release gate blessed is registered")
    accuracy = MetricsRecord.model_validate(json.loads(texts[artifacts.METRICS.name])).finetuned.accuracy
    sha = _git(root, "rev-parse", "HEAD").stdout.strip()
    version = _version_of(root, sha)
    if version is None:
        gto.api.register(root, MODEL, ref=sha, message=f"graft: test accuracy {accuracy:.4f}, gate blessed")
        version = _version_of(root, sha)
    now = _in_stage(root)
    if now is not None and now.version == version:
        return f"{MODEL} {version} (commit {sha[:12]}) is already in {STAGE}"
    if now is not None:  # GTO orders a stage's assignments by their tags' time, in whole seconds: a tie
        last = max(a.created_at for a in now.assignments)  # with the last one could leave it in prod
        time.sleep(max(0.0, last.timestamp() + 1 - time.time()))  # at most a second
    gto.api.assign(root, MODEL, STAGE, version=version, message=f"graft register: {version} to {STAGE}")
    return f"{MODEL} {version} (commit {sha[:12]}, test accuracy {accuracy:.4f}) registered and assigned to {STAGE}"


def _in_stage(root: Path):
    """The version (GTO's VStage) in ``prod``, or None."""
    import gto.api
    from gto.exceptions import ArtifactNotFound

    try:
        found = gto.api.find_versions_in_stage(root, MODEL, STAGE)
    except ArtifactNotFound:  # no version of the model at all yet
        return None
    return found[0] if found else None


def _version_of(root: Path, sha: str) -> str | None:
    """The version registered on commit ``sha``, if any."""
    import gto.api
    from gto.exceptions import ArtifactNotFound

    try:
        versions = gto.api.show(root, MODEL)
    except ArtifactNotFound:  # no version of the model at all yet
        return None
    return next((v["version"] for v in versions if v["commit_hexsha"] == sha and v["registrations"]), None)

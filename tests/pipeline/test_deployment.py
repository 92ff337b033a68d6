"""Pipeline tier: a real local Prefect server (SQLite, loopback) shared by the file's tests; the
pipeline served as an interval deployment, and deployed from prefect.yaml to a process work
pool that a worker runs, with the deployment's one-at-a-time limit cancelling a second trigger."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from tests.helpers import ROOT, env

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def api(url: str, path: str, body: dict | None = None):
    request = urllib.request.Request(url + path, data=json.dumps(body).encode() if body is not None else None,
                                     headers={"Content-Type": "application/json"}, method="POST" if body else "GET")
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def stop(*processes) -> None:
    for process in processes:
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=30)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """(API url, the environment that points at it, the log file)."""
    home = tmp_path_factory.mktemp("prefect")
    port = free_port()
    url = f"http://127.0.0.1:{port}/api"
    server_env = {**env(), "PREFECT_HOME": str(home / "home"), "PREFECT_API_URL": url,
                  "PREFECT_API_SERVICES_SCHEDULER_LOOP_SECONDS": "2", "PREFECT_RUNNER_POLL_FREQUENCY": "2",
                  "PREFECT_WORKER_QUERY_SECONDS": "2"}
    server_env.pop("PREFECT_SERVER_EPHEMERAL_ENABLED", None)
    log_path = home / "server.log"
    logs = open(log_path, "w")
    process = subprocess.Popen([sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
                                "--port", str(port)], env=server_env, stdout=logs, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                api(url, "/health")
                break
            except OSError:
                assert time.monotonic() < deadline and process.poll() is None, log_path.read_text()[-3000:]
                time.sleep(1)
        yield url, server_env, log_path
    finally:
        stop(process)
        logs.close()


def runs_of(url: str, deployment: str) -> list[tuple[str, str]]:
    ids = [d["id"] for d in api(url, "/deployments/filter", {"deployments": {"name": {"any_": [deployment]}}})]
    started = {"type": {"any_": ["PENDING", "RUNNING", "COMPLETED", "FAILED", "CRASHED", "CANCELLED"]}}  # not the
    # schedule's future runs (an interval schedule makes many)
    runs = (api(url, "/flow_runs/filter", {"limit": 20, "flow_runs": {"deployment_id": {"any_": ids}, "state": started}})
            if ids else [])
    return [(r["name"], r["state_type"]) for r in runs]


def test_interval_deployment_runs_on_a_real_server(server, tiny_project):
    url, server_env, log_path = server
    served = subprocess.Popen([sys.executable, "-m", "flows.serve", "--interval", "5", "--root", str(tiny_project),
                               "--name", "test-retrain"], cwd=ROOT, env=server_env, stdout=open(log_path, "a"),
                              stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 180
        states = []
        while time.monotonic() < deadline:
            states = runs_of(url, "test-retrain")
            if any(state == "COMPLETED" for _, state in states):
                break
            assert served.poll() is None, log_path.read_text()[-3000:]
            time.sleep(2)
        assert any(state == "COMPLETED" for _, state in states), (states, log_path.read_text()[-3000:])
    finally:
        stop(served)
    assert os.path.exists(tiny_project / "models" / "export" / "model.onnx")


def test_prefect_yaml_deploys_to_a_work_pool_a_worker_runs_one_at_a_time(server, tiny_project):
    """The README's work-pool route from prefect.yaml: a process pool, `prefect deploy --all`, a
    worker; two triggers at once: one run completes, the deployment's limit (CANCEL_NEW)
    cancels the other, and the project is untouched by it."""
    url, server_env, log_path = server

    def prefect(*args: str) -> str:
        done = subprocess.run([sys.executable, "-m", "prefect", "--no-prompt", *args], cwd=tiny_project,
                              env=server_env, capture_output=True, text=True, timeout=180)
        assert done.returncode == 0, (args, done.stdout[-2000:], done.stderr[-2000:])
        return done.stdout

    prefect("work-pool", "create", "graft", "--type", "process")
    prefect("deploy", "--all")
    [deployment] = api(url, "/deployments/filter", {"deployments": {"name": {"any_": ["graft-retrain"]}}})
    assert deployment["global_concurrency_limit"]["limit"] == 1, deployment
    assert deployment["concurrency_options"]["collision_strategy"] == "CANCEL_NEW", deployment
    for _ in range(2):
        prefect("deployment", "run", "graft-pipeline/graft-retrain")
    worker = subprocess.Popen([sys.executable, "-m", "prefect", "worker", "start", "-p", "graft"], cwd=tiny_project,
                              env=server_env, stdout=open(log_path, "a"), stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 240
        states = []
        while time.monotonic() < deadline:
            states = sorted(state for _, state in runs_of(url, "graft-retrain"))
            if states == ["CANCELLED", "COMPLETED"]:
                break
            assert worker.poll() is None, log_path.read_text()[-3000:]
            time.sleep(2)
        assert states == ["CANCELLED", "COMPLETED"], (states, log_path.read_text()[-3000:])
    finally:
        stop(worker)

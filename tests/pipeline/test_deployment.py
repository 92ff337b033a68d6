"""Pipeline tier: a real local Prefect server (SQLite, loopback), the pipeline served as an
interval deployment, and at least one scheduled run completing."""

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


def test_interval_deployment_runs_on_a_real_server(tmp_path, tiny_project):
    port = free_port()
    url = f"http://127.0.0.1:{port}/api"
    server_env = {**env(), "PREFECT_HOME": str(tmp_path / "prefect"), "PREFECT_API_URL": url,
                  "PREFECT_API_SERVICES_SCHEDULER_LOOP_SECONDS": "2", "PREFECT_RUNNER_POLL_FREQUENCY": "2"}
    server_env.pop("PREFECT_SERVER_EPHEMERAL_ENABLED", None)
    logs = open(tmp_path / "server.log", "w")
    server = subprocess.Popen([sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
                               "--port", str(port)], env=server_env, stdout=logs, stderr=subprocess.STDOUT)
    served = None
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                api(url, "/health")
                break
            except OSError:
                assert time.monotonic() < deadline, (tmp_path / "server.log").read_text()[-3000:]
                time.sleep(1)
        served = subprocess.Popen([sys.executable, "-m", "flows.serve", "--interval", "5", "--root", str(tiny_project),
                                   "--name", "test-retrain"], cwd=ROOT, env=server_env, stdout=logs,
                                  stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 180
        states = []
        while time.monotonic() < deadline:
            runs = api(url, "/flow_runs/filter",
                       {"limit": 5, "flow_runs": {"state": {"type": {"any_": ["COMPLETED", "FAILED", "CRASHED"]}}}})
            states = [(r["name"], r["state_type"]) for r in runs]
            if any(state == "COMPLETED" for _, state in states):
                break
            assert served.poll() is None, (tmp_path / "server.log").read_text()[-3000:]
            time.sleep(2)
        assert any(state == "COMPLETED" for _, state in states), (states, (tmp_path / "server.log").read_text()[-3000:])
        deployments = api(url, "/deployments/filter", {"limit": 5})
        assert [d["name"] for d in deployments] == ["test-retrain"]
    finally:
        for process in (served, server):
            if process is not None:
                process.terminate()
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
        logs.close()
    assert os.path.exists(tiny_project / "models" / "export" / "model.onnx")

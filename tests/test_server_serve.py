"""`trackpulse serve` as an operator starts it, and the scheduler inside it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
from trackpulse.jobs.runner import Runner
from trackpulse.jobs.schedule import interval_firing

from trackpulse.config import parse_config
from trackpulse.server.telemetry import Telemetry
from trackpulse.store.db import open_store


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_command_answers_health_and_protects_the_api(tmp_path: Path) -> None:
    port = _free_port()
    (tmp_path / "tp.toml").write_text(f"""
[store]
url = "sqlite:///{tmp_path}/tp.db"
[server]
token = "${{API_TOKEN}}"
""", encoding="utf-8")
    env = {**os.environ, "API_TOKEN": "tok"}
    proc = subprocess.Popen([sys.executable, "-m", "trackpulse", "--config", "tp.toml", "serve", "--port", str(port),
                             "--no-schedule"], cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "serve did not come up"
            time.sleep(0.2)
        assert httpx.get(f"{base}/api/status").status_code == 401
        assert httpx.get(f"{base}/api/status", headers={"Authorization": "Bearer tok"}).status_code == 200
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    assert "tok" not in err  # the token is never logged


def test_scheduled_sync_counts_failures_and_keeps_running(tmp_path: Path) -> None:
    cfg = parse_config({
        "store": {"url": f"sqlite:///{tmp_path}/tp.db"},
        "schedule": {"sync_every_minutes": 60},
        "sources": [{"name": "down", "kind": "jira", "url": f"http://127.0.0.1:{_free_port()}", "token": "t",
                     "projects": ["ABC"], "max_retries": 0}],
    })
    store = open_store(cfg.store.url)
    telemetry = Telemetry()
    runner = Runner(cfg, store, events=telemetry)
    try:
        runner.wake("sync:down")  # must not raise
        assert b'trackpulse_sync_runs_total{outcome="failed",source="down"} 1.0' in telemetry.exposition()
        assert b'trackpulse_job_runs_total{job="sync:down",outcome="failed"} 1.0' in telemetry.exposition()
        from trackpulse.jobs.runner import describe

        [row] = [r for r in describe(cfg, store) if r["job"] == "sync:down"]
        assert row["last_status"] == "failed" and "down" in row["last_error"]
        assert row["last_firing"] == interval_firing(runner.specs["sync:down"], datetime.now(UTC)).key
    finally:
        store.dispose()

"""The smallest world for the service tests: a fresh PostgreSQL database, a Jira simulator in
this process (over HTTP), and `trackpulse serve` subprocesses on one config."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
import tomli_w

PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def fresh_database() -> Iterator[str]:
    try:
        socket.create_connection(("127.0.0.1", 5432), timeout=1).close()
    except OSError:
        pytest.skip("PostgreSQL does not answer at 127.0.0.1:5432")
    name = f"trackpulse_svc_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        with admin.connect() as c:
            c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def write_config(path: Path, store_url: str, sim_url: str, projects: list[str], *, sync_seconds: float = 3.0,
                 lease_seconds: float = 3.0, digest_cron: str | None = None, grace_seconds: float = 10.0,
                 misfire_grace_minutes: float = 1.0, page_size: int = 100, extra: dict[str, Any] | None = None) -> Path:
    cfg: dict[str, Any] = {
        "store": {"url": store_url},
        "server": {"token": "tok"},
        "schedule": {"sync_every_minutes": sync_seconds / 60, "full_sync_cron": "0 3 1 1 *",
                     "lease_seconds": lease_seconds, "shutdown_grace_seconds": grace_seconds,
                     "misfire_grace_minutes": misfire_grace_minutes},
        "sources": [{"name": "jira", "kind": "jira", "url": sim_url, "token": "sim-token", "email": "sim@example.com",
                     "projects": projects, "max_retries": 3, "page_size": page_size, "concurrency": 1}],
    }
    if digest_cron:
        cfg["digests"] = [{"name": "tick", "cron": digest_cron, "timezone": "Europe/Berlin"}]
    cfg.update(extra or {})
    path.write_text(tomli_w.dumps(cfg), encoding="utf-8")
    return path


class Serve:
    """One `trackpulse serve` subprocess."""

    def __init__(self, config: Path, log: Path) -> None:
        self.port = free_port()
        self.log = log
        self._out = log.open("w")
        self.proc = subprocess.Popen([sys.executable, "-m", "trackpulse", "--config", str(config), "serve",
                                      "--host", "127.0.0.1", "--port", str(self.port)],
                                     cwd=config.parent, env=dict(os.environ), stdout=self._out, stderr=subprocess.STDOUT)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if httpx.get(f"{self.base}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            assert self.proc.poll() is None, self.log.read_text()
            assert time.monotonic() < deadline, f"serve did not become ready:\n{self.log.read_text()}"
            time.sleep(0.2)

    def terminate(self, timeout: float = 30) -> tuple[int, float]:
        t0 = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(timeout)
        self._out.close()
        return rc, time.monotonic() - t0

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(10)
        self._out.close()

    def stop_quietly(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._out.close()


def child_pids(pid: int) -> set[int]:
    """The processes `pid` started (the alert evaluator of a `serve`), from /proc."""
    out: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        out |= {int(t) for t in (task / "children").read_text().split()}
    return out


def job_runs(store_url: str) -> list[dict[str, Any]]:
    engine = sa.create_engine(store_url)
    try:
        with engine.connect() as c:
            return [dict(r._mapping) for r in c.execute(sa.text(
                "SELECT job, firing, status, holder, attempts, takeovers, error FROM job_run ORDER BY job, firing"))]
    finally:
        engine.dispose()

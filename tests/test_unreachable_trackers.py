"""An unreachable tracker fails fast and says why; a tracker that is only busy is waited for.

A refused connection, a host name that does not resolve and a failed TLS handshake get one
retry after about a second, then one line naming the source, the URL and the kind of failure.
Timeouts, 429 and 503 keep their patient retries, honouring Retry-After.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from conftest import JiraSimFactory
from starlette.applications import Starlette
from trackpulse.connectors.jira import open_connector

from trackpulse.errors import RequestFailed, UnreachableError
from trackpulse.http import FAST_FAIL_WAIT, TrackerHttp
from trackpulse.simulator.runner import serve_in_thread

GENEROUS = 15.0  # seconds: the promise is 5 s; the bound only keeps a loaded machine from flaking


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def run_cli(*args: str, cwd: Path) -> tuple[subprocess.CompletedProcess[str], float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRACKPULSE_", "JIRA_", "TRELLO_"))}
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "trackpulse", *args], cwd=cwd, env=env,
                            capture_output=True, text=True, timeout=120, check=False)
    return result, time.monotonic() - started


def config_with_unreachable_sources(tmp_path: Path, jira_url: str, trello_url: str) -> Path:
    # Default retry settings (max_retries = 8): fast failure must not depend on turning them down.
    path = tmp_path / "tp.toml"
    path.write_text(f"""
[store]
url = "sqlite:///{tmp_path}/tp.db"

[[sources]]
name = "acme"
kind = "jira"
url = "{jira_url}"
token = "jira-token-not-used"
projects = ["ABC"]

[[sources]]
name = "team"
kind = "trello"
api_url = "{trello_url}"
key = "0123456789abcdef0123456789abcdef"
token = "ATTA{'e' * 60}"
boards = ["5f1c0c0c0c0c0c0c0c0c0c0c"]
""", encoding="utf-8")
    return path


@pytest.mark.parametrize("command", [["check"], ["sync"], ["sync", "--full"]])
def test_check_and_sync_against_a_closed_port_answer_within_seconds_naming_source_url_and_cause(
        tmp_path: Path, command: list[str]) -> None:
    jira_url, trello_url = closed_port_url(), closed_port_url()
    config = config_with_unreachable_sources(tmp_path, jira_url, trello_url)
    result, seconds = run_cli("--config", str(config), *command, cwd=tmp_path)
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert seconds < GENEROUS, f"{command} took {seconds:.1f} s against closed ports"
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("source ")]
    jira_line = next(line for line in lines if line.startswith("source acme"))
    trello_line = next(line for line in lines if line.startswith("source team"))
    assert jira_url in jira_line and "cannot connect (connection refused)" in jira_line
    assert trello_url in trello_line and "cannot connect (connection refused)" in trello_line


def recording_http(base_url: str, **options: float) -> tuple[TrackerHttp, list[float]]:
    waits: list[float] = []
    http = TrackerHttp("acme", httpx.Client(base_url=base_url, timeout=options.pop("timeout", 5.0)),
                       max_retries=8, sleep=waits.append)
    return http, waits


def test_a_refused_connection_is_retried_once_after_about_a_second() -> None:
    url = closed_port_url()
    http, waits = recording_http(url)
    with pytest.raises(UnreachableError) as err:
        http.request("GET", "/rest/api/2/serverInfo")
    assert len(waits) == 1 and FAST_FAIL_WAIT <= waits[0] < FAST_FAIL_WAIT + 0.5
    line = err.value.one_line()
    assert line.startswith("source acme at ") and f"{url}/rest/api/2/serverInfo" in line
    assert "cannot connect (connection refused) after 1 retry" in line


def test_a_name_that_does_not_resolve_fails_fast_and_says_so() -> None:
    http, waits = recording_http("http://tracker.invalid")  # .invalid never resolves (RFC 2606)
    with pytest.raises(UnreachableError) as err:
        http.request("GET", "/rest/api/2/serverInfo")
    assert len(waits) == 1
    assert "cannot connect (name does not resolve)" in err.value.one_line()
    assert "http://tracker.invalid/rest/api/2/serverInfo" in err.value.one_line()


def test_a_failed_tls_handshake_fails_fast_and_says_so() -> None:
    with serve_in_thread(Starlette()) as url:  # plain HTTP where https:// is expected
        https = url.replace("http://", "https://")
        http, waits = recording_http(https)
        with pytest.raises(UnreachableError) as err:
            http.request("GET", "/1/members/me")
    assert len(waits) == 1
    assert "cannot connect (TLS failure" in err.value.one_line() and https in err.value.one_line()


@contextmanager
def silent_server() -> Iterator[str]:
    """Accepts connections and never answers: every request times out."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        sock.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(sock.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        stop.set()
        thread.join()
        for c in held:
            c.close()
        sock.close()


def test_timeouts_keep_their_patient_retries() -> None:
    with silent_server() as url:
        http, waits = recording_http(url, timeout=0.05)
        with pytest.raises(RequestFailed) as err:
            http.request("GET", "/rest/api/2/serverInfo")
    assert len(waits) == 8  # every retry max_retries allows, with backoff between
    assert "ReadTimeout" in err.value.one_line() and "after 8 retries" in err.value.one_line()


def test_check_rides_out_a_server_answering_503_with_retry_after(jira_sim: JiraSimFactory) -> None:
    sim = jira_sim("dc", seed=2, issues_per_project=3)
    sim.faults.fail_next("/rest/api/2/serverInfo", 3, status=503, retry_after=1)
    conn = open_connector(sim.source(max_retries=8))
    result = conn.check()
    assert result.ok
    waits = conn.http.stats.retry_after_waits
    assert len(waits) == 3 and all(w >= 1.0 for w in waits)

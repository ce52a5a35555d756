"""The API, dashboard and Prometheus endpoints of `trackpulse serve`: bearer token, 503 without one."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from trackpulse.config import parse_config
from trackpulse.server.app import close_app, create_app
from trackpulse.simulator.runner import serve_in_thread

TOKEN = "s3cret-api-token"
PROTECTED = ["/api/status", "/api/metrics", "/api/webhooks/pending", "/", "/metrics"]


def _serve(tmp_path: Path, token: str | None) -> Iterator[httpx.Client]:
    server: dict[str, Any] = {"token": token} if token else {}
    cfg = parse_config({
        "store": {"url": f"sqlite:///{tmp_path / 'tp.db'}"},
        "server": server,
        "sources": [{"name": "acme", "kind": "jira", "url": "http://127.0.0.1:9", "token": "t",
                     "projects": ["ABC"], "webhook_secret": "w"}],
    })
    app = create_app(cfg)
    try:
        with serve_in_thread(app) as base, httpx.Client(base_url=base, timeout=30) as http:
            yield http
    finally:
        close_app(app)


@pytest.fixture
def http(tmp_path: Path) -> Iterator[httpx.Client]:
    yield from _serve(tmp_path, TOKEN)


@pytest.fixture
def http_without_token(tmp_path: Path) -> Iterator[httpx.Client]:
    yield from _serve(tmp_path, None)


def auth(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize("path", PROTECTED)
def test_protected_endpoints_refuse_requests_without_the_token(http: httpx.Client, path: str) -> None:
    # A browser without a session is sent to the login form; everything else gets 401.
    no_credentials = http.get(path)
    if path == "/":
        assert (no_credentials.status_code, no_credentials.headers["location"]) == (303, "/login")
    else:
        assert no_credentials.status_code == 401
    assert http.get(path, headers=auth("wrong")).status_code == 401


@pytest.mark.parametrize("path", PROTECTED)
def test_protected_endpoints_answer_with_the_token(http: httpx.Client, path: str) -> None:
    r = http.get(path, headers=auth())
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("path", PROTECTED)
def test_without_a_configured_token_protected_endpoints_answer_503(http_without_token: httpx.Client,
                                                                   path: str) -> None:
    r = http_without_token.get(path, headers=auth())
    assert r.status_code == 503
    assert "server.token" in r.text


def test_healthz_is_open(http: httpx.Client) -> None:
    assert http.get("/healthz").json()["ok"] is True


def test_dashboard_turns_a_token_link_into_a_session_and_drops_the_token_from_the_url(http: httpx.Client) -> None:
    r = http.get("/", params={"token": TOKEN, "window": "90d"})
    assert r.status_code == 303 and r.headers["location"] == "/?window=90d"
    assert "tp_session=" in r.headers["set-cookie"] and TOKEN not in r.headers["set-cookie"]
    page = http.get(r.headers["location"])
    assert page.status_code == 200
    assert "text/html" in page.headers["content-type"]
    assert "acme" in http.get("/sync").text
    # The API itself does not take the token from the URL (it would end up in logs).
    assert http.get("/api/status", params={"token": TOKEN}).status_code == 401


def test_status_api_lists_configured_sources(http: httpx.Client) -> None:
    body = http.get("/api/status", headers=auth()).json()
    assert body["schema"] == "trackpulse.status/1"
    assert [s["name"] for s in body["sources"]] == ["acme"]
    assert body["sources"][0]["counts"]["items"] == 0


def test_metrics_api_returns_the_report_and_validates_its_parameters(http: httpx.Client) -> None:
    r = http.get("/api/metrics", headers=auth(), params={"as_of": "2026-03-01T00:00:00Z", "since": "2026-01-01"})
    assert r.status_code == 200
    report = r.json()
    assert report["schema"] == "trackpulse.metrics/1"
    assert report["as_of"] == "2026-03-01T00:00:00Z"
    assert http.get("/api/metrics", headers=auth(), params={"as_of": "yesterday"}).status_code == 400
    assert http.get("/api/metrics", headers=auth(), params={"source": "nope"}).status_code == 404


def test_prometheus_exposition_counts_webhook_outcomes(http: httpx.Client) -> None:
    http.post("/webhooks/jira/acme", content=b"{}")  # unsigned: counted as bad_signature
    text = http.get("/metrics", headers=auth()).text
    assert 'trackpulse_webhook_deliveries_total{outcome="bad_signature",source="acme",tracker="jira"} 1.0' in text
    assert "trackpulse_store_items" in text

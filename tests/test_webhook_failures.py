"""Webhook deliveries that can never apply stop being retried; transient failures are retried (issue 13 §2).

Over real HTTP: signed deliveries go to `serve`'s endpoint, the queue applies them through the
connector, and the outcome is read back from the store, the API and the CLI.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from test_server_webhooks import issue_body, jira_headers, make_config

from trackpulse.config import parse_config
from trackpulse.reports import build_status
from trackpulse.server.app import close_app, create_app
from trackpulse.server.webhook_queue import WebhookQueue, connector_apply
from trackpulse.simulator.runner import serve_in_thread
from trackpulse.store.db import open_store
from trackpulse.store.models import Item, WebhookDelivery

AUTH = {"Authorization": "Bearer api-token"}


def test_permanent_failure_is_failed_after_one_try_listed_and_requeued_on_purpose(tmp_path: Path) -> None:
    cfg = make_config(tmp_path)
    store = open_store(cfg.store.url)
    app = create_app(cfg, store)
    bad = json.dumps({"webhookEvent": "jira:issue_updated", "issue": {}}).encode()  # no issue id: never applies
    with serve_in_thread(app) as base, httpx.Client(base_url=base, timeout=10) as http:
        assert http.post("/webhooks/jira/acme", content=bad, headers=jira_headers(bad, "bad")).status_code == 202
        assert app.state.webhooks.wait_idle(10)
        failed = http.get("/api/webhooks/failed", headers=AUTH).json()["failed"]
        pending = http.get("/api/webhooks/pending", headers=AUTH).json()
    close_app(app)
    assert [(f["delivery_id"], f["attempts"], f["failure"]) for f in failed] == [("bad", 1, "permanent")]
    assert "issue id" in failed[0]["error"]
    assert pending["failed"] == 1 and pending["unprocessed_in_store"] == 0
    counts = next(s for s in build_status(cfg, store)["sources"] if s["name"] == "acme")["counts"]
    assert (counts["webhooks_pending"], counts["webhooks_failed"]) == (0, 1)  # `trackpulse status` says which

    # The next start does not try it again.
    app = create_app(cfg, store)
    assert app.state.webhooks.wait_idle(10)
    close_app(app)
    with store.session() as s:
        row = s.get(WebhookDelivery, ("acme", "bad"))
        assert row is not None and row.attempts == 1 and row.failed_at is not None

    # `trackpulse webhooks retry --failed` puts it back in the queue.
    config = tmp_path / "tp.toml"
    config.write_text(f'[store]\nurl = "{cfg.store.url}"\n', encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "trackpulse", "--config", str(config), "webhooks", "retry",
                           "--failed", "--json"], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"requeued": 1}
    with store.session() as s:
        row = s.get(WebhookDelivery, ("acme", "bad"))
        assert row is not None and row.failed_at is None and row.attempts == 0
    store.dispose()


def test_a_transient_failure_is_retried_and_then_succeeds(tmp_path: Path) -> None:
    base_cfg = make_config(tmp_path)
    cfg = parse_config({**base_cfg.model_dump(mode="json", exclude={"sources", "server"}),
                        "server": {"token": "api-token", "webhook_retry_seconds": 0.2},
                        "sources": [{"name": "acme", "kind": "jira", "url": "http://127.0.0.1:9", "token": "t",
                                     "projects": ["ABC"], "webhook_secret": "jira-webhook-secret"}]})
    store = open_store(cfg.store.url)
    calls: list[int] = []

    def flaky(kind: str) -> Any:
        real = connector_apply(kind)

        def apply(*args: Any) -> Any:
            calls.append(1)
            if len(calls) == 1:  # the store was busy on the first try
                raise sa.exc.OperationalError("UPDATE item", {}, Exception("database is locked"))
            return real(*args)
        return apply

    queue = WebhookQueue(cfg, store, apply_for_kind=flaky, poll_seconds=0.1)
    queue.start()
    body = issue_body()
    try:
        assert queue.accept("acme", "d-1", "jira:issue_created", json.loads(body), jira_headers(body, "d-1"))
        for _ in range(100):
            with store.session() as s:
                row = s.get(WebhookDelivery, ("acme", "d-1"))
                if row is not None and row.processed_at is not None:
                    break
            time.sleep(0.1)
    finally:
        queue.stop()
    with store.session() as s:
        row = s.get(WebhookDelivery, ("acme", "d-1"))
        assert row is not None and row.processed_at is not None and row.failed_at is None
        assert row.attempts == 2
        assert s.execute(sa.select(Item.key)).scalars().all() == ["ABC-1"]
    assert len(calls) == 2
    store.dispose()

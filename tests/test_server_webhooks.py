"""The webhook endpoints of `trackpulse serve`, over real HTTP on 127.0.0.1 (INTERFACE.md).

Each test runs the app with uvicorn in a thread (simulator.runner) against its own SQLite store.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from trackpulse.config import AppConfig, parse_config
from trackpulse.server import webhook_queue
from trackpulse.server.app import close_app, create_app
from trackpulse.simulator.runner import serve_in_thread
from trackpulse.store.db import Store, open_store
from trackpulse.store.models import Item, WebhookDelivery

JIRA_SECRET = "jira-webhook-secret"
TRELLO_SECRET = "trello-app-secret"


def make_config(tmp_path: Path, **server: Any) -> AppConfig:
    return parse_config({
        "store": {"url": f"sqlite:///{tmp_path / 'tp.db'}"},
        "server": {"token": "api-token", **server},
        "sources": [
            {"name": "acme", "kind": "jira", "url": "http://127.0.0.1:9", "email": "a@example.com", "token": "t",
             "projects": ["ABC"], "webhook_secret": JIRA_SECRET},
            {"name": "nosecret", "kind": "jira", "url": "http://127.0.0.1:9", "token": "t", "projects": ["ABC"]},
            {"name": "team", "kind": "trello", "key": "k", "token": "t", "app_secret": TRELLO_SECRET,
             "boards": ["b1"]},
            {"name": "registered", "kind": "trello", "key": "k", "token": "t", "app_secret": TRELLO_SECRET,
             "boards": ["b1"], "callback_url": "https://tp.example.com/hooks/trello/registered"},
        ],
    })


class Server:
    def __init__(self, app: Any, base: str, store: Store) -> None:
        self.app, self.base, self.store = app, base, store
        self.http = httpx.Client(base_url=base, timeout=10)

    def deliveries(self) -> list[WebhookDelivery]:
        with self.store.session() as s:
            return list(s.execute(sa.select(WebhookDelivery)).scalars())

    def items(self) -> list[Item]:
        with self.store.session() as s:
            return list(s.execute(sa.select(Item)).scalars())

    def wait_idle(self) -> None:
        assert self.app.state.webhooks.wait_idle(10), "webhook queue did not drain"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    cfg = make_config(tmp_path)
    store = open_store(cfg.store.url)
    app = create_app(cfg, store)
    with serve_in_thread(app) as base:
        srv = Server(app, base, store)
        yield srv
        srv.http.close()
    close_app(app)


def jira_headers(body: bytes, identifier: str | None = "delivery-1", secret: str = JIRA_SECRET) -> dict[str, str]:
    headers = {"Content-Type": "application/json",
               "X-Hub-Signature": "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()}
    if identifier:
        headers["X-Atlassian-Webhook-Identifier"] = identifier
    return headers


def trello_signature(body: bytes, callback_url: str, secret: str = TRELLO_SECRET) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body + callback_url.encode(), hashlib.sha1).digest()).decode()


def issue_body(issue_id: str = "10001", key: str = "ABC-1") -> bytes:
    return json.dumps({
        "timestamp": 1767225600000, "webhookEvent": "jira:issue_created",
        "issue": {"id": issue_id, "key": key, "fields": {
            "summary": "Login fails", "project": {"id": "10000", "key": "ABC"},
            "issuetype": {"id": "10004", "name": "Bug"}, "priority": {"name": "High"},
            "status": {"id": "1", "name": "To Do", "statusCategory": {"key": "new"}},
            "created": "2026-01-01T00:00:00.000+0000", "updated": "2026-01-01T00:00:00.000+0000",
        }},
    }).encode()


# ------------------------------------------------------------------ Jira: rejections


def test_jira_delivery_without_signature_is_401_and_stores_nothing(server: Server) -> None:
    r = server.http.post("/webhooks/jira/acme", content=issue_body(), headers={"Content-Type": "application/json"})
    assert r.status_code == 401
    assert server.deliveries() == [] and server.items() == []


def test_jira_delivery_with_wrong_signature_is_401_and_stores_nothing(server: Server) -> None:
    body = issue_body()
    r = server.http.post("/webhooks/jira/acme", content=body, headers=jira_headers(body, secret="not-the-secret"))
    assert r.status_code == 401
    # The signature covers the raw bytes: the right secret over other bytes fails too.
    r = server.http.post("/webhooks/jira/acme", content=body + b" ", headers=jira_headers(body))
    assert r.status_code == 401
    assert server.deliveries() == [] and server.items() == []


def test_jira_source_without_webhook_secret_rejects_every_delivery(server: Server) -> None:
    body = issue_body()
    r = server.http.post("/webhooks/jira/nosecret", content=body, headers=jira_headers(body))
    assert r.status_code == 401
    assert "webhook_secret" in r.json()["detail"]
    assert server.deliveries() == []


def test_unknown_source_is_404(server: Server) -> None:
    body = issue_body()
    assert server.http.post("/webhooks/jira/nope", content=body, headers=jira_headers(body)).status_code == 404
    # A Trello source is not a Jira source, and the other way round.
    assert server.http.post("/webhooks/jira/team", content=body, headers=jira_headers(body)).status_code == 404
    assert server.http.post("/webhooks/trello/acme", content=b"{}").status_code == 404
    assert server.http.head("/webhooks/trello/nope").status_code == 404
    assert server.deliveries() == []


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b'{"issue": {}}', b'{"webhookEvent": 3}'])
def test_signed_body_that_is_not_a_jira_webhook_is_400(server: Server, body: bytes) -> None:
    r = server.http.post("/webhooks/jira/acme", content=body, headers=jira_headers(body))
    assert r.status_code == 400
    assert server.deliveries() == []


# ------------------------------------------------------------------ Jira: accepted deliveries


def test_valid_signed_jira_delivery_is_stored_then_applied(server: Server) -> None:
    body = issue_body()
    r = server.http.post("/webhooks/jira/acme", content=body, headers=jira_headers(body, "d-1"))
    assert r.status_code == 202
    assert r.json() == {"status": "accepted", "delivery": "d-1"}
    server.wait_idle()
    [delivery] = server.deliveries()
    assert (delivery.source, delivery.delivery_id, delivery.event) == ("acme", "d-1", "jira:issue_created")
    assert delivery.processed_at is not None and delivery.error is None
    [item] = server.items()
    assert (item.source, item.key, item.is_defect, item.status_category) == ("acme", "ABC-1", True, "todo")


def test_duplicate_delivery_is_answered_200_and_processed_once(server: Server,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real = webhook_queue.connector_apply
    real_kind = webhook_queue.connector_kind

    def counting(kind: str) -> Any:
        apply = real(kind)

        def wrapped(store: Store, src: Any, body: dict[str, Any], headers: Any) -> str:
            calls.append(headers["X-Atlassian-Webhook-Identifier"])
            return apply(store, src, body, headers)
        return wrapped

    def counting_kind(kind: str) -> Any:  # the batch path, taken at intake when the worker is idle
        entry = real_kind(kind)
        batch = entry.apply_webhooks

        def wrapped(store: Store, src: Any, deliveries: Any, **kw: Any) -> Any:
            calls.extend(h["X-Atlassian-Webhook-Identifier"] for _, h in deliveries)
            return batch(store, src, deliveries, **kw)
        return dataclasses.replace(entry, apply_webhooks=wrapped if batch else None)

    monkeypatch.setattr(webhook_queue, "connector_apply", counting)
    monkeypatch.setattr(webhook_queue, "connector_kind", counting_kind)
    body = issue_body()
    first = server.http.post("/webhooks/jira/acme", content=body, headers=jira_headers(body, "same-id"))
    server.wait_idle()
    retry = server.http.post("/webhooks/jira/acme", content=body, headers=jira_headers(body, "same-id"))
    server.wait_idle()
    assert (first.status_code, retry.status_code) == (202, 200)
    assert retry.json()["status"] == "duplicate"
    assert calls == ["same-id"]
    assert len(server.deliveries()) == 1


def test_delivery_without_identifier_is_deduplicated_by_its_body(server: Server) -> None:
    body = issue_body()
    codes = [server.http.post("/webhooks/jira/acme", content=body, headers=jira_headers(body, None)).status_code
             for _ in range(2)]
    assert codes == [202, 200]
    [delivery] = server.deliveries()
    assert delivery.delivery_id == "body-sha256:" + hashlib.sha256(body).hexdigest()


def test_failing_delivery_records_its_error_and_the_worker_keeps_going(server: Server) -> None:
    # Signed and shaped like a webhook, but the connector cannot apply it (no issue id).
    bad = json.dumps({"webhookEvent": "jira:issue_updated", "issue": {}}).encode()
    good = issue_body()
    assert server.http.post("/webhooks/jira/acme", content=bad, headers=jira_headers(bad, "bad")).status_code == 202
    assert server.http.post("/webhooks/jira/acme", content=good, headers=jira_headers(good, "ok")).status_code == 202
    server.wait_idle()
    by_id = {d.delivery_id: d for d in server.deliveries()}
    assert by_id["bad"].processed_at is None and "issue id" in (by_id["bad"].error or "")
    assert by_id["ok"].processed_at is not None
    assert [i.key for i in server.items()] == ["ABC-1"]


def test_stored_unprocessed_deliveries_are_applied_when_the_server_starts(tmp_path: Path) -> None:
    cfg = make_config(tmp_path)
    store = open_store(cfg.store.url)
    with store.transaction() as s:  # as if the last server stopped between storing and applying
        s.add(WebhookDelivery(source="acme", delivery_id="left-over", received_at=datetime.now(UTC),
                              event="jira:issue_created", body=json.loads(issue_body())))
    app = create_app(cfg, store)
    try:
        assert app.state.webhooks.wait_idle(10)
        with store.session() as s:
            assert s.get(WebhookDelivery, ("acme", "left-over")).processed_at is not None
            assert s.execute(sa.select(Item.key)).scalars().all() == ["ABC-1"]
    finally:
        close_app(app)


def test_deliveries_from_the_jira_simulator_are_applied(tmp_path: Path) -> None:
    """End to end with the simulator's own signed deliveries (same bytes, headers and ids as Jira)."""
    from trackpulse.simulator.jira_world import PROFILES, JiraWorld
    from trackpulse.simulator.webhooks import JiraWebhookHub, jira_deliver

    world = JiraWorld.generate(seed=3, projects=1, issues_per_project=5, closed_sprints=1)
    cfg = make_config(tmp_path)
    app = create_app(cfg)
    try:
        with serve_in_thread(app) as base:
            world.register_webhook("trackpulse", f"{base}/webhooks/jira/acme",
                                   ["jira:issue_created", "jira:issue_updated", "comment_created"],
                                   secret=JIRA_SECRET)
            issue = world.create_issue("ABC", issue_type="Bug", summary="from the simulator")
            world.add_comment(issue.id, "looking")
            hub = JiraWebhookHub(world, PROFILES["cloud"], base_url="http://jira.invalid")
            statuses = hub.flush()
            assert statuses and all(s == 202 for s in statuses)
            assert hub.retry_failed() == []
            # Jira retries with the same identifier: recognised, not applied twice.
            first = hub.delivered[0]
            assert jira_deliver(first.url, first) == 200
            assert app.state.webhooks.wait_idle(10)
        with app.state.tp.store.session() as s:
            keys = s.execute(sa.select(Item.key)).scalars().all()
            errors = s.execute(sa.select(WebhookDelivery.error).where(WebhookDelivery.error.is_not(None))).all()
        assert issue.key in keys
        assert errors == []
    finally:
        close_app(app)


# ------------------------------------------------------------------ Trello


def _trello_ready() -> bool:
    try:
        from trackpulse.connectors.trello import verify_trello_signature  # noqa: F401
    except ImportError:
        return False
    return True


needs_trello = pytest.mark.skipif(not _trello_ready(), reason="Trello connector not installed yet")


def trello_body(action_id: str = "a1", action_type: str = "createCard") -> bytes:
    return json.dumps({
        "action": {"id": action_id, "type": action_type, "date": "2026-01-02T10:00:00.000Z",
                   "idMemberCreator": "m1", "data": {"board": {"id": "b1"}, "card": {"id": "c1"},
                                                      "list": {"id": "l1", "name": "To Do"}}},
        "model": {"id": "b1", "name": "Board"},
    }).encode()


def test_trello_head_answers_200_for_a_known_source(server: Server) -> None:
    assert server.http.head("/webhooks/trello/team").status_code == 200


@needs_trello
def test_signed_trello_delivery_is_accepted_with_the_request_url_as_callback(server: Server) -> None:
    body = trello_body()
    sig = trello_signature(body, f"{server.base}/webhooks/trello/team")
    r = server.http.post("/webhooks/trello/team", content=body, headers={"X-Trello-Webhook": sig})
    assert r.status_code == 202, r.text
    again = server.http.post("/webhooks/trello/team", content=body, headers={"X-Trello-Webhook": sig})
    assert again.status_code == 200 and again.json()["status"] == "duplicate"
    server.wait_idle()
    [delivery] = server.deliveries()
    assert (delivery.source, delivery.delivery_id, delivery.event) == ("team", "a1", "createCard")


@needs_trello
def test_trello_signature_uses_the_registered_callback_url(server: Server) -> None:
    body = trello_body("a2")
    wrong = trello_signature(body, f"{server.base}/webhooks/trello/registered")
    right = trello_signature(body, "https://tp.example.com/hooks/trello/registered")
    assert server.http.post("/webhooks/trello/registered", content=body,
                            headers={"X-Trello-Webhook": wrong}).status_code == 401
    assert server.http.post("/webhooks/trello/registered", content=body,
                            headers={"X-Trello-Webhook": right}).status_code == 202


@needs_trello
def test_trello_delivery_with_missing_or_wrong_signature_is_401(server: Server) -> None:
    body = trello_body()
    assert server.http.post("/webhooks/trello/team", content=body).status_code == 401
    bad = trello_signature(body, f"{server.base}/webhooks/trello/team", secret="other")
    assert server.http.post("/webhooks/trello/team", content=body, headers={"X-Trello-Webhook": bad}).status_code == 401
    assert server.deliveries() == []


@needs_trello
@pytest.mark.parametrize("body", [b"nope", b'{"model": {}}', b'{"action": {"type": "createCard"}}',
                                  b'{"action": {"id": "x"}}'])
def test_signed_body_that_is_not_a_trello_webhook_is_400(server: Server, body: bytes) -> None:
    sig = trello_signature(body, f"{server.base}/webhooks/trello/team")
    assert server.http.post("/webhooks/trello/team", content=body,
                            headers={"X-Trello-Webhook": sig}).status_code == 400
    assert server.deliveries() == []


def test_serve_evaluates_the_alert_rules_after_a_webhook_batch_in_a_process_of_their_own(tmp_path: Path) -> None:
    """`serve` wires the webhook queue to the alert evaluator (issue 10 §2): a signed delivery of
    a long-overdue Highest bug opens an SLA breach episode within seconds, and the evaluated
    counter of /metrics covers the delivery. Evaluation runs in processes of its own, beside
    intake: each delivery is evaluated for its own item only (`evaluate_and_dispatch(scope=...)`)
    by one, while the other runs the whole evaluations. `/api/webhooks/evaluated` says when each
    evaluation ended and how many deliveries were evaluated by then."""
    import re

    from trackpulse.server.lifecycle import start_schedule
    from trackpulse.store.models import Alert

    base = make_config(tmp_path)
    cfg = parse_config({
        **base.model_dump(mode="json", exclude={"sources", "server"}),
        "server": {"token": "api-token"},
        "schedule": {"sync_every_minutes": 600},
        "sources": [{"name": "acme", "kind": "jira", "url": "http://127.0.0.1:9", "token": "t",
                     "projects": ["ABC"], "webhook_secret": JIRA_SECRET}],
        "sla": {"policies": [{"name": "P1", "priorities": ["Highest"], "response_hours": 1}]},
        "channels": [{"name": "hook", "kind": "webhook", "url": "http://127.0.0.1:9/hook"}],
        "alerts": {"rules": [{"name": "breach", "when": "sla_breached", "channels": ["hook"]}]},
    })
    app = create_app(cfg)
    runner = start_schedule(app.state.tp)
    raws = []
    for issue_id, key in (("10001", "ABC-1"), ("10002", "ABC-2")):
        body = json.loads(issue_body(issue_id, key))
        body["issue"]["fields"]["priority"] = {"name": "Highest"}
        raws.append(json.dumps(body).encode())
    started = time.time()
    try:
        with serve_in_thread(app) as url, httpx.Client(base_url=url, timeout=10) as http:
            for n, raw in enumerate(raws, start=1):
                assert http.post("/webhooks/jira/acme", content=raw,
                                 headers=jira_headers(raw, f"late-{n}")).status_code == 202
                deadline = time.monotonic() + 30
                evaluated = 0.0
                while time.monotonic() < deadline and evaluated < n:
                    text = http.get("/metrics", headers={"Authorization": "Bearer api-token"}).text
                    m = re.search(r"^trackpulse_webhook_evaluated_total ([0-9.e+]+)$", text, re.MULTILINE)
                    evaluated = float(m.group(1)) if m else 0.0
                    time.sleep(0.1)
                assert evaluated >= n
            progress = http.get("/api/webhooks/evaluated", headers={"Authorization": "Bearer api-token"}).json()
            assert progress["evaluated"] == 2
            times, counts = zip(*progress["marks"], strict=True)
            assert started <= times[0] and list(times) == sorted(times) and times[-1] <= time.time()
            assert list(counts) == sorted(counts) and counts[-1] == 2
            assert http.get("/api/webhooks/evaluated").status_code == 401  # the API's token, as everywhere
            # The per-project gauges come from the evaluator's whole runs (after each sync, and
            # at least every minute): ask for one as a sync does, and both breaches show.
            app.state.tp.evaluator.notify()
            gauge = 'trackpulse_project_sla_breaches_open{project="ABC",source="acme"} 2.0'
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and gauge not in text:
                time.sleep(0.2)
                text = http.get("/metrics", headers={"Authorization": "Bearer api-token"}).text
            assert gauge in text
            assert 'trackpulse_project_defects_open{project="ABC",source="acme"} 2.0' in text  # two open bugs
    finally:
        runner.stop(grace=2)
        close_app(app)
    store = open_store(cfg.store.url)
    with store.session() as s:
        alerts = s.execute(sa.select(Alert.rule, Alert.subject)).all()
    store.dispose()
    assert sorted(alerts) == [("breach", "acme/10001/P1/response"),  # the delivered issues, by their ids
                              ("breach", "acme/10002/P1/response")]

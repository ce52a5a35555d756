"""The dispatcher over real HTTP: a test channel declaring DingTalk's limits (20 messages a
minute, 3 s apart, 20,000 bytes) posts to a local receiver; a simulated clock runs the minutes."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import pairwise
from typing import Any, ClassVar

import httpx
import pytest
import sqlalchemy as sa

from trackpulse.alerts.ledger import record
from trackpulse.alerts.rules import Condition
from trackpulse.channels.base import AlertView, Message
from trackpulse.config import AppConfig, ChannelConfig
from trackpulse.delivery.dispatcher import Dispatcher
from trackpulse.outcomes import Failed, Outcome, RetryAfter, Sent
from trackpulse.store.db import Store
from trackpulse.store.models import Delivery

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


@dataclass
class SimClock:
    now: datetime = T0

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Receiver:
    url: str
    clock: SimClock
    got: list[tuple[datetime, dict[str, Any]]] = field(default_factory=list)
    status: int = 200


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rec = Receiver("", SimClock())

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            rec.got.append((rec.clock.now, body))
            self.send_response(rec.status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    rec.url = f"http://127.0.0.1:{server.server_address[1]}/robot/send"
    yield rec
    server.shutdown()
    server.server_close()


class DingTalkLike:
    """DingTalk's declared limits; each alert line is padded so 200 alerts need ~30 messages."""

    kind: ClassVar[str] = "dingtalk"
    max_message_bytes: ClassVar[int] = 20_000
    min_interval: ClassVar[float] = 3.0
    per_minute: ClassVar[int | None] = 20

    def __init__(self, url: str, client: httpx.Client) -> None:
        self.url, self.client = url, client

    def render(self, alerts: Sequence[AlertView], lang: str) -> Message:
        text = "\n".join(f"{a.id} {a.rule} {a.project} {a.value}".ljust(2500, ".") for a in alerts)
        body = {"msgtype": "markdown", "markdown": {"title": "alerts", "text": text},
                "ids": [a.id for a in alerts]}
        return Message(body, len(json.dumps(body).encode()), tuple(a.id for a in alerts), text)

    def render_markdown(self, title: str, markdown: str, lang: str) -> Message:
        raise NotImplementedError

    def send(self, message: Message, *, delivery_id: str) -> Outcome:
        resp = self.client.post(self.url, json=message.body)
        if resp.status_code == 200:
            return Sent()
        if resp.status_code == 429 or resp.status_code >= 500:
            return RetryAfter(30, f"HTTP {resp.status_code}")
        return Failed(f"HTTP {resp.status_code}", resp.status_code)

    def close(self) -> None:
        pass


def setup(store: Store, receiver: Receiver, n: int) -> tuple[AppConfig, Dispatcher, httpx.Client]:
    cfg = AppConfig.model_validate({
        "channels": [{"name": "ding", "kind": "dingtalk", "url": receiver.url}],
        "alerts": {"rules": [{"name": "defects", "when": "defects_open_above", "channels": ["ding"]}]}})
    conds = [Condition(rule="defects", when="defects_open_above", subject=f"jira/P{i}", source="jira",
                       project=f"P{i}", item=None, item_id=None, policy=None, clock=None, value=5.0,
                       target=3.0, at=T0) for i in range(n)]
    with store.session() as s:
        record(s, cfg, cfg.alerts.rules, conds, T0)
        s.commit()
    client = httpx.Client()

    def factory(c: ChannelConfig, http: httpx.Client) -> DingTalkLike:
        return DingTalkLike(c.url.get_secret_value(), http)  # type: ignore[union-attr]

    return cfg, Dispatcher(cfg, store, client, clock=receiver.clock, channel_factory=factory), client


def statuses(store: Store) -> dict[str, int]:
    with store.session() as s:
        rows = s.execute(sa.select(Delivery.status, sa.func.count()).group_by(Delivery.status)).all()
    return {st: n for st, n in rows}


def test_200_alerts_arrive_once_each_paced_under_dingtalk_limits(store: Store, receiver: Receiver) -> None:
    _, dispatcher, client = setup(store, receiver, 200)
    with client:
        for _ in range(500):
            res = dispatcher.run_once()
            if statuses(store).get("pending", 0) == 0:
                break
            receiver.clock.now = max(receiver.clock.now + timedelta(seconds=1), res.next_due or T0)
    ids = [i for _, body in receiver.got for i in body["ids"]]
    assert len(ids) == 200 and len(set(ids)) == 200  # each alert exactly once
    times = [at for at, _ in receiver.got]
    assert len(times) > 20  # the test really needs more than one minute
    assert all(b - a >= timedelta(seconds=3) for a, b in pairwise(times))
    assert all(sum(1 for t in times if start <= t < start + timedelta(seconds=60)) <= 20 for start in times)
    assert all(len(json.dumps(body).encode()) <= 20_000 for _, body in receiver.got)
    assert statuses(store) == {"sent": 200}


def test_a_failed_delivery_is_not_retried(store: Store, receiver: Receiver) -> None:
    receiver.status = 403
    _, dispatcher, client = setup(store, receiver, 1)
    with client:
        assert dispatcher.run_once().failed == 1
        receiver.clock.now += timedelta(hours=1)
        assert dispatcher.run_once().messages == 0
    assert len(receiver.got) == 1 and statuses(store) == {"failed": 1}
    with store.session() as s:
        assert s.execute(sa.select(Delivery.attempts)).scalar_one() == 1


def test_a_throttled_delivery_is_retried_after_its_wait(store: Store, receiver: Receiver) -> None:
    receiver.status = 429
    _, dispatcher, client = setup(store, receiver, 1)
    with client:
        assert dispatcher.run_once().retry == 1
        receiver.clock.now += timedelta(seconds=10)
        assert dispatcher.run_once().messages == 0  # not before its 30 s
        receiver.status = 200
        receiver.clock.now += timedelta(seconds=25)
        assert dispatcher.run_once().sent == 1
    assert len(receiver.got) == 2 and statuses(store) == {"sent": 1}


def test_a_claimed_row_is_not_claimed_again_until_its_lease_ends(store: Store, receiver: Receiver) -> None:
    from trackpulse.delivery import outbox

    setup(store, receiver, 3)[2].close()
    a = outbox.claim(store, worker="a", now=T0, lease_seconds=60)
    assert len(a) == 3
    assert outbox.claim(store, worker="b", now=T0 + timedelta(seconds=30), lease_seconds=60) == []
    b = outbox.claim(store, worker="b", now=T0 + timedelta(seconds=61), lease_seconds=60)
    assert sorted(r.id for r in b) == sorted(r.id for r in a)  # a died: its lease expired

"""A digest firing is sent once: fired twice for one scheduled time (a restart, the daylight-saving
repeat of a local time, two instances racing on one store) it reaches the mail server once; it
goes out through the outbox, so a refusal for now is retried later (still once) and a refusal for
good is marked failed. On SQLite and on PostgreSQL; instances are threads with engines of their
own, or separate processes."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from digest_worlds import AS_OF, app_config, mail_channel, two_week_world
from sqlmodel import col

from trackpulse.config import AppConfig
from trackpulse.delivery.dispatcher import Dispatcher
from trackpulse.digests import build_from_input, send_digest
from trackpulse.digests.build import DigestData
from trackpulse.outcomes import Failed, RetryAfter, Sent
from trackpulse.simulator.smtp import SmtpReceiver
from trackpulse.store.db import Store, open_store
from trackpulse.store.models import Delivery, DigestFiring


@pytest.fixture
def smtp() -> Iterator[SmtpReceiver]:
    with SmtpReceiver() as receiver:
        yield receiver


def _setup(store: Store, smtp: SmtpReceiver, timezone: str = "Asia/Shanghai") -> tuple[AppConfig, DigestData]:
    cfg = app_config(str(store.engine.url.render_as_string(hide_password=False)),
                     channels=[mail_channel(smtp.port)], timezone=timezone)
    return cfg, build_from_input(two_week_world(), cfg.digest("weekly"), as_of=AS_OF)


def _rows(store: Store) -> tuple[list[Delivery], list[DigestFiring]]:
    with store.session() as s:
        return (list(s.execute(sa.select(Delivery)).scalars()), list(s.execute(sa.select(DigestFiring)).scalars()))


def test_a_firing_sent_before_a_restart_is_not_sent_again(store: Store, smtp: SmtpReceiver) -> None:
    cfg, data = _setup(store, smtp)
    first = send_digest(cfg, store, "weekly", scheduled_for=AS_OF, data=data)
    assert first.sent and isinstance(first.outcomes["pmo-mail"], Sent)
    restarted = open_store(str(store.engine.url.render_as_string(hide_password=False)))
    try:
        again = send_digest(cfg, restarted, "weekly", scheduled_for=AS_OF, data=data)
    finally:
        restarted.dispose()
    assert not again.sent and again.scheduled_local == "2026-01-19T09:00"
    assert len(smtp.received) == 1
    deliveries, firings = _rows(store)
    assert [(d.target, d.status, d.attempts) for d in deliveries] == [("pmo-mail", "sent", 1)]
    assert [(f.digest, f.scheduled_local) for f in firings] == [("weekly", "2026-01-19T09:00")]
    assert firings[0].finished_at is not None and firings[0].outcome == "pmo-mail=sent"


def test_the_daylight_saving_repeat_of_a_local_time_is_one_firing(store: Store, smtp: SmtpReceiver) -> None:
    cfg, data = _setup(store, smtp, timezone="Europe/Berlin")
    # 2026-10-25 02:30 happens twice in Berlin: 00:30 UTC (CEST) and 01:30 UTC (CET).
    first = send_digest(cfg, store, "weekly", scheduled_for=datetime(2026, 10, 25, 0, 30, tzinfo=UTC), data=data)
    repeat = send_digest(cfg, store, "weekly", scheduled_for=datetime(2026, 10, 25, 1, 30, tzinfo=UTC), data=data)
    assert first.sent and not repeat.sent
    assert first.scheduled_local == repeat.scheduled_local == "2026-10-25T02:30"
    assert len(smtp.received) == 1
    next_day = send_digest(cfg, store, "weekly", scheduled_for=datetime(2026, 10, 26, 1, 30, tzinfo=UTC), data=data)
    assert next_day.sent and len(smtp.received) == 2


@pytest.mark.parametrize("callers", [3])
def test_instances_racing_on_one_firing_send_it_once(store: Store, smtp: SmtpReceiver, callers: int) -> None:
    cfg, data = _setup(store, smtp)
    url = str(store.engine.url.render_as_string(hide_password=False))
    stores = [open_store(url) for _ in range(callers)]  # one engine per "instance"
    gate = threading.Barrier(callers)
    results: list[object] = [None] * callers
    errors: list[BaseException] = []

    def fire(i: int) -> None:
        try:
            gate.wait(timeout=30)
            results[i] = send_digest(cfg, stores[i], "weekly", scheduled_for=AS_OF, data=data)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=fire, args=(i,)) for i in range(callers)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=120)
    for s in stores:
        s.dispose()
    assert not errors, errors
    assert sum(1 for r in results if r.sent) == 1  # type: ignore[union-attr]
    assert len(smtp.received) == 1
    deliveries, firings = _rows(store)
    assert len(deliveries) == 1 and deliveries[0].status == "sent" and len(firings) == 1


def test_a_refusal_for_now_stays_in_the_outbox_and_a_later_pass_sends_it_once(store: Store,
                                                                              smtp: SmtpReceiver) -> None:
    cfg, data = _setup(store, smtp)
    smtp.refuse("451 4.3.0 try again later")
    result = send_digest(cfg, store, "weekly", scheduled_for=AS_OF, data=data)
    outcome = result.outcomes["pmo-mail"]
    assert result.sent and isinstance(outcome, RetryAfter) and "451" in outcome.answer
    smtp.refuse(None)
    later = datetime.now(UTC) + timedelta(minutes=2)
    with httpx.Client() as client:
        Dispatcher(cfg, store, client, clock=lambda: later).run_once()
        Dispatcher(cfg, store, client, clock=lambda: later + timedelta(minutes=5)).run_once()
    assert not send_digest(cfg, store, "weekly", scheduled_for=AS_OF, data=data).sent
    assert len(smtp.received) == 1
    deliveries, _ = _rows(store)
    assert [(d.status, d.attempts) for d in deliveries] == [("sent", 2)]


def test_a_refusal_for_good_is_marked_failed_with_the_servers_answer(store: Store, smtp: SmtpReceiver) -> None:
    cfg, data = _setup(store, smtp)
    smtp.refuse("550 5.7.1 relay denied")
    result = send_digest(cfg, store, "weekly", scheduled_for=AS_OF, data=data)
    assert isinstance(result.outcomes["pmo-mail"], Failed) and set(result.failed) == {"pmo-mail"}
    deliveries, firings = _rows(store)
    assert deliveries[0].status == "failed" and "550 5.7.1 relay denied" in (deliveries[0].answer or "")
    assert deliveries[0].alert_id == "digest:weekly:2026-01-19T09:00" and deliveries[0].target_kind == "message"
    assert "failed" in (firings[0].outcome or "")
    with httpx.Client() as client:  # never retried
        Dispatcher(cfg, store, client, clock=lambda: datetime.now(UTC) + timedelta(hours=2)).run_once()
    assert smtp.received == []


def test_a_firing_claimed_before_a_crash_is_sent_by_the_next_dispatcher_pass(store: Store,
                                                                           smtp: SmtpReceiver) -> None:
    cfg, data = _setup(store, smtp)
    # The process dies after the claim and its outbox rows committed, before any dispatcher ran.
    crashed = send_digest(cfg, store, "weekly", scheduled_for=AS_OF, data=data, deliver=lambda c, s: None)
    assert crashed.sent and isinstance(crashed.outcomes["pmo-mail"], RetryAfter) and smtp.received == []
    assert not send_digest(cfg, store, "weekly", scheduled_for=AS_OF, data=data).sent  # the restart's firing
    assert len(smtp.received) == 1  # ... whose dispatcher pass delivered the waiting row
    with store.session() as s:
        assert s.execute(sa.select(sa.func.count()).select_from(Delivery)
                         .where(col(Delivery.status) == "sent")).scalar_one() == 1


RACER = """
import sys, time
from pathlib import Path
sys.path.insert(0, {tests!r})
from digest_worlds import AS_OF, app_config, mail_channel, two_week_world
from trackpulse.digests import build_from_input, send_digest
from trackpulse.store.db import open_store

cfg = app_config({url!r}, channels=[mail_channel({port})])
data = build_from_input(two_week_world(), cfg.digest("weekly"), as_of=AS_OF)
store = open_store({url!r})
gate = Path({gate!r})
Path(sys.argv[1]).touch()  # ready
while not gate.exists():  # both processes are ready: fire together
    time.sleep(0.005)
result = send_digest(cfg, store, "weekly", scheduled_for=AS_OF, data=data)
print("sent" if result.sent else "skipped")
"""


def test_two_processes_firing_the_same_digest_send_it_once(store: Store, smtp: SmtpReceiver,
                                                         tmp_path: Path) -> None:
    url = str(store.engine.url.render_as_string(hide_password=False))
    gate = tmp_path / "go"
    script = RACER.format(tests=str(Path(__file__).parent), url=url, port=smtp.port, gate=str(gate))
    ready = [tmp_path / f"ready-{i}" for i in range(2)]
    procs = [subprocess.Popen([sys.executable, "-c", script, str(r)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for r in ready]
    deadline = time.monotonic() + 120
    while not all(r.exists() for r in ready) and time.monotonic() < deadline and \
            all(p.poll() is None for p in procs):
        time.sleep(0.05)
    gate.touch()
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err[-2000:] for _, err in outs]
    assert sorted(out.strip() for out, _ in outs) == ["sent", "skipped"]
    assert len(smtp.received) == 1
    deliveries, firings = _rows(store)
    assert [d.status for d in deliveries] == ["sent"] and len(firings) == 1


def test_alerts_history_shows_each_digest_sending_and_its_failures(store: Store, smtp: SmtpReceiver) -> None:
    from trackpulse.delivery.history import history_rows

    cfg, data = _setup(store, smtp)
    assert send_digest(cfg, store, "weekly", scheduled_for=AS_OF, data=data).sent
    smtp.refuse("550 5.7.1 relaying denied")
    later = AS_OF + timedelta(days=7)
    send_digest(cfg, store, "weekly", scheduled_for=later, data=data)
    digests = [e for e in history_rows(store, 10) if e["when"] == "digest"]
    assert [[(d["target"], d["status"]) for d in e["deliveries"]] for e in digests] == \
        [[("pmo-mail", "failed")], [("pmo-mail", "sent")]]  # newest first
    assert "550" in (digests[0]["deliveries"][0]["answer"] or "")
    assert digests[0]["rule"] == "weekly"

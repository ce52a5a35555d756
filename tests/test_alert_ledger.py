"""The alert ledger on SQLite and PostgreSQL: episodes open once, figure rules re-arm, an SLA
breach never does, and each new episode's deliveries are written with it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from trackpulse.alerts.ledger import record
from trackpulse.alerts.rules import Condition
from trackpulse.config import AppConfig
from trackpulse.store.db import Store
from trackpulse.store.models import Alert, Delivery

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def config() -> AppConfig:
    return AppConfig.model_validate({
        "channels": [{"name": "ops", "kind": "webhook", "url": "http://127.0.0.1:9/hook"},
                     {"name": "team", "kind": "slack", "url": "http://127.0.0.1:9/slack"}],
        "alerts": {"rules": [
            {"name": "breach", "when": "sla_breached", "channels": ["ops"], "post_back": ["comment", "label"]},
            {"name": "defects", "when": "defects_open_above", "channels": ["ops", "team"], "threshold": 3},
        ]}})


def cond(rule: str, when: str, subject: str, **kw: Any) -> Condition:
    base: dict[str, Any] = {"source": "jira", "project": "OPS", "item": None, "item_id": None, "policy": None,
                            "clock": None, "value": 5.0, "target": 3.0, "at": T0}
    base.update(kw)
    return Condition(rule=rule, when=when, subject=subject, **base)


BREACH = cond("breach", "sla_breached", "jira/10001/p1/resolution", item="OPS-1", item_id="10001",
              policy="p1", clock="resolution")
DEFECTS = cond("defects", "defects_open_above", "jira/OPS")


def evaluate(store: Store, cfg: AppConfig, conds: list[Condition], now: datetime) -> int:
    with store.session() as s:
        res = record(s, cfg, cfg.alerts.rules, conds, now)
        s.commit()
    return len(res.opened)


def counts(store: Store) -> dict[str, Any]:
    with store.session() as s:
        alerts = s.execute(sa.select(Alert.rule, Alert.episode, Alert.closed_at)).all()
        deliveries = s.execute(sa.select(Delivery.target_kind, Delivery.target)).all()
    return {"alerts": sorted((r, e, c is not None) for r, e, c in alerts),
            "deliveries": sorted((k, t) for k, t in deliveries)}


def test_same_conditions_twice_write_nothing_new(store: Store) -> None:
    cfg = config()
    assert evaluate(store, cfg, [BREACH, DEFECTS], T0) == 2
    first = counts(store)
    assert first["deliveries"] == sorted([("channel", "ops"), ("comment", "jira"), ("label", "jira"),
                                          ("channel", "ops"), ("channel", "team")])
    assert evaluate(store, cfg, [BREACH, DEFECTS], T0 + timedelta(minutes=5)) == 0
    assert counts(store) == first


def test_figure_rule_rearms_and_sla_breach_never_does(store: Store) -> None:
    cfg = config()
    evaluate(store, cfg, [BREACH, DEFECTS], T0)
    evaluate(store, cfg, [], T0 + timedelta(hours=1))  # both stop holding
    assert evaluate(store, cfg, [BREACH, DEFECTS], T0 + timedelta(hours=2)) == 1
    got = counts(store)
    assert got["alerts"] == [("breach", 1, False), ("defects", 1, True), ("defects", 2, False)]
    assert got["deliveries"].count(("channel", "team")) == 2  # the second episode is delivered again
    assert got["deliveries"].count(("comment", "jira")) == 1


def test_a_second_evaluator_on_the_same_conditions_opens_nothing(store: Store) -> None:
    cfg = config()
    with store.session() as a, store.session() as b:
        assert len(record(a, cfg, cfg.alerts.rules, [DEFECTS], T0).opened) == 1
        a.commit()
        assert record(b, cfg, cfg.alerts.rules, [DEFECTS], T0).opened == []
        b.commit()
    assert counts(store)["alerts"] == [("defects", 1, False)]


def test_channels_see_jira_items_by_key_and_other_items_by_tracker_id() -> None:
    from trackpulse.alerts.ledger import view_of

    cfg = AppConfig.model_validate({"sources": [{"name": "jira", "kind": "jira", "url": "http://127.0.0.1:9",
                                                 "email": "a@b.c", "token": "t", "projects": ["OPS"]}]})
    alert = Alert(id="x", rule="breach", when="sla_breached", subject="s", episode=1, source="jira",
                  item="OPS-1", item_id="10001", at=T0, opened_at=T0)
    assert view_of(alert, cfg).item == "OPS-1" and view_of(alert, cfg).item_label == "OPS-1"
    card = alert.model_copy(update={"source": "trello", "item": "abc12", "item_id": "5f00aa"})
    assert view_of(card, cfg).item == "5f00aa"


def test_an_evaluation_as_of_an_earlier_instant_never_closes_an_episode_a_later_one_opened(store: Store) -> None:
    """serve's whole evaluation (started at T0, older figures) finishes after a scoped one as of
    T0 + 1 s that opened an episode: the stale run must not close it, or the next run would open
    it again (a second alert for one stretch)."""
    cfg = config()
    assert evaluate(store, cfg, [DEFECTS], T0 + timedelta(seconds=1)) == 1  # the later evaluation
    assert evaluate(store, cfg, [], T0) == 0  # the earlier one, without the condition: closes nothing
    assert counts(store)["alerts"] == [("defects", 1, False)]
    assert evaluate(store, cfg, [DEFECTS], T0 + timedelta(seconds=2)) == 0  # still one episode
    assert evaluate(store, cfg, [], T0 + timedelta(seconds=3)) == 0  # a newer run does close it
    assert counts(store)["alerts"] == [("defects", 1, True)]

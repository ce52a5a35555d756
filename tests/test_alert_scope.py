"""Alerts after a webhook batch, evaluated for the batch's items only (`evaluate_and_dispatch(scope=...)`).

Two stores take the same sync and the same webhook deliveries. One evaluates the item rules for
the items the deliveries changed only, the other evaluates everything at the same instant. For
the changed items both open and close the same episodes, and a whole evaluation after the scoped
one leaves both ledgers equal: the scoped run missed nothing a batch can cause, and what it left
to the whole run (clocks of untouched items that ran into their targets meanwhile) is time alone.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from conftest import JiraSimFactory, StoreFactory
from trackpulse.connectors.jira import apply_webhooks, open_connector

from trackpulse.alerts import evaluate_and_dispatch
from trackpulse.alerts.ledger import ItemScope, record
from trackpulse.alerts.rules import Condition
from trackpulse.config import AppConfig
from trackpulse.simulator.jira_render import JiraRenderer
from trackpulse.simulator.jira_world import PROFILES
from trackpulse.simulator.webhooks import jira_webhook_payload
from trackpulse.store.db import Store
from trackpulse.store.models import Alert


def _ledger(store: Store) -> dict[str, Any]:
    with store.session() as s:
        return {a.id: (a.rule, a.subject, a.item_id, a.closed_at is None) for a in s.execute(sa.select(Alert)).scalars()}


def test_a_scoped_evaluation_opens_and_closes_for_its_items_what_a_whole_one_does(
    jira_sim: JiraSimFactory, store_factory: StoreFactory
) -> None:
    sim = jira_sim("cloud", seed=11, projects=2, issues_per_project=40)
    world, src = sim.world, sim.source(name="jira")
    scoped, whole = store_factory(), store_factory()
    for s in (scoped, whole):
        open_connector(src).sync(s, full=True)
    cfg = AppConfig.model_validate({
        "sources": [src.model_dump(mode="python") | {"token": src.token.get_secret_value()}],
        "sla": {"policies": [{"name": "p1", "response_hours": 4, "resolution_hours": 48}]},
        "alerts": {"rules": [
            {"name": "late", "when": "sla_breached"},
            {"name": "risk", "when": "sla_at_risk"},
            {"name": "stuck", "when": "wip_age_above", "threshold": 2.0},
            {"name": "defects", "when": "defects_open_above", "threshold": 1.0},  # a project rule: whole
        ]}})
    t0 = world.now
    for s in (scoped, whole):
        evaluate_and_dispatch(cfg, s, as_of=t0)
    assert _ledger(scoped) == _ledger(whole) and _ledger(scoped)

    renderer = JiraRenderer(world, PROFILES["cloud"], sim.base_url, api_version=2)
    seen = len(world.events)
    bodies: list[dict[str, Any]] = []
    for step in range(6):
        world.advance(timedelta(hours=3))
        world.mutate(100 + step, 0.15)
        bodies += [jira_webhook_payload(world, renderer, ev) for ev in world.events[seen:]]
        seen = len(world.events)
    deliveries = [(b, {"X-Atlassian-Webhook-Identifier": f"d{i}"}) for i, b in enumerate(bodies)]
    touched: dict[str, set[str]] = {}
    for s in (scoped, whole):
        results = apply_webhooks(s, src, deliveries)
    for r in results:
        assert not isinstance(r, Exception) and r.items is not None
        touched.setdefault("jira", set()).update(r.items)
    assert 5 < len(touched["jira"]) < len(world.issues)  # some items, not all

    t1 = world.now
    a = evaluate_and_dispatch(cfg, scoped, as_of=t1, scope=touched)
    b = evaluate_and_dispatch(cfg, whole, as_of=t1)
    ledger_b = _ledger(whole)

    def of_touched(ids: list[str], ledger: dict[str, Any]) -> set[str]:
        return {i for i in ids if ledger[i][0] == "defects" or ledger[i][2] in touched["jira"]}

    ledger_a = _ledger(scoped)
    assert set(a.opened) == of_touched(b.opened, ledger_b) and a.opened
    assert set(a.closed) == of_touched(b.closed, ledger_b)
    assert {ledger_a[i][2] for i in a.opened if ledger_a[i][0] != "defects"} <= touched["jira"]
    # What the scoped run left is time alone; the next whole run catches it up exactly.
    evaluate_and_dispatch(cfg, scoped, as_of=t1)
    assert _ledger(scoped) == ledger_b


def test_a_scoped_ledger_neither_opens_nor_closes_episodes_of_other_items(store_factory: StoreFactory) -> None:
    store = store_factory()
    cfg = AppConfig.model_validate({"alerts": {"rules": [{"name": "risk", "when": "sla_at_risk"}]}})
    now = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)

    def cond(item: str) -> Condition:
        return Condition(rule="risk", when="sla_at_risk", subject=f"jira/{item}/p1/response", source="jira",
                         project="ABC", item=item, item_id=item, policy="p1", clock="response", value=1.0,
                         target=2.0, at=now)

    with store.session() as s:
        record(s, cfg, cfg.alerts.rules, [cond("1"), cond("2")], now)
        s.commit()
    # A batch changed item 3 only: item 1's condition still holds elsewhere, item 2 is not looked at.
    scope = ItemScope(frozenset({"risk"}), {"jira": {"3"}})
    with store.session() as s:
        result = record(s, cfg, cfg.alerts.rules, [cond("3"), cond("9")], now + timedelta(minutes=1), scope=scope)
        s.commit()
    assert result.closed == [] and [x.item_id for x in result.opened] == ["3"]  # 9 is outside the scope
    assert {v[2] for v in _ledger(store).values() if v[3]} == {"1", "2", "3"}

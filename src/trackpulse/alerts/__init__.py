"""Alert rules over the figures and the ledger of their episodes (ACTIONS.md "Alert rules").

`evaluate_and_dispatch` is the one entry point the CLI and the service call: figures from the
store, conditions from the rules, new episodes and their outbox rows in one transaction, then
one dispatcher pass over every due row (also rows left from earlier runs).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import httpx

from trackpulse.config import AppConfig
from trackpulse.store.db import Store

if TYPE_CHECKING:
    from trackpulse.alerts.rules import Condition
    from trackpulse.delivery.dispatcher import DispatchResult


@dataclass
class AlertRunResult:
    as_of: datetime
    conditions: list[Condition] = field(default_factory=list)  # everything that holds now
    opened: list[str] = field(default_factory=list)  # ids of episodes opened by this run
    closed: list[str] = field(default_factory=list)  # ids of episodes this run closed (re-armed)
    deliveries: int = 0  # outbox rows written for the opened episodes
    dispatch: DispatchResult | None = None  # None on a dry run
    dry_run: bool = False
    opened_subjects: set[tuple[str, str]] = field(default_factory=set)  # (rule, subject) of `opened`
    report: dict[str, Any] | None = None  # the METRICS.md report the rules read, when they needed one

    def as_json(self) -> dict[str, Any]:
        """The `trackpulse alerts --json` document."""
        d = self.dispatch
        return {
            "as_of": self.as_of.strftime("%Y-%m-%dT%H:%M:%SZ"), "dry_run": self.dry_run,
            "opened": self.opened, "closed": self.closed, "deliveries": self.deliveries,
            "conditions": [{"rule": c.rule, "when": c.when, "subject": c.subject, "source": c.source,
                            "project": c.project, "item": c.item, "policy": c.policy, "clock": c.clock,
                            "value": c.value, "target": c.target, "at": c.at.strftime("%Y-%m-%dT%H:%M:%SZ"),
                            "url": c.url,
                            "state": "new" if (c.rule, c.subject) in self.opened_subjects else "open"}
                           for c in self.conditions],
            "dispatch": None if d is None else {"sent": d.sent, "messages": d.messages, "retry": d.retry,
                                                "failed": d.failed, "deferred": d.deferred},
        }


def evaluate_and_dispatch(cfg: AppConfig, store: Store, *, as_of: datetime | None = None, dry_run: bool = False,
                          http: httpx.Client | None = None, scope: Mapping[str, set[str]] | None = None,
                          **dispatcher_options: Any) -> AlertRunResult:
    """Evaluate every rule as of `as_of` (default now), record episodes, deliver what is due.

    `scope` (source -> store item ids: what a webhook batch changed) evaluates the item rules
    (`ITEM_WHENS`) for those items only: their figures depend on nothing else, so the episodes
    they open and close are the ones a whole evaluation would, for ~30 ms of CPU instead of a
    replay of the store. The other rules are evaluated whole either way. Changes that come with
    time alone (a clock running into its target with no event) wait for the next whole
    evaluation, which `serve` runs after every sync and at least every minute.
    `dry_run` reports what would open and close, writing and sending nothing.
    `dispatcher_options` go to `Dispatcher` (clock, channel_factory, postback_factory)."""
    from trackpulse.alerts.inputs import ITEM_WHENS, build_figures
    from trackpulse.alerts.ledger import ItemScope, record
    from trackpulse.alerts.rules import evaluate
    from trackpulse.delivery.dispatcher import Dispatcher

    now = as_of or datetime.now(UTC)
    rules = cfg.alerts.rules
    ledger_scope = None
    if scope is None:
        figures = build_figures(cfg, store, now, rules)
        conds = evaluate(rules, figures)
        report = figures.report or None
    else:
        item_rules = [r for r in rules if r.when in ITEM_WHENS]
        others = [r for r in rules if r.when not in ITEM_WHENS]
        items = {source: set(ids) for source, ids in scope.items()}
        conds = evaluate(item_rules, build_figures(cfg, store, now, item_rules, items=items)) if item_rules else []
        report = None
        if others:
            figures = build_figures(cfg, store, now, others)
            conds += evaluate(others, figures)
            report = figures.report or None
        ledger_scope = ItemScope(frozenset(r.name for r in item_rules), items)
    result = AlertRunResult(as_of=now, conditions=conds, dry_run=dry_run, report=report)
    with store.session() as s:
        ledger = record(s, cfg, rules, conds, now, scope=ledger_scope)
        if dry_run:
            s.rollback()  # the same decisions a real run would make, none of them kept
        else:
            s.commit()
    result.opened = [a.id for a in ledger.opened]
    result.opened_subjects = {(a.rule, a.subject) for a in ledger.opened}
    result.closed = ledger.closed
    result.deliveries = ledger.deliveries
    if dry_run:
        return result
    own = http is None
    client = http or httpx.Client()
    try:
        dispatcher_options.setdefault("lease_seconds", cfg.alerts.delivery_lease_seconds)
        dispatcher = Dispatcher(cfg, store, client, **dispatcher_options)
        try:
            result.dispatch = dispatcher.run_once()
        finally:
            dispatcher.close()
    finally:
        if own:
            client.close()
    return result

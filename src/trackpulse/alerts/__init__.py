"""Alert rules over the figures and the ledger of their episodes (ACTIONS.md "Alert rules").

`evaluate_and_dispatch` is the one entry point the CLI and the service call: figures from the
store, conditions from the rules, new episodes and their outbox rows in one transaction, then
one dispatcher pass over every due row (also rows left from earlier runs).
"""

from __future__ import annotations

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
                          http: httpx.Client | None = None, **dispatcher_options: Any) -> AlertRunResult:
    """Evaluate every rule as of `as_of` (default now), record episodes, deliver what is due.

    `dry_run` reports what would open and close, writing and sending nothing.
    `dispatcher_options` go to `Dispatcher` (clock, channel_factory, postback_factory)."""
    from trackpulse.alerts.inputs import build_figures
    from trackpulse.alerts.ledger import record
    from trackpulse.alerts.rules import evaluate
    from trackpulse.delivery.dispatcher import Dispatcher

    now = as_of or datetime.now(UTC)
    rules = cfg.alerts.rules
    figures = build_figures(cfg, store, now, rules)
    conds = evaluate(rules, figures)
    result = AlertRunResult(as_of=now, conditions=conds, dry_run=dry_run, report=figures.report or None)
    with store.session() as s:
        ledger = record(s, cfg, rules, conds, now)
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

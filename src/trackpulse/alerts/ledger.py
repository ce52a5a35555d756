"""The alert ledger: conditions in, episodes and their outbox rows out, in one transaction.

An episode is one stretch of time during which a rule's condition holds on one subject. It
opens with `insert_new` (`insert_once` for many rows) on an id hashed from (rule, subject, episode), so two evaluators
racing on the same condition cannot both open it, and its deliveries (one per channel of the
rule, one per post-back action) are written in the same transaction: an alert never exists
without its outbox rows, nor rows without their alert.

Figure rules re-arm: when the condition no longer holds the open episode is closed, and the
next time it holds a new episode (a new id, new deliveries) opens. An SLA breach never
re-arms (`NEVER_REARM`): a clock breaches once in its life, so its one episode stays.

Evaluations overlap (serve's scoped and whole evaluators, several instances): one that started
earlier read older figures, so it never closes an episode opened by an evaluation as of a later
instant (`opened_at` after its own `now`). Closed by stale figures, such an episode would open
again at the next run: a second alert for one stretch.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session
from sqlmodel import col

from trackpulse.alerts.rules import NEVER_REARM, Condition
from trackpulse.alerts.text import comment_segments, marker
from trackpulse.config import AlertRuleConfig, AppConfig
from trackpulse.delivery.alert_view import view_of
from trackpulse.store.db import of_items
from trackpulse.store.models import Alert, Delivery
from trackpulse.store.writer import insert_new


def alert_id(rule: str, subject: str, episode: int) -> str:
    """Stable: the same episode of the same rule on the same subject always has this id."""
    return hashlib.sha256(f"{rule}\x1f{subject}\x1f{episode}".encode()).hexdigest()[:32]


def delivery_id(alert: str, kind: str, target: str) -> str:
    return hashlib.sha256(f"{alert}\x1f{kind}\x1f{target}".encode()).hexdigest()[:32]


@dataclass(frozen=True)
class ItemScope:
    """An evaluation that looked at some items only (a webhook batch's): for the rules named
    here, only the episodes of those items (source -> store item ids) may open or close."""

    rules: frozenset[str]
    items: dict[str, set[str]]

    def holds(self, c: Condition) -> bool:
        return c.rule not in self.rules or c.item_id in self.items.get(c.source, ())

    def where(self) -> Any:
        """The alerts this scope may touch, as a WHERE clause."""
        return sa.or_(col(Alert.rule).not_in(sorted(self.rules)), of_items(Alert, self.items))


@dataclass
class LedgerResult:
    opened: list[Alert] = field(default_factory=list)
    closed: list[str] = field(default_factory=list)  # ids of episodes closed by this evaluation
    deliveries: int = 0


def _deliveries(cfg: AppConfig, rule: AlertRuleConfig, alert: Alert, now: datetime) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []

    def row(kind: str, target: str, payload: dict[str, object] | None) -> None:
        rows.append({"id": delivery_id(alert.id, kind, target), "alert_id": alert.id, "target_kind": kind,
                     "target": target, "status": "pending", "attempts": 0, "not_before": now,
                     "payload": payload, "created_at": now})

    for channel in rule.channels:
        row("channel", channel, None)
    lang = cfg.alerts.language
    for action in rule.post_back:
        if action == "comment":
            segments = comment_segments(view_of(alert, cfg), lang)
            row("comment", alert.source, {"segments": [[text, bold] for text, bold in segments],
                                          "marker": marker(alert.id, lang)})
        else:
            row("label", alert.source, {"label": rule.label_name})
    return rows


def record(session: Session, cfg: AppConfig, rules: Sequence[AlertRuleConfig],
           conds: Iterable[Condition], now: datetime, scope: ItemScope | None = None) -> LedgerResult:
    """Open episodes for new conditions and close those of figure rules that stopped holding.

    The caller owns the transaction; `rules` are the rules that were evaluated (only their
    episodes may be closed); `scope`, when the item rules looked at some items only (only those
    items' episodes may open or close). Returns what changed."""
    by_name = {r.name: r for r in rules}
    holding: dict[tuple[str, str], Condition] = {}
    for c in conds:
        if scope is None or scope.holds(c):
            holding.setdefault((c.rule, c.subject), c)
    result = LedgerResult()
    latest: dict[tuple[str, str], Alert] = {}
    if by_name:
        query = sa.select(Alert).where(col(Alert.rule).in_(list(by_name)))
        if scope is not None:
            query = query.where(scope.where())
        for a in session.execute(query).scalars():
            key = (a.rule, a.subject)
            if key not in latest or a.episode > latest[key].episode:
                latest[key] = a

    for key, last in sorted(latest.items()):
        if (last.closed_at is None and key not in holding and last.when not in NEVER_REARM
                and last.opened_at <= now):
            last.closed_at = now
            session.add(last)
            result.closed.append(last.id)
    session.flush()

    new: list[tuple[AlertRuleConfig, Alert]] = []
    for key, c in sorted(holding.items()):
        rule = by_name.get(c.rule)
        if rule is None:
            continue
        prev = latest.get(key)
        if prev is not None and (prev.closed_at is None or c.when in NEVER_REARM):
            continue
        episode = 1 if prev is None else prev.episode + 1
        new.append((rule, Alert(id=alert_id(c.rule, c.subject, episode), rule=c.rule, when=c.when, subject=c.subject,
                                episode=episode, source=c.source, project=c.project, item=c.item, item_id=c.item_id,
                                policy=c.policy, clock=c.clock, value=c.value, target=c.target, at=c.at, url=c.url,
                                opened_at=now, closed_at=None)))
    # Each in one statement (a first evaluation opens a thousand episodes): first writer wins
    # per row, as with `insert_once`.
    won = insert_new(session, Alert, [alert.model_dump() for _, alert in new])
    rows: list[dict[str, object]] = []
    for rule, alert in new:
        if (alert.id,) not in won:
            continue  # another evaluator opened it first: its deliveries are its own
        result.opened.append(alert)
        rows += _deliveries(cfg, rule, alert, now)
    result.deliveries = len(insert_new(session, Delivery, rows))
    return result

"""What went out: alerts newest first, each with its deliveries, status, tries and the service's
answer (`trackpulse alerts history`). Answers are stored redacted, so nothing here can carry a
URL token or a secret."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlmodel import col

from trackpulse.delivery.outbox import aware
from trackpulse.store.db import Store
from trackpulse.store.models import Alert, Delivery


def _iso(ts: Any) -> str | None:
    return None if ts is None else aware(ts).strftime("%Y-%m-%dT%H:%M:%SZ")


def history_rows(store: Store, limit: int) -> list[dict[str, Any]]:
    """The newest `limit` alerts and digest sendings, each with its deliveries
    (`trackpulse.alerts-history/1` rows), newest first."""
    with store.session() as s:
        alerts = list(s.execute(sa.select(Alert).order_by(col(Alert.opened_at).desc(), col(Alert.id))
                                .limit(limit)).scalars())
        ids = [a.id for a in alerts]
        deliveries: dict[str, list[Delivery]] = {}
        for d in s.execute(sa.select(Delivery).where(col(Delivery.alert_id).in_(ids))
                           .order_by(col(Delivery.target_kind), col(Delivery.target))).scalars():
            deliveries.setdefault(d.alert_id, []).append(d)
    entries = [{
        "id": a.id, "rule": a.rule, "when": a.when, "subject": a.subject, "source": a.source,
        "project": a.project, "item": a.item, "opened_at": _iso(a.opened_at), "closed_at": _iso(a.closed_at),
        "deliveries": [{"kind": d.target_kind, "target": d.target, "status": d.status, "attempts": d.attempts,
                        "sent_at": _iso(d.sent_at), "answer": d.answer} for d in deliveries.get(a.id, [])],
    } for a in alerts] + _digest_rows(store, limit)
    entries.sort(key=lambda e: e["opened_at"] or "", reverse=True)
    return entries[:limit]


def _digest_rows(store: Store, limit: int) -> list[dict[str, Any]]:
    """Digest sendings: outbox rows of prepared messages (`alert_id` "digest:<name>:<local time>",
    no alert row), one entry per firing, shaped like an alert's."""
    with store.session() as s:
        rows = list(s.execute(sa.select(Delivery).where(col(Delivery.target_kind) == "message")
                              .order_by(col(Delivery.created_at).desc(), col(Delivery.target))).scalars())
    firings: dict[str, list[Delivery]] = {}
    for d in rows:
        if len(firings) >= limit and d.alert_id not in firings:
            continue
        firings.setdefault(d.alert_id, []).append(d)
    return [{
        "id": firing, "rule": firing.split(":")[1] if firing.count(":") >= 2 else firing, "when": "digest",
        "subject": firing, "source": None, "project": None, "item": None,
        "opened_at": _iso(min(d.created_at for d in ds)), "closed_at": None,
        "deliveries": [{"kind": "digest", "target": d.target, "status": d.status, "attempts": d.attempts,
                        "sent_at": _iso(d.sent_at), "answer": d.answer} for d in ds],
    } for firing, ds in firings.items()]

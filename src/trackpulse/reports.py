"""The two reports users read: status (per source: runs, cursors, counts) and metrics.

The CLI (`status`, `metrics`), the API (`/api/status`, `/api/metrics`), the dashboard and
the demo all call these functions, so every surface shows the same figures. They read the
store only, never a tracker.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import SQLModel, col

from trackpulse.config import AppConfig
from trackpulse.connectors.registry import CONNECTORS
from trackpulse.errors import TrackpulseError
from trackpulse.store.db import Store
from trackpulse.store.models import (
    Board,
    Comment,
    History,
    Item,
    Project,
    SourceState,
    Sprint,
    SyncCursor,
    WebhookDelivery,
    Worklog,
)

STATUS_SCHEMA = "trackpulse.status/1"


def _iso(ts: datetime | None) -> str | None:
    return ts.isoformat().replace("+00:00", "Z") if ts else None


def _counts_by_source(session: Any, model: type[SQLModel], *where: Any) -> dict[str, int]:
    table = model.__table__  # type: ignore[attr-defined]
    stmt = sa.select(table.c.source, sa.func.count()).group_by(table.c.source)
    for w in where:
        stmt = stmt.where(w)
    return {src: int(n) for src, n in session.execute(stmt)}


def build_status(cfg: AppConfig, store: Store) -> dict[str, Any]:
    """Configured sources first (in config order), then any the store still remembers."""
    with store.session() as s:
        states = {st.name: st for st in s.execute(sa.select(SourceState)).scalars()}
        cursors: dict[str, dict[str, str]] = {}
        for c in s.execute(sa.select(SyncCursor).order_by(col(SyncCursor.source), col(SyncCursor.entity))).scalars():
            # `meta.*` rows are connector bookkeeping (field maps, catalogues), not positions.
            if not c.entity.startswith("meta."):
                cursors.setdefault(c.source, {})[c.entity] = c.value
        counts = {
            "items": _counts_by_source(s, Item, col(Item.deleted).is_(False), col(Item.archived).is_(False)),
            "archived": _counts_by_source(s, Item, col(Item.deleted).is_(False), col(Item.archived).is_(True)),
            "deleted": _counts_by_source(s, Item, col(Item.deleted).is_(True)),
            "histories": _counts_by_source(s, History),
            "worklogs": _counts_by_source(s, Worklog, col(Worklog.deleted).is_(False)),
            "comments": _counts_by_source(s, Comment, col(Comment.deleted).is_(False)),
            "projects": _counts_by_source(s, Project),
            "boards": _counts_by_source(s, Board),
            "sprints": _counts_by_source(s, Sprint),
            "webhooks_received": _counts_by_source(s, WebhookDelivery),
            # Pending: not applied yet and not given up on (a transient failure waiting for its retry
            # counts here); failed: given up on, listed by /api/webhooks/failed.
            "webhooks_pending": _counts_by_source(
                s, WebhookDelivery, col(WebhookDelivery.processed_at).is_(None),
                col(WebhookDelivery.failed_at).is_(None),
            ),
            "webhooks_failed": _counts_by_source(
                s, WebhookDelivery, col(WebhookDelivery.failed_at).is_not(None)
            ),
        }
    configured = {src.name: src for src in cfg.sources}
    names = list(configured) + sorted(n for n in states if n not in configured)
    sources: list[dict[str, Any]] = []
    for name in names:
        st = states.get(name)
        src_cfg = configured.get(name)
        kind = src_cfg.kind if src_cfg else (st.kind if st else None)
        sources.append({
            "name": name,
            "kind": src_cfg.kind if src_cfg else (st.kind if st else None),
            "configured": src_cfg is not None,
            "deployment": st.deployment if st else None,
            "last_run_started": _iso(st.last_run_started) if st else None,
            "last_run_finished": _iso(st.last_run_finished) if st else None,
            "last_success": _iso(st.last_success) if st else None,
            "last_error": st.last_error if st else None,
            "last_run_requests": st.last_run_requests if st else None,
            "cursors": cursors.get(name, {}),
            "cursor_at": _newest_position(kind, cursors.get(name, {})),
            "counts": {entity: by_source.get(name, 0) for entity, by_source in counts.items()},
        })
    return {"schema": STATUS_SCHEMA, "store": _store_label(store), "sources": sources}


def _newest_position(kind: str | None, cursors: dict[str, str]) -> str | None:
    """The newest tracker instant any of the source's cursors stands at (where the next incremental
    run resumes), as its connector reads them: no guessing from the strings' shapes here."""
    if kind not in CONNECTORS or not cursors:
        return None
    views = [CONNECTORS[kind].describe_cursor(entity, value) for entity, value in cursors.items()]
    instants = [v.at for v in views if v.at is not None]
    return _iso(max(instants)) if instants else None


def _store_label(store: Store) -> str:
    # The URL without its password: status output is pasted into tickets.
    return store.engine.url.render_as_string(hide_password=True)


class BadInstant(TrackpulseError):
    """A timestamp option or query parameter that is not ISO 8601 (a usage error)."""

    exit_code = 2


def parse_instant(value: str | None, option: str) -> datetime | None:
    """ISO 8601 instant or date; a value without a zone is UTC (the store's zone)."""
    if value is None or value == "":
        return None
    text = value.strip()
    try:
        if len(text) == 10:
            d = date.fromisoformat(text)
            return datetime(d.year, d.month, d.day, tzinfo=UTC)
        ts = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise BadInstant(
            f"{option}: {value!r} is not an ISO 8601 date or instant (e.g. 2026-01-31 or 2026-01-31T12:00:00Z)"
        ) from None
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def compute_report(
    cfg: AppConfig,
    store: Store,
    *,
    as_of: datetime | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    sources: Sequence[str] | None = None,
) -> dict[str, Any]:
    """The METRICS.md §7 report of the store's data (`as_of` defaults to now)."""
    from trackpulse.metrics.load import load_input
    from trackpulse.metrics.report import build_report

    chosen = list(sources) if sources else None
    inp = load_input(store, cfg, sources=chosen)
    report: dict[str, Any] = build_report(inp, as_of=as_of or datetime.now(UTC), since=since,
                                          until=until, sources=chosen)
    return report


def compute_report_and_extras(
    cfg: AppConfig,
    store: Store,
    *,
    as_of: datetime | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    sources: Sequence[str] | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The report and the extra figures the human tables and CSV export add, from one replay."""
    from trackpulse.metrics.load import load_input
    from trackpulse.metrics.report import build_report_and_extras

    chosen = list(sources) if sources else None
    inp = load_input(store, cfg, sources=chosen)
    return build_report_and_extras(inp, as_of=as_of or datetime.now(UTC), since=since, until=until,
                                   sources=chosen)

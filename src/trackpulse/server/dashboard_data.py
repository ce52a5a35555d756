"""What the dashboard shows, computed once per (window, projects, store change counter).

One as-of replay of the store's rows (the same `MetricsRun` → `report_of` / `extras_of` code as
`/api/metrics` and the digests) gives the report, the extra figures, the cycle-time dots, every
SLA clock and the items in progress. Loading 20,000 items and replaying them takes seconds,
so both the loaded input and each computed view are cached, keyed by a cheap probe of the
store (`change_counter`): a sync run or an applied webhook changes the probe, and the next
request recomputes. Entries also expire after `MAX_AGE_SECONDS`, because ages and running
clocks move with the wall clock even when the store does not.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

import numpy as np
import sqlalchemy as sa
from sqlmodel import col

from trackpulse.alerts.inputs import item_url
from trackpulse.config import AppConfig
from trackpulse.digests.build import _all_clocks, _cycle_points, filter_input
from trackpulse.metrics import flow
from trackpulse.metrics.frames import MetricsInput
from trackpulse.metrics.report import MetricsRun, extras_of, report_of
from trackpulse.store.db import Store
from trackpulse.store.models import Item, SourceState, WebhookDelivery

WindowName = Literal["sprint", "30d", "90d", "custom"]
WINDOWS: tuple[WindowName, ...] = ("sprint", "30d", "90d", "custom")
MAX_AGE_SECONDS = 300.0
SPRINT_FALLBACK_DAYS = 14


def change_counter(store: Store) -> tuple[Any, ...]:
    """A cheap probe that changes whenever a sync run or a webhook changed the store: item count
    and newest `updated`, webhook deliveries received and the newest `processed_at`, newest
    finished sync run. Counts over narrow indexes and maxima of indexed columns (revision 0011),
    about a millisecond on 20,000 items."""
    with store.session() as s:
        items = s.execute(sa.select(sa.func.count()).select_from(Item)).one()
        newest = s.execute(sa.select(sa.func.max(col(Item.updated)))).one()
        hooks = s.execute(sa.select(sa.func.count()).select_from(WebhookDelivery)).one()
        applied = s.execute(sa.select(sa.func.max(col(WebhookDelivery.processed_at)))).one()
        runs = s.execute(sa.select(sa.func.max(col(SourceState.last_run_finished)),
                                   sa.func.count())).one()
    return (*items, *newest, *hooks, *applied, *runs)


@dataclass(frozen=True)
class WindowChoice:
    name: WindowName
    since: datetime | None  # resolved against the data
    until: datetime | None
    custom_since: str = ""
    custom_until: str = ""


def parse_window(name: str | None, since: str | None, until: str | None) -> tuple[WindowName, str, str]:
    """The window selector's query parameters, normalised (unknown names fall back to 30 days;
    custom dates that are not ISO dates are dropped)."""
    chosen: WindowName = name if name in WINDOWS else "30d"
    def ok(text: str | None) -> str:
        try:
            return date.fromisoformat(text).isoformat() if text else ""
        except ValueError:
            return ""
    return chosen, ok(since), ok(until)


@dataclass
class DashboardView:
    """Everything the pages and chart downloads read, for one window and project choice."""

    as_of: datetime
    window: WindowChoice
    projects: list[str]
    report: dict[str, Any]
    extras: dict[str, Any]
    cycle_points: list[dict[str, Any]]
    clocks: list[dict[str, Any]]
    wip: list[dict[str, Any]]
    all_projects: list[tuple[str, str]]
    currency: str = ""
    charts: dict[Hashable, Any] = field(default_factory=dict)  # rendered SVG/PNG, per (chart, lang, format)
    charts_lock: threading.Lock = field(default_factory=threading.Lock)


class _Lru:
    def __init__(self, size: int) -> None:
        self.size = size
        self.entries: OrderedDict[Hashable, tuple[float, Any]] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, key: Hashable, build: Callable[[], Any]) -> Any:
        now = time.monotonic()
        with self.lock:
            hit = self.entries.get(key)
            if hit is not None and now - hit[0] < MAX_AGE_SECONDS:
                self.entries.move_to_end(key)
                return hit[1]
        value = build()  # outside the lock: a slow build must not block hits on other keys
        with self.lock:
            self.entries[key] = (now, value)
            self.entries.move_to_end(key)
            while len(self.entries) > self.size:
                self.entries.popitem(last=False)
        return value


class DashboardCache:
    """The loaded input per change counter, and views per (counter, window, projects)."""

    def __init__(self, cfg: AppConfig, store: Store) -> None:
        self.cfg, self.store = cfg, store
        self._inputs = _Lru(2)
        self._views = _Lru(32)
        self._status = _Lru(2)
        self._build_lock = threading.Lock()  # one cold build at a time: two would double the memory

    def view(self, window: tuple[WindowName, str, str], projects: Sequence[str]) -> DashboardView:
        counter = change_counter(self.store)
        key = (counter, window, tuple(sorted(projects)))
        return self._views.get(key, lambda: self._build(counter, window, list(projects)))

    def status(self) -> dict[str, Any]:
        """`build_status` (300 ms on 20,000 items: it counts every table) per change counter."""
        from trackpulse.reports import build_status

        return self._status.get(change_counter(self.store),  # type: ignore[no-any-return]
                                lambda: build_status(self.cfg, self.store))

    def _input(self, counter: tuple[Any, ...]) -> tuple[MetricsInput, dict[tuple[str, str], str]]:
        from trackpulse.metrics.load import load_input

        def load() -> tuple[MetricsInput, dict[tuple[str, str], str]]:
            sources = [s.name for s in self.cfg.sources]
            inp = load_input(self.store, self.cfg, sources=sources or None)
            return inp, _item_urls(self.cfg, self.store)

        return self._inputs.get(counter, load)

    def _build(self, counter: tuple[Any, ...], window: tuple[WindowName, str, str],
               projects: list[str]) -> DashboardView:
        with self._build_lock:
            inp, urls = self._input(counter)
            all_projects = sorted(set(zip(inp.items["source"], inp.items["project"], strict=True)))
            known = {p for _, p in all_projects}
            projects = [p for p in projects if p in known]
            if projects:
                part = filter_input(inp, projects)
                inp = dataclasses.replace(inp, **{f: getattr(part, f) for f in (
                    "items", "transitions", "sprint_changes", "estimate_changes", "worklogs", "comments",
                    "sprints", "boards")})
            as_of = datetime.now(UTC).replace(microsecond=0)
            choice = resolve_window(window, inp, as_of)
            until = choice.until or as_of
            run = MetricsRun.start(inp, as_of=min(as_of, until), since=choice.since, until=until)
            report = report_of(run)
            for section in ("sla", "kpis"):
                for row in report.get(section, []):
                    _link(row, urls)
            clocks = [_link(c, urls) for c in _all_clocks(run)]
            return DashboardView(
                as_of=as_of, window=choice, projects=projects, report=report, extras=extras_of(run),
                cycle_points=_cycle_points(run), clocks=clocks, wip=[_link(w, urls) for w in _wip(run, as_of)],
                all_projects=all_projects, currency=inp.cost.currency)


def resolve_window(window: tuple[WindowName, str, str], inp: MetricsInput, as_of: datetime) -> WindowChoice:
    name, since_text, until_text = window
    if name == "custom":
        since = _day(since_text) or as_of - timedelta(days=30)
        until = _day(until_text)
        until = until + timedelta(days=1) if until else None  # an inclusive end date
        return WindowChoice(name, since, until, since_text, until_text)
    if name == "sprint":
        active = inp.sprints[(inp.sprints["state"] == "active") & inp.sprints["start"].notna()] \
            if len(inp.sprints) else inp.sprints
        starts = [ts.to_pydatetime() for ts in active["start"]] if len(active) else []
        since = min(starts) if starts else as_of - timedelta(days=SPRINT_FALLBACK_DAYS)
        return WindowChoice(name, since, None)
    return WindowChoice(name, as_of - timedelta(days=30 if name == "30d" else 90), None)


def _day(text: str) -> datetime | None:
    if not text:
        return None
    d = date.fromisoformat(text)
    return datetime(d.year, d.month, d.day, tzinfo=UTC)


def _item_urls(cfg: AppConfig, store: Store) -> dict[tuple[str, str], str]:
    """(source, item id or key) → the item's URL; Trello rows name the card id, the link needs the shortLink."""
    out: dict[tuple[str, str], str] = {}
    with store.session() as s:
        for source, item_id, key in s.execute(sa.select(col(Item.source), col(Item.item_id), col(Item.key))
                                              .where(col(Item.deleted).is_(False))):
            url = item_url(cfg, source, key)
            if url:
                out[(source, item_id)] = out[(source, key)] = url
    return out


def _link(row: dict[str, Any], urls: dict[tuple[str, str], str]) -> dict[str, Any]:
    if not row.get("item_url") and row.get("item") is not None:
        row["item_url"] = urls.get((row.get("source", ""), str(row["item"])))
    return row


def _wip(run: MetricsRun, as_of: datetime) -> list[dict[str, Any]]:
    """Items in progress, oldest start first, with their age in days."""
    frame = flow.derived_instants(run.hist)
    frame = frame[(frame["category"] == "in_progress") & frame["started"].notna()].sort_values("started")
    now = np.datetime64(as_of.replace(tzinfo=None), "ns")
    rows = []
    for s, p, k, started in frame[["source", "project", "key", "started"]].itertuples(index=False):
        age = (now - np.datetime64(started.tz_convert(None).to_datetime64(), "ns")) / np.timedelta64(1, "D")
        rows.append({"source": s, "project": p, "item": k, "started": started.isoformat().replace("+00:00", "Z"),
                     "age_days": float(age)})
    return rows

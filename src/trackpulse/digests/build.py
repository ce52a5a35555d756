"""The digest's data: its window `[as_of - period_days, as_of)` and the period before it, each
through the same report code as `trackpulse metrics` (`MetricsRun` → `report_of` / `extras_of`),
over the store's rows filtered by the digest's `sources` and `projects`.

The previous period's report is evaluated as of its own end, so "WIP" or "open defects" in
the comparison are what they were then. Nothing here renders: `content` turns the data into
what people read, `mail` and `chat` into messages.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from trackpulse.config import AppConfig, DigestConfig
from trackpulse.metrics import sla
from trackpulse.metrics.frames import NAT, NS_PER_DAY, MetricsInput, iso_utc, iso_utc_array
from trackpulse.metrics.history import Window
from trackpulse.metrics.report import MetricsRun, extras_of, report_of, sla_rows

SCHEMA_ID = "trackpulse.digest/1"


@dataclass
class DigestData:
    """Everything a digest shows, for one digest and one evaluation time."""

    digest: DigestConfig
    as_of: datetime
    since: datetime
    previous_since: datetime
    report: dict[str, Any]
    previous_report: dict[str, Any]
    extras: dict[str, Any]
    previous_extras: dict[str, Any]
    # Items resolved in the window with a start: the cycle-time scatter's dots.
    cycle_points: list[dict[str, Any]] = field(default_factory=list)
    # Every SLA clock of the filtered projects (whatever the item's creation date), as of `as_of`.
    clocks: list[dict[str, Any]] = field(default_factory=list)
    currency: str = ""
    # (source, board id) -> the board's name: Trello boards are projects, and people know boards by name.
    board_names: dict[tuple[str, str], str] = field(default_factory=dict)

    @property
    def lang(self) -> str:
        return self.digest.language


def digest_window(digest: DigestConfig, as_of: datetime) -> tuple[datetime, datetime, datetime]:
    """(since, until, previous_since): `[since, until)` is the window, `[previous_since, since)` the one before."""
    period = timedelta(days=digest.period_days)
    until = as_of.astimezone(UTC)
    return until - period, until, until - 2 * period


def filter_input(inp: MetricsInput, projects: Sequence[str]) -> MetricsInput:
    """The input restricted to `projects` (Jira project keys, Trello board ids): their items and
    everything hanging off them, the sprints those items were ever in, and those boards."""
    if not projects:
        return inp
    wanted = set(projects)
    items = inp.items[inp.items["project"].isin(wanted)]
    keys = set(zip(items["source"], items["item_id"], strict=True))

    def of_items(frame: pd.DataFrame) -> pd.DataFrame:
        if len(frame) == 0:
            return frame
        mask = [k in keys for k in zip(frame["source"], frame["item_id"], strict=True)]
        return frame[np.asarray(mask, dtype=bool)]

    changes = of_items(inp.sprint_changes)
    sprint_keys: set[tuple[str, str]] = set()
    for source, ids in zip(items["source"], items["sprint_ids"], strict=True):
        sprint_keys.update((source, str(i)) for i in ids)
    for source, a, b in zip(changes["source"], changes["from_sprint_ids"], changes["to_sprint_ids"], strict=True):
        sprint_keys.update((source, str(i)) for i in (*a, *b))
    sprints = inp.sprints[[k in sprint_keys for k in zip(inp.sprints["source"], inp.sprints["sprint_id"],
                                                         strict=True)]] if len(inp.sprints) else inp.sprints
    board_keys = set(zip(sprints["source"], sprints["board_id"], strict=True)) if len(sprints) else set()
    boards = inp.boards[[(s, b) in board_keys or b in wanted
                         for s, b in zip(inp.boards["source"], inp.boards["board_id"], strict=True)]] \
        if len(inp.boards) else inp.boards
    # §9-§13 inputs too: plans and assignee history of the kept items, the projects' versions and
    # epics, and the figure settings (KPIs, coverage, forecast windows).
    versions = inp.versions[inp.versions["project"].isin(wanted)] if len(inp.versions) else inp.versions
    epics = inp.epics[inp.epics["project"].isin(wanted)] if len(inp.epics) else inp.epics
    return MetricsInput(items=items, transitions=of_items(inp.transitions), statuses=inp.statuses,
                        sprint_changes=changes, estimate_changes=of_items(inp.estimate_changes),
                        worklogs=of_items(inp.worklogs), comments=of_items(inp.comments), sprints=sprints,
                        boards=boards, sources=inp.sources, sla=inp.sla, cost=inp.cost,
                        item_plans=of_items(inp.item_plans), assignee_changes=of_items(inp.assignee_changes),
                        versions=versions, epics=epics, figures=inp.figures)


def build_from_input(inp: MetricsInput, digest: DigestConfig, *, as_of: datetime) -> DigestData:
    """The digest's data from a metrics input (the store's, or a hand-built one in tests)."""
    since, until, previous_since = digest_window(digest, as_of)
    sources = list(digest.sources) or None
    inp = filter_input(inp, digest.projects)
    run = MetricsRun.start(inp, as_of=until, since=since, until=until, sources=sources)
    previous = MetricsRun.start(inp, as_of=since, since=previous_since, until=since, sources=sources)
    return DigestData(
        digest=digest, as_of=until, since=since, previous_since=previous_since,
        report=report_of(run), previous_report=report_of(previous),
        extras=extras_of(run), previous_extras=extras_of(previous),
        cycle_points=_cycle_points(run), clocks=_all_clocks(run), currency=inp.cost.currency,
        board_names={(str(src), str(b)): str(n) for src, b, n in
                     zip(inp.boards["source"], inp.boards["board_id"], inp.boards["name"], strict=True) if n},
    )


def build_digest(cfg: AppConfig, store: Any, name: str, *, as_of: datetime | None = None) -> DigestData:
    """The named digest's data from the store, as of `as_of` (default now)."""
    from trackpulse.metrics.load import load_input

    digest = cfg.digest(name)
    chosen = list(digest.sources) or None
    inp = load_input(store, cfg, sources=chosen)
    return build_from_input(inp, digest, as_of=as_of or datetime.now(UTC))


def digest_json(data: DigestData) -> dict[str, Any]:
    """The `trackpulse.digest/1` object of ACTIONS.md."""
    return {
        "schema": SCHEMA_ID,
        "name": data.digest.name,
        "as_of": iso_utc(_ns(data.as_of)),
        "window": {"since": iso_utc(_ns(data.since)), "until": iso_utc(_ns(data.as_of))},
        "previous": {"since": iso_utc(_ns(data.previous_since)), "until": iso_utc(_ns(data.since))},
        "report": data.report,
        "previous_report": data.previous_report,
    }


def _ns(ts: datetime) -> int:
    return int(pd.Timestamp(ts).value)


def _cycle_points(run: MetricsRun) -> list[dict[str, Any]]:
    hist = run.hist
    pos = np.flatnonzero(run.window.contains(hist.resolved) & (hist.started != NAT))
    if len(pos) == 0:
        return []
    resolved = hist.resolved[pos]
    days = (resolved - hist.started[pos]) / NS_PER_DAY
    keys = hist.items["key"].to_numpy(dtype=object)[pos]
    projects = hist.items["project"].to_numpy(dtype=object)[pos]
    return [{"item": k, "project": p, "resolved": r, "cycle_time_days": float(d)}
            for k, p, r, d in zip(keys, projects, iso_utc_array(resolved), days, strict=True)]


def _all_clocks(run: MetricsRun) -> list[dict[str, Any]]:
    """The report's SLA clock rows over every creation date (the report lists only items created
    in the window; a digest also wants older items that breached in it, and those at risk now)."""
    clocks = sla.sla_clocks(run.hist, run.inp)
    frame = sla_rows(run.hist, clocks, Window(run.window.as_of, None, run.window.as_of + 1))
    if len(frame) == 0:
        return []
    breached = iso_utc_array(frame["breached_at"].to_numpy(dtype=np.int64))
    out = []
    for i, r in enumerate(frame.itertuples(index=False)):
        out.append({"source": r.source, "project": r.project, "item": r.item, "policy": r.policy, "clock": r.clock,
                    "target_hours": float(r.target_hours), "elapsed_hours": float(r.elapsed_hours),
                    "status": r.status, "breached_at": breached[i]})
    return out

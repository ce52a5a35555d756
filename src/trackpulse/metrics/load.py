"""Reading the store into the frames the metrics functions take (the only I/O of metrics).

Deleted Jira issues and archived Trello cards are left out here, once, so that no
metric can count them. Historical statuses get their category from the status
catalogue (METRICS.md §1), not from the item's current status.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlmodel import col

from trackpulse.config import AppConfig
from trackpulse.metrics.frames import SMALL
from trackpulse.store.db import Store, of_items
from trackpulse.store.models import (
    AssigneeChange,
    Board,
    Comment,
    EstimateChange,
    Item,
    Project,
    Sprint,
    SprintChange,
    StatusDef,
    Transition,
    Version,
    Worklog,
)

if TYPE_CHECKING:
    from trackpulse.metrics.frames import MetricsInput

_TS_COLS = {"created", "at", "started", "start", "end", "complete"}


def _frame(conn: sa.Connection, stmt: Any, columns: Sequence[str]) -> pd.DataFrame:
    # Plain tuples: pandas probes each record for attributes, and a Row answers every probe by
    # raising inside SQLAlchemy (a sixth of the load time of a small store).
    rows = [tuple(r) for r in conn.execute(stmt).all()]
    df = pd.DataFrame.from_records(rows, columns=list(columns))
    for c in df.columns:
        if c in _TS_COLS:
            df[c] = pd.to_datetime(df[c], utc=True)
    return df


def _in_sources(column: Any, sources: Sequence[str] | None) -> Any:
    return column.in_(list(sources)) if sources else sa.true()


_EMPTY: dict[str, pd.DataFrame] = {}


def _empty(name: str) -> pd.DataFrame:
    """An empty frame of the named kind (built once: typing a frame costs a millisecond)."""
    from trackpulse.metrics.frames import make_frame

    if name not in _EMPTY:
        _EMPTY[name] = make_frame(name, [])
    return _EMPTY[name].copy()


def _as_tuple(v: Any) -> tuple[str, ...]:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return ()
    return tuple(str(x) for x in v)


# What the item rules of the alerts read (an item's SLA clocks and WIP age): the status replay's
# and the SLA family's frames (no estimates: points decide neither); `load_input(frames=ITEM_FRAMES)`
# leaves the others empty.
ITEM_FRAMES = frozenset({"items", "transitions", "statuses", "comments"})


def load_frames(conn: sa.Connection, sources: Sequence[str] | None = None,
                only: Mapping[str, Collection[str]] | None = None,
                want: Collection[str] | None = None) -> dict[str, pd.DataFrame]:
    """The store's live data as the frames of `trackpulse.metrics.frames.MetricsInput`, read
    through `conn` (a `Store.snapshot()`, so that all frames show one state). `only` (source ->
    item ids) reads only those items and their rows: figures that depend on an item's own data
    alone (its SLA clocks, its WIP age) come out the same as from the whole store. `want`: the
    frames to read (default all; the others are empty)."""

    def wanted(name: str) -> bool:
        return want is None or name in want
    item_cols = ["source", "project", "item_id", "key", "type", "priority", "is_defect", "status_id",
                 "status_category", "points", "created", "reporter", "sprint_ids"]
    items = _frame(
        conn,
        sa.select(*[getattr(Item, c) for c in item_cols]).where(
            col(Item.deleted).is_(False), col(Item.archived).is_(False), _in_sources(Item.source, sources),
            of_items(Item, only),
        ),
        item_cols,
    )
    items["sprint_ids"] = [_as_tuple(v) for v in items["sprint_ids"]]
    items["points"] = items["points"].astype("float64")
    items["is_defect"] = items["is_defect"].astype(bool)
    live = items[["source", "item_id"]]
    few = set(zip(items["source"], items["item_id"], strict=True)) if only is not None else None

    def children(frame: pd.DataFrame) -> pd.DataFrame:
        if few is not None:  # a handful of items: a set look-up per row costs less than a merge's set-up
            keep = [k in few for k in zip(frame["source"], frame["item_id"], strict=True)]
            return frame[np.asarray(keep, dtype=bool)].reset_index(drop=True)
        return frame.merge(live, on=["source", "item_id"], how="inner")

    statuses = _frame(conn, sa.select(col(StatusDef.source), col(StatusDef.status_id), col(StatusDef.name),
                                       col(StatusDef.category))
                      .where(_in_sources(StatusDef.source, sources)), ["source", "status_id", "name", "category"])

    def item_rows(model: Any, columns: list[str], *where: Any) -> pd.DataFrame:
        """`columns` of `model`'s rows of the live (and chosen) items."""
        stmt = sa.select(*[getattr(model, c) for c in columns]).where(
            _in_sources(model.source, sources), of_items(model, only), *where)
        return children(_frame(conn, stmt, columns))

    transitions = item_rows(Transition, ["source", "item_id", "at", "seq", "from_status_id", "to_status_id",
                                         "history_id"])
    cat = statuses.set_index(["source", "status_id"])["category"]
    transitions = transitions.sort_values(["source", "item_id", "at", "history_id", "seq"], kind="stable")
    # seq within an item: histories sort by time, then id, then position inside the history
    transitions["seq"] = transitions.groupby(["source", "item_id"]).cumcount()
    transitions = transitions.drop(columns=["history_id"]).reset_index(drop=True)
    transitions["from_category"] = _lookup(cat, transitions, "from_status_id")
    transitions["to_category"] = _lookup(cat, transitions, "to_status_id")

    out = {"items": items, "transitions": transitions, "statuses": statuses}
    out.update({name: _empty(name) for name in ("sprint_changes", "estimate_changes", "worklogs", "comments",
                                                 "sprints", "boards") if not wanted(name)})
    if wanted("sprint_changes"):
        sprint_changes = _ordered(item_rows(SprintChange, ["source", "item_id", "at", "seq", "from_sprint_ids",
                                                           "to_sprint_ids", "history_id"]))
        for c in ("from_sprint_ids", "to_sprint_ids"):
            sprint_changes[c] = [_as_tuple(v) for v in sprint_changes[c]]
        out["sprint_changes"] = sprint_changes
    if wanted("estimate_changes"):
        estimate_changes = _ordered(item_rows(EstimateChange, ["source", "item_id", "at", "seq", "from_points",
                                                               "to_points", "history_id"]))
        for c in ("from_points", "to_points"):
            estimate_changes[c] = estimate_changes[c].astype("float64")
        out["estimate_changes"] = estimate_changes
    if wanted("worklogs"):
        out["worklogs"] = item_rows(Worklog, ["source", "item_id", "worklog_id", "author", "started", "seconds"],
                                    col(Worklog.deleted).is_(False))
    if wanted("comments"):
        out["comments"] = item_rows(Comment, ["source", "item_id", "comment_id", "author", "created"],
                                    col(Comment.deleted).is_(False))
    if wanted("sprints"):
        sp_cols = ["source", "board_id", "sprint_id", "name", "state", "start", "end", "complete"]
        out["sprints"] = _frame(conn, sa.select(*[getattr(Sprint, c) for c in sp_cols])
                                .where(_in_sources(Sprint.source, sources)), sp_cols)
    if wanted("boards"):
        b_cols = ["source", "board_id", "name"]
        out["boards"] = _frame(conn, sa.select(col(Board.source), col(Board.board_id), col(Board.name))
                               .where(_in_sources(Board.source, sources)), b_cols)
    return out


def load_plan_frames(conn: sa.Connection, items: pd.DataFrame, sources: Sequence[str] | None = None,
                     only: Mapping[str, Collection[str]] | None = None) -> dict[str, pd.DataFrame]:
    """METRICS.md §9 and §13 frames of the live `items`: `item_plans` (current assignees, fix
    versions, epic), `assignee_changes` (full sets before and after each change), `versions`
    and `epics`."""
    from trackpulse.metrics.frames import make_frame

    live = items[["source", "item_id"]]
    p_cols = ["source", "item_id", "key", "project", "summary", "assignees", "fix_versions", "epic", "is_epic"]
    plans = _frame(conn, sa.select(*[getattr(Item, c) for c in p_cols]).where(
        col(Item.deleted).is_(False), col(Item.archived).is_(False), _in_sources(Item.source, sources),
        of_items(Item, only)), p_cols)
    plans = plans.merge(live, on=["source", "item_id"], how="inner")
    plans["assignees"] = [_as_tuple(v) for v in plans["assignees"]]
    plans["fix_versions"] = [_as_tuple(v) for v in plans["fix_versions"]]
    plans["epic"] = plans["epic"].astype(object).where(plans["epic"].notna(), None)

    a_cols = ["source", "item_id", "at", "seq", "added", "removed", "history_id"]
    deltas = _frame(conn, sa.select(*[getattr(AssigneeChange, c) for c in a_cols])
                    .where(_in_sources(AssigneeChange.source, sources), of_items(AssigneeChange, only)), a_cols)
    deltas = _ordered(deltas.merge(live, on=["source", "item_id"], how="inner"))
    assignee_changes = make_frame("assignee_changes", _full_sets(plans, deltas))

    # A version's start is a day ("YYYY-MM-DD"), not an instant: read it under another name so
    # `_frame` leaves it a string.
    v_cols = ["source", "project", "version_id", "name", "start_day", "release_date", "released"]
    versions = _frame(conn, sa.select(
        col(Version.source), col(Version.project), col(Version.version_id), col(Version.name),
        col(Version.start).label("start_day"), col(Version.release_date), col(Version.released),
    ).where(col(Version.deleted).is_(False), _in_sources(Version.source, sources)), v_cols)
    versions = versions.rename(columns={"start_day": "start"})
    versions = versions.astype(object).where(versions.notna(), None)  # a missing day is None, not NaN
    return {
        "item_plans": make_frame("item_plans", plans.to_dict("records")),
        "assignee_changes": assignee_changes,
        "versions": make_frame("versions", versions.to_dict("records")),
        "epics": make_frame("epics", _epic_rows(plans)),
    }


def _full_sets(plans: pd.DataFrame, deltas: pd.DataFrame) -> list[dict[str, Any]]:
    """Assignee deltas (added, removed) → (from set, to set) per change, walking each item's
    changes backwards from its current set: the set before the first change is the set at
    creation (Jira writes no changelog item for the assignee an issue was created with).

    One reverse pass over the ordered deltas (no per-item groupby: stores hold millions)."""
    current = dict(zip(zip(plans["source"], plans["item_id"], strict=True), plans["assignees"], strict=True))
    src, iid = deltas["source"].to_numpy(dtype=object), deltas["item_id"].to_numpy(dtype=object)
    at, seq = deltas["at"].to_numpy(), deltas["seq"].to_numpy()
    added, removed = deltas["added"].to_numpy(dtype=object), deltas["removed"].to_numpy(dtype=object)
    rows: list[dict[str, Any]] = [{}] * len(deltas)
    after: dict[tuple[str, str], tuple[str, ...]] = {}
    for k in range(len(deltas) - 1, -1, -1):
        key = (src[k], iid[k])
        to = after[key] if key in after else tuple(sorted(current.get(key, ())))
        gained = set(added[k] or ())
        before = tuple(sorted({p for p in to if p not in gained} | set(removed[k] or ())))
        rows[k] = {"source": key[0], "item_id": key[1], "at": at[k], "seq": seq[k],
                   "from_assignees": before, "to_assignees": to}
        after[key] = before
    return rows


def _epic_rows(plans: pd.DataFrame) -> list[dict[str, Any]]:
    """Every epic: the live items at the Epic level, and every epic key a live item links to. An
    epic the store does not hold (another project's) is named by its key alone."""
    known = {(s, k): (p, summ) for s, k, p, summ, e in zip(plans["source"], plans["key"], plans["project"],
                                                             plans["summary"], plans["is_epic"], strict=True) if e}
    keys = set(known)
    keys |= {(s, e) for s, e in zip(plans["source"], plans["epic"], strict=True) if e is not None}
    by_key = {(s, k): (p, summ) for s, k, p, summ in zip(plans["source"], plans["key"], plans["project"],
                                                          plans["summary"], strict=True)}
    rows = []
    for source, key in sorted(keys):
        project, summary = by_key.get((source, key), (key.rsplit("-", 1)[0], ""))
        rows.append({"source": source, "project": project, "epic": key, "summary": summary or ""})
    return rows


def _ordered(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.sort_values(["source", "item_id", "at", "history_id", "seq"], kind="stable")
    frame["seq"] = frame.groupby(["source", "item_id"]).cumcount()
    return frame.drop(columns=["history_id"]).reset_index(drop=True)


def _category(value: Any) -> Any:
    """A status missing from the catalogue (deleted from the workflow) counts as todo."""
    return "todo" if value is None or pd.isna(value) else value


def _lookup(cat: pd.Series, frame: pd.DataFrame, column: str) -> pd.Series:
    if frame.empty:
        return pd.Series([], dtype=object)
    if len(frame) <= SMALL:  # a few items' rows: a dict beats a MultiIndex's set-up
        table = dict(zip(cat.index.tolist(), cat.tolist(), strict=True))
        out = [None if pd.isna(sid) else _category(table.get((src, sid)))
               for src, sid in zip(frame["source"].tolist(), frame[column].tolist(), strict=True)]
        return pd.Series(out, index=frame.index, dtype=object)
    idx = pd.MultiIndex.from_arrays([frame["source"], frame[column]])
    values = cat.reindex(idx).to_numpy(dtype=object)
    # A status missing from the catalogue (deleted from the workflow) counts as todo.
    values = np.where(pd.isna(values) & frame[column].notna().to_numpy(), "todo", values)
    return pd.Series(values, index=frame.index, dtype=object).where(frame[column].notna(), None)


def settings_from_config(cfg: AppConfig) -> dict[str, Any]:
    """The metrics settings (sources, SLA, cost) of a loaded configuration."""
    from trackpulse.metrics.frames import (
        BusinessCalendar,
        CostSettings,
        SlaPolicy,
        SlaSettings,
        SourceSettings,
    )

    sources = {}
    for s in cfg.sources:
        if s.kind == "trello":
            sources[s.name] = SourceSettings(name=s.name, kind="trello", kloc=dict(s.kloc),
                                             iteration_days=s.iteration_days, iteration_start=s.iteration_start)
        else:
            sources[s.name] = SourceSettings(name=s.name, kind="jira", kloc=dict(s.kloc), url=s.url.rstrip("/"))
    calendars = {
        name: BusinessCalendar(name=name, timezone=c.timezone, days=tuple(c.days), hours=tuple(c.hours),
                               holidays=tuple(c.holidays))
        for name, c in cfg.sla.calendars.items()
    }
    policies = tuple(
        SlaPolicy(name=p.name, priorities=tuple(p.priorities), types=tuple(p.types), projects=tuple(p.projects),
                  response_hours=p.response_hours, resolution_hours=p.resolution_hours, calendar=p.calendar,
                  pause_statuses=tuple(p.pause_statuses), at_risk_ratio=p.at_risk_ratio)
        for p in cfg.sla.policies
    )
    budgets = {}
    for key, amount in cfg.costs.budgets.items():
        source, _, project = key.partition("/")
        budgets[(source, project)] = amount
    cost = CostSettings(currency=cfg.costs.currency, default_rate=cfg.costs.default_rate,
                        rates=dict(cfg.costs.rates), budgets=budgets)
    return {"sources": sources, "sla": SlaSettings(calendars=calendars, policies=policies), "cost": cost,
            "figures": figure_settings(cfg)}


def figure_settings(cfg: AppConfig) -> Any:
    """METRICS.md §10-§12 settings: [metrics] windows, [[kpis]], and the [[coverage]] reports (read here)."""
    from trackpulse.metrics.coverage import read_coverage
    from trackpulse.metrics.frames import FigureSettings, KpiSpec

    kpis = tuple(
        KpiSpec(name=k.name, figure=k.figure, op=k.op, target=k.target, target_change=k.target_change,
                baseline=None if k.baseline is None else (k.baseline.since, k.baseline.until),
                sources=tuple(k.sources), projects=tuple(k.projects))
        for k in cfg.kpis
    )
    coverage = {(c.source, c.project): read_coverage(c.path, where=f"coverage[{n}].path")
                for n, c in enumerate(cfg.coverage)}
    return FigureSettings(forecast_window_days=cfg.metrics.forecast_window_days,
                          forecast_horizon_days=cfg.metrics.forecast_horizon_days, kpis=kpis, coverage=coverage)


def load_input(store: Store, cfg: AppConfig, sources: Sequence[str] | None = None,
               items: Mapping[str, Collection[str]] | None = None,
               frames: Collection[str] | None = None) -> MetricsInput:
    """Everything `build_report` needs: the store's live rows and the configured settings
    (`items`: of those items only; `frames`: only these frames, the others empty and the
    projects unnamed: `load_frames`)."""
    from trackpulse.metrics.frames import MetricsInput

    with store.snapshot() as conn:
        loaded = load_frames(conn, sources, items, frames)
        if frames is None:
            loaded.update(load_plan_frames(conn, loaded["items"], sources, items))
        else:
            loaded.update({name: _empty(name) for name in ("item_plans", "assignee_changes", "versions", "epics")})
    for frame in loaded.values():
        for c, dtype in frame.dtypes.items():
            if isinstance(dtype, pd.DatetimeTZDtype) and dtype.unit != "ns":
                frame[c] = frame[c].dt.as_unit("ns")
    settings = settings_from_config(cfg)
    if sources:
        settings["sources"] = {k: v for k, v in settings["sources"].items() if k in sources}
    if frames is None:
        names = project_names(store, {k: v.kind for k, v in settings["sources"].items()})
        settings["sources"] = {k: dataclasses.replace(v, project_names=names.get(k, {}))
                               for k, v in settings["sources"].items()}
    return MetricsInput(**loaded, **settings)


def project_names(store: Store, kinds: dict[str, str]) -> dict[str, dict[str, str]]:
    """source -> project -> its name, where the store has one: the Jira project's name, the
    Trello board's (a Trello project is its board)."""
    jira = [name for name, kind in kinds.items() if kind == "jira"]
    trello = [name for name, kind in kinds.items() if kind == "trello"]
    out: dict[str, dict[str, str]] = {}
    with store.engine.connect() as conn:
        rows = list(conn.execute(sa.select(col(Project.source), col(Project.key), col(Project.name))
                                 .where(col(Project.source).in_(jira))))
        rows += conn.execute(sa.select(col(Board.source), col(Board.board_id), col(Board.name))
                             .where(col(Board.source).in_(trello)))
    for source, key, name in rows:
        if name:
            out.setdefault(source, {})[key] = name
    return out

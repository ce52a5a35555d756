"""Alert rules as pure functions: figures in, the set of conditions that hold now out.

Every `when` of ACTIONS.md ("Alert rules") is one function of a `Figures` snapshot (the
METRICS.md report, the per-item figures a report does not list, and each source's sync
state) and one rule's configuration. No I/O happens here: `inputs.py` builds the snapshot
from the store, `ledger.py` turns conditions into alert episodes.

A `Condition` names its subject by a stable string (`subject`), the unit the ledger keys
episodes on: one SLA clock (source, item id, policy, clock), one item, one project, one
board, one KPI row or one source.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from trackpulse.config import AlertRuleConfig

NEVER_REARM = frozenset({"sla_breached"})  # a clock breaches once in its life: one alert, ever


@dataclass(frozen=True)
class ItemRef:
    """How an item is addressed outside: the tracker's id (Trello card id) and its URL."""

    item_id: str
    url: str | None = None
    key: str = ""  # the key people use (Jira key, Trello shortLink)


@dataclass(frozen=True)
class WipItem:
    source: str
    project: str
    item: str  # the key people use
    item_id: str
    started: datetime


@dataclass(frozen=True)
class BudgetRow:
    source: str
    project: str
    cost: float
    budget: float


@dataclass(frozen=True)
class SyncState:
    source: str
    failed: bool
    at: datetime | None  # when the last run finished (or started)
    error: str | None = None


@dataclass
class Figures:
    """Everything the rules read, as of one instant."""

    as_of: datetime
    report: dict[str, Any]  # trackpulse.metrics/1, with "kpis" once the KPI scorecard exists
    wip: list[WipItem] = field(default_factory=list)
    budgets: list[BudgetRow] = field(default_factory=list)
    sync: list[SyncState] = field(default_factory=list)
    items: dict[tuple[str, str], ItemRef] = field(default_factory=dict)  # (source, key) -> ref


@dataclass(frozen=True)
class Condition:
    """One subject for which one rule's condition holds now, with the figure and its target."""

    rule: str
    when: str
    subject: str
    source: str
    project: str | None
    item: str | None
    item_id: str | None
    policy: str | None
    clock: str | None
    value: float | None
    target: float | None
    at: datetime  # when the condition started to hold (breached_at), else the evaluation time
    url: str | None = None


def _instant(text: str | None) -> datetime | None:
    if not text:
        return None
    return datetime.fromisoformat(text).astimezone(UTC)


def _allowed(values: Sequence[str], value: str | None) -> bool:
    return not values or (value is not None and value in values)


def _scope(rule: AlertRuleConfig, source: str, project: str | None) -> bool:
    return _allowed(rule.sources, source) and _allowed(rule.projects, project)


def _condition(rule: AlertRuleConfig, subject: str, source: str, at: datetime, **fields: Any) -> Condition:
    base: dict[str, Any] = {"project": None, "item": None, "item_id": None, "policy": None, "clock": None,
                            "value": None, "target": None, "url": None}
    base.update(fields)
    return Condition(rule=rule.name, when=rule.when, subject=subject, source=source, at=at, **base)


# --------------------------------------------------------------------------- item rules


def _sla(status: str) -> Callable[[AlertRuleConfig, Figures], list[Condition]]:
    def holds(rule: AlertRuleConfig, fig: Figures) -> list[Condition]:
        out = []
        for row in fig.report.get("sla") or []:
            if row["status"] != status or not _scope(rule, row["source"], row["project"]):
                continue
            if not _allowed(rule.policies, row["policy"]) or not _allowed(rule.clocks, row["clock"]):
                continue
            # The report names a Trello card by its id and a Jira issue by its key (METRICS.md §1);
            # the refs are indexed by both.
            ref = fig.items.get((row["source"], row["item"]))
            item_id = ref.item_id if ref else row["item"]
            key = (ref.key if ref else "") or row["item"]
            at = (_instant(row.get("breached_at")) if status == "breached" else None) or fig.as_of
            out.append(_condition(
                rule, f"{row['source']}/{item_id}/{row['policy']}/{row['clock']}", row["source"], at,
                project=row["project"], item=key, item_id=item_id, policy=row["policy"],
                clock=row["clock"], value=float(row["elapsed_hours"]), target=float(row["target_hours"]),
                url=row.get("item_url") or (ref.url if ref else None)))
        return out
    return holds


def wip_age_above(rule: AlertRuleConfig, fig: Figures) -> list[Condition]:
    out = []
    for w in fig.wip:
        if not _scope(rule, w.source, w.project):
            continue
        age = (fig.as_of - w.started).total_seconds() / 86400
        if age > rule.threshold:
            ref = fig.items.get((w.source, w.item))
            out.append(_condition(
                rule, f"{w.source}/{w.item_id}", w.source, w.started + timedelta(days=rule.threshold),
                project=w.project, item=w.item, item_id=w.item_id, value=round(age, 4), target=rule.threshold,
                url=ref.url if ref else None))
    return out


# --------------------------------------------------------------------------- project, board, KPI, source rules


def _project_figure(name: str) -> Callable[[AlertRuleConfig, Figures], list[Condition]]:
    def holds(rule: AlertRuleConfig, fig: Figures) -> list[Condition]:
        out = []
        for row in fig.report.get("projects") or []:
            value = row.get(name)
            if value is None or not _scope(rule, row["source"], row["project"]):
                continue
            if float(value) > rule.threshold:
                out.append(_condition(rule, f"{row['source']}/{row['project']}", row["source"], fig.as_of,
                                      project=row["project"], value=float(value), target=rule.threshold))
        return out
    return holds


def _closed_runs(fig: Figures) -> dict[tuple[str, str], list[tuple[datetime, float]]]:
    """Per (source, board): closed sprints (Jira) or ended iterations (Trello), oldest first."""
    runs: dict[tuple[str, str], list[tuple[datetime, float]]] = {}
    for s in fig.report.get("sprints") or []:
        done = _instant(s.get("complete")) or _instant(s.get("end"))
        if s.get("state") == "closed" and done is not None and s.get("completed_points") is not None:
            runs.setdefault((s["source"], str(s["board"])), []).append((done, float(s["completed_points"])))
    for it in fig.report.get("iterations") or []:
        end = _instant(it.get("end"))
        if end is not None and end <= fig.as_of:
            runs.setdefault((it["source"], str(it["project"])), []).append((end, float(it["completed_points"])))
    return {k: sorted(v, key=lambda r: r[0]) for k, v in runs.items()}


def velocity_drop(rule: AlertRuleConfig, fig: Figures) -> list[Condition]:
    out = []
    for (source, board), runs in sorted(_closed_runs(fig).items()):
        if len(runs) < 4 or not _scope(rule, source, board):
            continue
        latest = runs[-1][1]
        before = [points for _, points in runs[-4:-1]]
        target = (1 - rule.threshold) * sum(before) / 3
        if latest < target:
            out.append(_condition(rule, f"{source}/{board}", source, runs[-1][0], project=board,
                                  value=latest, target=round(target, 4)))
    return out


def budget_burn_above(rule: AlertRuleConfig, fig: Figures) -> list[Condition]:
    out = []
    for b in fig.budgets:
        if b.budget <= 0 or not _scope(rule, b.source, b.project):
            continue
        burn = b.cost / b.budget
        if burn > rule.threshold:
            out.append(_condition(rule, f"{b.source}/{b.project}", b.source, fig.as_of, project=b.project,
                                  value=round(burn, 6), target=rule.threshold))
    return out


def kpi_missed(rule: AlertRuleConfig, fig: Figures) -> list[Condition]:
    out = []
    for row in fig.report.get("kpis") or []:  # absent until the KPI scorecard is in the report
        source, project = row.get("source") or "", row.get("project")
        if row.get("status") != "missed" or not _scope(rule, source, project):
            continue
        value, target = row.get("value"), row.get("target")
        out.append(_condition(rule, f"{row.get('name')}/{source}/{project}", source, fig.as_of,
                              project=project, policy=row.get("name"),
                              value=None if value is None else float(value),
                              target=None if target is None else float(target)))
    return out


def sync_failed(rule: AlertRuleConfig, fig: Figures) -> list[Condition]:
    return [_condition(rule, s.source, s.source, s.at or fig.as_of)
            for s in fig.sync if s.failed and _allowed(rule.sources, s.source)]


WHEN: dict[str, Callable[[AlertRuleConfig, Figures], list[Condition]]] = {
    "sla_breached": _sla("breached"),
    "sla_at_risk": _sla("at_risk"),
    "wip_age_above": wip_age_above,
    "defect_density_above": _project_figure("defect_density_per_kloc"),
    "defects_open_above": _project_figure("defects_open"),
    "velocity_drop": velocity_drop,
    "budget_burn_above": budget_burn_above,
    "kpi_missed": kpi_missed,
    "sync_failed": sync_failed,
}


def conditions(rule: AlertRuleConfig, fig: Figures) -> list[Condition]:
    """The subjects for which `rule` holds in `fig`, one per subject."""
    seen: dict[str, Condition] = {}
    for c in WHEN[rule.when](rule, fig):
        seen.setdefault(c.subject, c)
    return list(seen.values())


def evaluate(rules: Iterable[AlertRuleConfig], fig: Figures) -> list[Condition]:
    """Every condition of every rule that holds in `fig`."""
    return [c for rule in rules for c in conditions(rule, fig)]

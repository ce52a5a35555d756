"""The figures alert rules read, built from the store through the metrics engine.

One as-of replay (`MetricsRun`) gives the METRICS.md report (all items, no window: an SLA
clock breaches whenever its item was created) and, from the same replay, what a report does
not list per item: the items in progress with their `started` instant (flow.derived_instants)
and cost against budget (effort.cost_vs_budget), only when a rule needs them. Sync state
comes from `source_state`; item ids and URLs from the item table.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import col

from trackpulse.alerts.rules import BudgetRow, Figures, ItemRef, SyncState, WipItem
from trackpulse.config import AlertRuleConfig, AppConfig, JiraSourceConfig
from trackpulse.metrics import effort, flow
from trackpulse.metrics.load import load_input
from trackpulse.metrics.report import MetricsRun, report_of
from trackpulse.store.db import Store
from trackpulse.store.models import Item, SourceState


def item_url(cfg: AppConfig, source: str, key: str) -> str | None:
    """The item's page for people: Jira's browse URL, Trello's short card URL."""
    src = next((s for s in cfg.sources if s.name == source), None)
    if isinstance(src, JiraSourceConfig):
        return f"{src.url.rstrip('/')}/browse/{key}"
    if src is not None:
        return f"https://trello.com/c/{key}"
    return None


def _item_refs(cfg: AppConfig, store: Store, sources: Sequence[str]) -> dict[tuple[str, str], ItemRef]:
    with store.session() as s:
        rows = s.execute(sa.select(col(Item.source), col(Item.key), col(Item.item_id)).where(
            col(Item.deleted).is_(False), col(Item.source).in_(list(sources)))).all()
    refs = {}
    for src, key, item_id in rows:
        ref = ItemRef(item_id, item_url(cfg, src, key), key)
        refs[(src, key)] = refs[(src, item_id)] = ref
    return refs


def _sync_states(store: Store) -> list[SyncState]:
    with store.session() as s:
        states = s.execute(sa.select(SourceState)).scalars().all()
    return [SyncState(st.name, st.last_error is not None, st.last_run_finished or st.last_run_started,
                      st.last_error) for st in states]


def _wip(run: MetricsRun) -> list[WipItem]:
    frame = flow.derived_instants(run.hist)
    frame = frame[(frame["category"] == "in_progress") & frame["started"].notna()]
    started = frame["started"].tolist()
    return [WipItem(s, p, k, i, ts.to_pydatetime())
            for (s, p, i, k), ts in zip(frame[["source", "project", "item_id", "key"]].itertuples(index=False),
                                        started, strict=True)]


def _budgets(run: MetricsRun) -> list[BudgetRow]:
    logs = effort.window_worklogs(run.hist, run.inp, run.window)
    frame = effort.cost_vs_budget(run.hist, logs, run.inp.cost)
    frame = frame[frame["budget"].notna()]
    return [BudgetRow(str(s), str(p), float(c), float(b))
            for s, p, c, b in frame[["source", "project", "cost", "budget"]].itertuples(index=False)]


def build_figures(cfg: AppConfig, store: Store, as_of: datetime,
                  rules: Sequence[AlertRuleConfig] | None = None) -> Figures:
    """The figures of every configured source as of `as_of`, for `rules` (default: all)."""
    rules = list(cfg.alerts.rules if rules is None else rules)
    whens = {r.when for r in rules}
    sources = [s.name for s in cfg.sources]
    figures = Figures(as_of=as_of, report={}, sync=_sync_states(store))
    if not sources or whens <= {"sync_failed"}:
        return figures
    inp = load_input(store, cfg, sources=sources)
    run = MetricsRun.start(inp, as_of=as_of, sources=sources)
    figures.report = report_of(run)
    if "wip_age_above" in whens:
        figures.wip = _wip(run)
    if "budget_burn_above" in whens:
        figures.budgets = _budgets(run)
    if whens & {"sla_breached", "sla_at_risk", "wip_age_above"}:
        figures.items = _item_refs(cfg, store, sources)
    return figures

"""The figures alert rules read, built from the store through the metrics engine.

One as-of replay (`MetricsRun`) gives the METRICS.md report (all items, no window: an SLA
clock breaches whenever its item was created) and, from the same replay, what a report does
not list per item: the items in progress with their `started` instant (flow.derived_instants)
and cost against budget (effort.cost_vs_budget), only when a rule needs them. Sync state
comes from `source_state`; item ids and URLs from the replayed items.

The item rules (`ITEM_WHENS`: SLA clocks, WIP age) read figures of one item's own data alone,
so after a webhook batch they need only the items it changed: `build_figures(items=...)`
reads just those items' rows and replays them: ~30 ms of CPU, not a replay of the store.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime

import pandas as pd
import sqlalchemy as sa

from trackpulse.alerts.rules import BudgetRow, Figures, ItemRef, SyncState, WipItem
from trackpulse.config import AlertRuleConfig, AppConfig, JiraSourceConfig
from trackpulse.metrics import effort, flow, sla
from trackpulse.metrics.load import ITEM_FRAMES, load_input
from trackpulse.metrics.report import MetricsRun, item_names, report_of
from trackpulse.metrics.report import _sla as sla_list
from trackpulse.store.db import Store
from trackpulse.store.models import SourceState

# Rules whose figures come from one item's own rows (so a batch's items are enough to evaluate).
ITEM_WHENS = frozenset({"sla_breached", "sla_at_risk", "wip_age_above"})


def item_url(cfg: AppConfig, source: str, key: str) -> str | None:
    """The item's page for people: Jira's browse URL, Trello's short card URL."""
    src = next((s for s in cfg.sources if s.name == source), None)
    if isinstance(src, JiraSourceConfig):
        return f"{src.url.rstrip('/')}/browse/{key}"
    if src is not None:
        return f"https://trello.com/c/{key}"
    return None


def _item_refs(cfg: AppConfig, items: pd.DataFrame) -> dict[tuple[str, str], ItemRef]:
    """Per live item of the replay, by (source, key) and by (source, item id): what the rules'
    conditions name it by (the replay's own items: every item a condition can come from)."""
    refs = {}
    for src, key, item_id in zip(items["source"], items["key"], items["item_id"], strict=True):
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


def build_figures(cfg: AppConfig, store: Store, as_of: datetime, rules: Sequence[AlertRuleConfig] | None = None,
                  items: Mapping[str, Collection[str]] | None = None) -> Figures:
    """The figures of every configured source as of `as_of`, for `rules` (default: all).

    `items` (source -> store item ids): of those items only, for item rules (`ITEM_WHENS`);
    the report then holds just their `sla` rows."""
    rules = list(cfg.alerts.rules if rules is None else rules)
    whens = {r.when for r in rules}
    if items is not None and not whens <= ITEM_WHENS | {"sync_failed"}:
        raise ValueError(f"figures of some items cannot serve rules {sorted(whens - ITEM_WHENS)}")
    sources = [s.name for s in cfg.sources]
    figures = Figures(as_of=as_of, report={}, sync=_sync_states(store) if "sync_failed" in whens else [])
    if not sources or whens <= {"sync_failed"} or (items is not None and not any(items.values())):
        return figures
    inp = load_input(store, cfg, sources=sources, items=items, frames=None if items is None else ITEM_FRAMES)
    run = MetricsRun.start(inp, as_of=as_of, sources=sources)
    if items is None:
        figures.report = report_of(run)
    elif whens & {"sla_breached", "sla_at_risk"}:
        # The report's own SLA rows (the same dicts a whole report lists), for these items.
        figures.report = {"sla": sla_list(run.hist, sla.sla_clocks(run.hist, inp), run.window,
                                          item_names(run.hist, inp))}
    if "wip_age_above" in whens:
        figures.wip = _wip(run)
    if "budget_burn_above" in whens:
        figures.budgets = _budgets(run)
    if whens & ITEM_WHENS:
        figures.items = _item_refs(cfg, inp.items)
    return figures

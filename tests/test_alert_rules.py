"""Alert rules as specifications: each `when` fires on the smallest figures that cross its
threshold and stays quiet just below it. Re-arming is the ledger's business (test_alert_ledger)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from trackpulse.alerts.rules import (
    NEVER_REARM,
    BudgetRow,
    Figures,
    ItemRef,
    SyncState,
    WipItem,
    conditions,
    evaluate,
)
from trackpulse.config import AlertRuleConfig

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def rule(when: str, **kw: Any) -> AlertRuleConfig:
    return AlertRuleConfig(name=f"r-{when}", when=when, **kw)  # type: ignore[arg-type]


def sla_row(status: str, **kw: Any) -> dict[str, Any]:
    row = {"source": "jira", "project": "OPS", "item": "OPS-1", "policy": "p1", "clock": "resolution",
           "status": status, "elapsed_hours": 9.5, "target_hours": 8.0,
           "breached_at": "2026-03-02T10:00:00Z" if status == "breached" else None}
    row.update(kw)
    return row


def test_sla_breached_fires_once_per_clock_at_breach_time() -> None:
    fig = Figures(NOW, {"sla": [sla_row("breached"), sla_row("breached", clock="response"),
                                sla_row("met", item="OPS-2")]},
                  items={("jira", "OPS-1"): ItemRef("10001", "https://j/browse/OPS-1")})
    got = conditions(rule("sla_breached"), fig)
    assert sorted(c.subject for c in got) == ["jira/10001/p1/resolution", "jira/10001/p1/response"]
    assert all(c.at == datetime(2026, 3, 2, 10, 0, tzinfo=UTC) for c in got)
    assert got[0].value == 9.5 and got[0].target == 8.0 and got[0].url == "https://j/browse/OPS-1"
    assert "sla_breached" in NEVER_REARM


def test_sla_breached_respects_policy_clock_and_project_filters() -> None:
    fig = Figures(NOW, {"sla": [sla_row("breached")]})
    assert conditions(rule("sla_breached", policies=["p2"]), fig) == []
    assert conditions(rule("sla_breached", clocks=["response"]), fig) == []
    assert conditions(rule("sla_breached", projects=["DEV"]), fig) == []
    assert len(conditions(rule("sla_breached", projects=["OPS"], policies=["p1"]), fig)) == 1


def test_sla_at_risk_fires_on_at_risk_only() -> None:
    fig = Figures(NOW, {"sla": [sla_row("at_risk"), sla_row("breached", item="OPS-2")]})
    got = conditions(rule("sla_at_risk"), fig)
    assert [c.item for c in got] == ["OPS-1"] and got[0].at == NOW


def test_wip_age_above_fires_past_threshold_days() -> None:
    old = WipItem("jira", "OPS", "OPS-1", "1", NOW - timedelta(days=6))
    young = WipItem("jira", "OPS", "OPS-2", "2", NOW - timedelta(days=4))
    got = conditions(rule("wip_age_above", threshold=5), Figures(NOW, {}, wip=[old, young]))
    assert [c.item for c in got] == ["OPS-1"]
    assert got[0].value == 6.0 and got[0].at == NOW - timedelta(days=1)


@pytest.mark.parametrize(("when", "field"), [("defect_density_above", "defect_density_per_kloc"),
                                             ("defects_open_above", "defects_open")])
def test_project_figures_fire_above_threshold(when: str, field: str) -> None:
    fig = Figures(NOW, {"projects": [{"source": "jira", "project": "OPS", field: 3},
                                     {"source": "jira", "project": "DEV", field: 2},
                                     {"source": "jira", "project": "NIL", field: None}]})
    got = conditions(rule(when, threshold=2), fig)
    assert [(c.subject, c.value) for c in got] == [("jira/OPS", 3.0)]


def _sprints(points: list[float]) -> list[dict[str, Any]]:
    return [{"source": "jira", "board": 7, "state": "closed", "completed_points": p,
             "complete": (NOW - timedelta(days=14 * (len(points) - i))).isoformat()}
            for i, p in enumerate(points)]


def test_velocity_drop_compares_latest_with_mean_of_three_before() -> None:
    r = rule("velocity_drop", threshold=0.3)
    assert [c.subject for c in conditions(r, Figures(NOW, {"sprints": _sprints([10, 10, 10, 6])}))] == ["jira/7"]
    assert conditions(r, Figures(NOW, {"sprints": _sprints([10, 10, 10, 8])})) == []
    assert conditions(r, Figures(NOW, {"sprints": _sprints([10, 10, 1])})) == []  # needs four


def test_budget_burn_above_fires_on_cost_over_budget_ratio() -> None:
    fig = Figures(NOW, {}, budgets=[BudgetRow("jira", "OPS", 95, 100), BudgetRow("jira", "DEV", 50, 100),
                                    BudgetRow("jira", "NIL", 5, 0)])
    got = conditions(rule("budget_burn_above", threshold=0.9), fig)
    assert [(c.project, c.value) for c in got] == [("OPS", 0.95)]


def test_kpi_missed_fires_on_missed_rows() -> None:
    fig = Figures(NOW, {"kpis": [{"name": "lead", "source": "jira", "project": "OPS", "status": "missed",
                                  "value": 12, "target": 10},
                                 {"name": "lead", "source": "jira", "project": "DEV", "status": "met",
                                  "value": 8, "target": 10}]})
    got = conditions(rule("kpi_missed"), fig)
    assert [(c.subject, c.value, c.target) for c in got] == [("lead/jira/OPS", 12.0, 10.0)]


def test_sync_failed_fires_per_failed_source() -> None:
    fig = Figures(NOW, {}, sync=[SyncState("jira", True, NOW, "boom"), SyncState("trello", False, NOW)])
    assert [c.subject for c in conditions(rule("sync_failed"), fig)] == ["jira"]
    assert conditions(rule("sync_failed", sources=["trello"]), fig) == []


def test_nothing_fires_on_empty_figures() -> None:
    whens = ["sla_breached", "sla_at_risk", "wip_age_above", "defect_density_above", "defects_open_above",
             "velocity_drop", "budget_burn_above", "kpi_missed", "sync_failed"]
    assert evaluate([rule(w) for w in whens], Figures(NOW, {})) == []

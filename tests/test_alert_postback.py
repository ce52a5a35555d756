"""Post-back end to end on the Jira simulator (Cloud and Data Center): sync, evaluate, dispatch. Each breached
clock gets exactly one comment (ADF on Cloud, wiki markup on DC) carrying its marker and the rule's label; the issue's other
labels stay as they were; a second run posts nothing."""

from __future__ import annotations

import httpx
import pytest
import sqlalchemy as sa
from conftest import JiraSimFactory
from trackpulse.connectors.jira import open_connector

from trackpulse.alerts import evaluate_and_dispatch
from trackpulse.config import AppConfig
from trackpulse.store.db import Store
from trackpulse.store.models import Delivery
from trackpulse.sync_api import NoProgress


@pytest.mark.parametrize("profile", ["cloud", "dc"])
def test_sla_breach_posts_one_comment_and_adds_only_its_label(
    profile: str, jira_sim: JiraSimFactory, store: Store
) -> None:
    """Cloud takes an ADF comment on v3, Data Center a wiki-markup one on v2 (each refuses the other)."""
    sim = jira_sim(profile, seed=3, projects=1, issues_per_project=12)
    src = sim.source(name="jira")
    open_connector(src).sync(store, full=True, progress=NoProgress())
    cfg = AppConfig.model_validate({
        "sources": [src.model_dump(mode="python") | {"token": src.token.get_secret_value()}],
        "sla": {"policies": [{"name": "p1", "resolution_hours": 1}]},
        "alerts": {"rules": [{"name": "late", "when": "sla_breached", "clocks": ["resolution"],
                              "post_back": ["comment", "label"], "label": "sla-late"}]}})
    world = sim.world
    labels_before = {i.key: set(i.labels) for i in world.issues.values()}
    comments_before = {i.key: len(i.live_comments) for i in world.issues.values()}

    with httpx.Client() as http:
        first = evaluate_and_dispatch(cfg, store, as_of=world.now, http=http)
        assert first.opened and first.dispatch is not None
        assert first.dispatch.failed == 0 and first.dispatch.retry == 0
        breached = {c.item for c in first.conditions}
        again = evaluate_and_dispatch(cfg, store, as_of=world.now, http=http)
    assert again.opened == [] and again.dispatch is not None and again.dispatch.messages == 0

    for issue in world.issues.values():
        new = issue.live_comments[comments_before[issue.key]:]
        if issue.key in breached:
            assert len(new) == 1 and "late" in new[0].body
            assert any(alert_id in new[0].body for alert_id in first.opened)  # the marker
            assert set(issue.labels) == labels_before[issue.key] | {"sla-late"}
        else:
            assert new == [] and set(issue.labels) == labels_before[issue.key]
    with store.session() as s:
        assert set(s.execute(sa.select(Delivery.status)).scalars()) == {"sent"}

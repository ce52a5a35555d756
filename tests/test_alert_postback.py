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
from trackpulse.outcomes import Sent
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


def test_a_comment_posted_by_an_attempt_that_died_is_not_posted_again(
    jira_sim: JiraSimFactory, store: Store
) -> None:
    from trackpulse.connectors.jira.postback import JiraPostBack

    from trackpulse.alerts.inputs import build_figures
    from trackpulse.alerts.ledger import record
    from trackpulse.alerts.rules import evaluate
    from trackpulse.delivery import outbox

    sim = jira_sim("cloud", seed=3, projects=1, issues_per_project=6)
    src = sim.source(name="jira")
    open_connector(src).sync(store, full=True, progress=NoProgress())
    cfg = AppConfig.model_validate({
        "sources": [src.model_dump(mode="python") | {"token": src.token.get_secret_value()}],
        "sla": {"policies": [{"name": "p1", "resolution_hours": 1}]},
        "alerts": {"rules": [{"name": "late", "when": "sla_breached", "clocks": ["resolution"],
                              "post_back": ["comment"]}]}})
    world = sim.world
    with store.session() as s:
        opened = record(s, cfg, cfg.alerts.rules, evaluate(cfg.alerts.rules, build_figures(cfg, store, world.now)),
                        world.now).opened
        s.commit()
    with store.session() as s:
        row = s.execute(sa.select(Delivery)).scalars().first()
    assert opened and row is not None and row.payload is not None
    alert = next(a for a in opened if a.id == row.alert_id)
    # The earlier attempt: counted, posted, then the process died before recording the outcome.
    outbox.count_attempt(store, [row.id], world.now)
    with httpx.Client() as http:
        pb = JiraPostBack.detect(src, http, None)
        segments = [(str(t), bool(b)) for t, b in row.payload["segments"]]
        assert isinstance(pb.post_comment(alert.item or "", segments, row.payload["marker"], check_first=False),
                          Sent)
        issue = next(i for i in world.issues.values() if i.key == alert.item)
        before = len(issue.live_comments)
        result = evaluate_and_dispatch(cfg, store, as_of=world.now, http=http)
    assert result.dispatch is not None and result.dispatch.failed == 0
    assert len(issue.live_comments) == before  # found by its marker, not posted twice
    with store.session() as s:
        again = s.get(Delivery, row.id)
        assert again is not None and again.status == "sent" and again.attempts == 2


def test_after_the_tracker_moves_on_and_a_sync_runs_only_the_new_breaches_are_posted(
    jira_sim: JiraSimFactory, store: Store
) -> None:
    from datetime import timedelta

    sim = jira_sim("cloud", seed=3, projects=1, issues_per_project=8)
    src = sim.source(name="jira")
    connector = open_connector(src)
    connector.sync(store, full=True, progress=NoProgress())
    cfg = AppConfig.model_validate({
        "sources": [src.model_dump(mode="python") | {"token": src.token.get_secret_value()}],
        "sla": {"policies": [{"name": "p1", "resolution_hours": 1}]},
        "alerts": {"rules": [{"name": "late", "when": "sla_breached", "clocks": ["resolution"],
                              "post_back": ["comment"]}]}})
    world = sim.world
    marked = lambda: {i.key: sum("trackpulse alert id" in c.body for c in i.live_comments)
                      for i in world.issues.values()}
    with httpx.Client() as http:
        first = evaluate_and_dispatch(cfg, store, as_of=world.now, http=http)
        before = marked()
        assert first.opened and sum(before.values()) == len(first.opened)
        # New issues arrive and sit open for hours: their clocks breach; the old ones stay posted once.
        fresh = [world.create_issue("ABC", issue_type="Bug", summary=f"fresh {n}").key for n in range(3)]
        world.advance(timedelta(hours=4))
        connector.sync(store, progress=NoProgress())
        second = evaluate_and_dispatch(cfg, store, as_of=world.now, http=http)
    after = marked()
    assert sorted(c.item for c in second.conditions if c.subject in
                  {s for r, s in second.opened_subjects}) == sorted(fresh)
    assert {k: n - before.get(k, 0) for k, n in after.items() if n != before.get(k, 0)} == {k: 1 for k in fresh}

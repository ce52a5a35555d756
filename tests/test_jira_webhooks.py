"""Jira webhooks and re-derivation: one mapping, one writer, whatever order deliveries come in."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from conftest import JiraSimFactory, StoreFactory, assert_same_rows, store_rows
from trackpulse.connectors.jira import apply_webhook, open_connector, rederive

from trackpulse.simulator.jira_render import JiraRenderer
from trackpulse.simulator.jira_world import PROFILES
from trackpulse.simulator.webhooks import jira_webhook_payload
from trackpulse.store.db import Store
from trackpulse.store.models import EstimateChange, History, Item, Sprint

# Item columns a webhook must agree on with a sync. `updated` and `raw` are left out: the
# simulator, unlike Jira, fires no `jira:issue_updated` for worklogs and comments.
ITEM_COLUMNS = (
    "item_id",
    "key",
    "project",
    "type",
    "priority",
    "is_defect",
    "status_id",
    "status_name",
    "status_category",
    "points",
    "sprint_ids",
    "resolved_at",
    "assignee",
    "deleted",
)


def _items(store: Store, source: str) -> set[tuple[Any, ...]]:
    with store.session() as s:
        rows = s.execute(
            sa.select(*[getattr(Item, c) for c in ITEM_COLUMNS]).where(Item.source == source)
        ).all()
    return {tuple(str(v) if isinstance(v, list) else v for v in r) for r in rows}


@pytest.mark.parametrize("profile", ["cloud", "dc"])
def test_webhooks_applied_twice_and_out_of_order_leave_the_store_as_a_full_sync_would(
    profile: str, jira_sim: JiraSimFactory, store_factory: StoreFactory
) -> None:
    sim = jira_sim(profile, seed=8, issues_per_project=30)
    world, cfg = sim.world, sim.source()
    store = store_factory()
    open_connector(cfg).sync(store, full=True)
    renderer = JiraRenderer(world, PROFILES[profile], sim.base_url, api_version=2)

    deliveries: list[dict[str, Any]] = []

    def deliver() -> None:
        # Render at once: a delivery carries the issue as it was at the event.
        nonlocal seen
        deliveries.extend(jira_webhook_payload(world, renderer, ev) for ev in world.events[seen:])
        seen = len(world.events)

    seen = len(world.events)
    issues = sorted(world.live_issues(), key=lambda i: i.nid)
    a, b, c = issues[0], issues[1], issues[2]
    world.advance(timedelta(hours=1))
    wf = world.projects[a.project_key].workflow
    world.add_transition(a.nid, wf.in_progress if a.status != wf.in_progress else wf.done)
    deliver()
    world.advance(timedelta(minutes=5))
    world.set_story_points(a.nid, 8.0)
    deliver()
    wl = world.add_worklog(b.nid, 5400)
    deliver()
    world.advance(timedelta(minutes=5))
    world.update_worklog(wl.id, 7200)
    deliver()
    gone = world.add_worklog(b.nid, 600)
    deliver()
    world.delete_worklog(gone.id)
    deliver()
    world.add_comment(c.nid, "Reproduced on staging.")
    deliver()
    new = world.create_issue(a.project_key, issue_type="Bug", points=3.0)
    deliver()
    active = next((s for s in world.sprints.values() if s.state == "active"), None)
    if active is not None:
        world.add_to_sprint(new.nid, active.id)
        deliver()
        world.advance(timedelta(hours=2))
        world.close_sprint(active.id)
        deliver()
    world.delete_issue(c.nid)
    deliver()
    world.advance(timedelta(minutes=2))

    outcomes = [
        apply_webhook(store, cfg, d, {"X-Atlassian-Webhook-Identifier": str(i)})
        for i, d in enumerate(deliveries)
    ]
    assert all(o.outcome != "ignored" for o in outcomes)
    before = (_items(store, cfg.name), store_rows(store, cfg.name, with_raw=False))
    # Every delivery again (Jira retries), then the oldest issue update late: nothing changes.
    for d in deliveries:
        apply_webhook(store, cfg, d, {})
    first_update = next(d for d in deliveries if d["webhookEvent"] == "jira:issue_updated")
    apply_webhook(store, cfg, first_update, {})
    assert (_items(store, cfg.name), store_rows(store, cfg.name, with_raw=False)) == before

    with store.session() as s:
        hist = s.execute(sa.select(History.history_id).where(History.item_id == a.id)).scalars().all()
        assert str(a.histories[-1].id) in hist  # the changelog became a history row keyed by its id
        assert s.get(Item, (cfg.name, c.id)).deleted  # type: ignore[union-attr]

    fresh = store_factory()
    open_connector(cfg).sync(fresh, full=True)
    assert _items(store, cfg.name) - {r for r in _items(store, cfg.name) if r[0] == c.id} == _items(
        fresh, cfg.name
    )
    got, want = store_rows(store, cfg.name, with_raw=False), store_rows(fresh, cfg.name, with_raw=False)
    for table in ("item", "history"):
        # item: `updated` differs (see ITEM_COLUMNS); history: Cloud's sync reads only status,
        # Sprint and story-point histories while a webhook brings every change.
        got.pop(table), want.pop(table)
    assert_same_rows(got, want)


def test_a_changed_story_points_field_is_rederived_from_raw_json_without_downloading(
    jira_sim: JiraSimFactory, store: Store
) -> None:
    sim = jira_sim("cloud", seed=12, issues_per_project=30)
    cfg = sim.source()
    open_connector(cfg).sync(store, full=True)
    original = store_rows(store, cfg.name)
    with store.session() as s:
        assert s.execute(sa.select(sa.func.count()).select_from(EstimateChange)).scalar()

    sim.stats.reset()
    other = sim.source(story_points_field="customfield_99999", defect_types=["Story"])
    assert rederive(store, other) == 60
    assert sim.stats.total == 0
    with store.session() as s:
        items = s.execute(sa.select(Item).where(Item.source == cfg.name)).scalars().all()
        assert all(i.points is None for i in items)
        assert {i.is_defect for i in items} == {True, False}
        assert all(i.is_defect == (i.type == "Story") for i in items)
        assert s.execute(sa.select(sa.func.count()).select_from(EstimateChange)).scalar() == 0

    # Back to discovery through a sync: the mapping hash changed, so it re-derives.
    result = open_connector(cfg).sync(store)
    assert result.items < 60  # only the overlap window was fetched again
    assert_same_rows(store_rows(store, cfg.name), original)


def test_sprint_webhooks_upsert_and_delete_sprints(jira_sim: JiraSimFactory, store: Store) -> None:
    sim = jira_sim("dc", seed=13, issues_per_project=10)
    cfg = sim.source()
    open_connector(cfg).sync(store, full=True)
    body = {
        "timestamp": 1772442000000,
        "webhookEvent": "sprint_created",
        "sprint": {
            "id": 999,
            "self": "x",
            "state": "future",
            "name": "Hardening",
            "originBoardId": 1,
            "goal": "",
        },
    }
    apply_webhook(store, cfg, body, {})
    with store.session() as s:
        sp = s.get(Sprint, (cfg.name, "999"))
        assert sp is not None and sp.state == "future" and sp.board_id == "1"
    apply_webhook(store, cfg, {**body, "webhookEvent": "sprint_deleted"}, {})
    with store.session() as s:
        assert s.get(Sprint, (cfg.name, "999")) is None


def test_a_burst_applied_as_one_batch_leaves_the_store_as_one_by_one_and_isolates_a_bad_delivery(
    jira_sim: JiraSimFactory, store_factory: StoreFactory
) -> None:
    """The queue applies what has queued up in one transaction (`apply_webhooks`): repeats of one
    item, deletions and sprint changes in between, a malformed delivery in the middle. The store
    ends as applying them one at a time does; the bad one alone fails, with its reason."""
    from trackpulse.config import parse_config
    from trackpulse.server.webhook_queue import WebhookQueue

    sim = jira_sim("cloud", seed=9, issues_per_project=30)
    world, cfg = sim.world, sim.source()
    renderer = JiraRenderer(world, PROFILES["cloud"], sim.base_url, api_version=2)
    one_by_one, batched = store_factory(), store_factory()
    for s in (one_by_one, batched):
        open_connector(cfg).sync(s, full=True)
    seen = len(world.events)
    bodies: list[dict[str, Any]] = []
    for step in range(12):
        world.advance(timedelta(minutes=7))
        world.mutate(step, 0.2)
        bodies += [jira_webhook_payload(world, renderer, ev) for ev in world.events[seen:]]
        seen = len(world.events)
    assert len(bodies) > 30
    keys = [b["issue"]["id"] for b in bodies if "issue" in b and b["webhookEvent"] == "jira:issue_updated"]
    assert len(keys) > len(set(keys))  # one item changed more than once inside the batch
    bad = {"webhookEvent": "jira:issue_updated", "issue": {}}
    bodies.insert(len(bodies) // 2, bad)

    for i, body in enumerate(bodies):
        if body is bad:
            continue
        apply_webhook(one_by_one, cfg, body, {"X-Atlassian-Webhook-Identifier": f"d{i}"})

    app_cfg = parse_config({"store": {"url": "sqlite://"}, "sources": [cfg.model_dump(mode="json")]})
    queue = WebhookQueue(app_cfg, batched, poll_seconds=60)
    batches: list[int] = []
    queue.on_batch = lambda n, _items: batches.append(n)
    for i, body in enumerate(bodies):  # stored before the worker starts: it finds them all at once
        assert queue.accept(cfg.name, f"d{i}", body["webhookEvent"], body, {"X-Atlassian-Webhook-Identifier": f"d{i}"})
    queue.start()
    try:
        assert queue.wait_idle(60)
    finally:
        queue.stop()
    assert batches == [len(bodies)]  # one batch
    assert (_items(batched, cfg.name), store_rows(batched, cfg.name, with_raw=False)) == (
        _items(one_by_one, cfg.name), store_rows(one_by_one, cfg.name, with_raw=False))
    from trackpulse.store.models import WebhookDelivery

    with batched.session() as s:
        rows = {r.delivery_id: r for r in s.execute(sa.select(WebhookDelivery)).scalars()}
    bad_id = f"d{bodies.index(bad)}"
    assert rows[bad_id].failure == "permanent" and "issue id" in (rows[bad_id].error or "")
    assert all(r.processed_at is not None and r.attempts == 1 for k, r in rows.items() if k != bad_id)

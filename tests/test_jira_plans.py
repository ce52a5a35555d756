"""Jira plans (issue 9): assignee history, fix versions and project versions, epics; synced,
re-derived from raw JSON and applied from webhooks through the one mapping."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from conftest import JiraSimFactory
from trackpulse.connectors.jira import apply_webhook, open_connector, rederive
from trackpulse.connectors.jira import mapping as jm

from trackpulse.simulator.jira_render import JiraRenderer
from trackpulse.simulator.jira_world import EPIC_TYPE, F_ASSIGNEE, PROFILES
from trackpulse.simulator.webhooks import jira_webhook_payload
from trackpulse.store.db import Store
from trackpulse.store.models import AssigneeChange, Item, Version


def _items(store: Store, source: str) -> dict[str, Item]:
    with store.session() as s:
        return {i.item_id: i for i in s.execute(sa.select(Item).where(Item.source == source)).scalars()}


def _versions(store: Store, source: str) -> dict[str, Version]:
    with store.session() as s:
        return {v.version_id: v for v in s.execute(sa.select(Version).where(Version.source == source)).scalars()}


@pytest.mark.parametrize("profile", ["cloud", "dc"])
def test_full_sync_stores_assignees_fix_versions_epics_and_versions_as_the_simulator_holds(
    profile: str, jira_sim: JiraSimFactory, store: Store
) -> None:
    sim = jira_sim(profile, seed=3, issues_per_project=60)
    world, cfg = sim.world, sim.source()
    open_connector(cfg).sync(store, full=True)
    items = _items(store, cfg.name)
    for issue in world.live_issues():
        it = items[issue.id]
        assert it.assignees == ([world.users[issue.assignee].display_name] if issue.assignee else [])
        assert it.fix_versions == [str(v) for v in issue.fix_versions]
        assert it.epic == (world.issues[issue.epic].key if issue.epic is not None else None)
        assert it.is_epic == (issue.issue_type == EPIC_TYPE)
    with store.session() as s:
        changes = Counter(s.execute(sa.select(AssigneeChange.item_id).where(
            AssigneeChange.source == cfg.name)).scalars())
    assert changes == Counter({i.id: n for i in world.live_issues()
                               if (n := sum(x.field == F_ASSIGNEE for h in i.histories for x in h.items))})
    versions = _versions(store, cfg.name)
    assert {k: (v.project, v.name, v.released, v.archived) for k, v in versions.items()} == {
        str(v.id): (v.project_key, v.name, v.released, v.archived) for v in world.versions.values()}
    dated = next(v for v in world.versions.values() if v.start and v.release)
    assert (versions[str(dated.id)].start, versions[str(dated.id)].release_date) == (
        dated.start.isoformat(), dated.release.isoformat())


@pytest.mark.parametrize("profile", ["cloud", "dc"])
def test_incremental_sync_reads_releases_reassignments_and_deleted_versions(
    profile: str, jira_sim: JiraSimFactory, store: Store
) -> None:
    sim = jira_sim(profile, seed=4, issues_per_project=20, projects=2)
    world, cfg = sim.world, sim.source()
    connector = open_connector(cfg)
    connector.sync(store, full=True)
    world.advance(timedelta(hours=1))
    issue = next(i for i in world.live_issues() if i.issue_type != EPIC_TYPE)
    user = next(u for u in world.users if u not in (issue.assignee, "sim"))
    world.set_assignee(issue.nid, user)
    unreleased = next(v for v in world.versions.values() if not v.released and v.release)
    world.release_version(unreleased.id)
    gone = next(v for v in world.versions.values() if v.name == "2.0")
    world.delete_version(gone.id)  # also takes it off every issue
    world.advance(timedelta(minutes=5))
    connector.sync(store)
    it = _items(store, cfg.name)[issue.id]
    assert it.assignees == [world.users[user].display_name]
    versions = _versions(store, cfg.name)
    assert versions[str(unreleased.id)].released and versions[str(gone.id)].deleted
    assert not any(str(gone.id) in (i.fix_versions or []) for i in _items(store, cfg.name).values() if not i.deleted)


@pytest.mark.parametrize("profile", ["cloud", "dc"])
def test_version_and_epic_webhooks_apply_through_the_sync_mapping(
    profile: str, jira_sim: JiraSimFactory, store: Store
) -> None:
    sim = jira_sim(profile, seed=5, issues_per_project=20)
    world, cfg = sim.world, sim.source()
    open_connector(cfg).sync(store, full=True)
    renderer = JiraRenderer(world, PROFILES[profile], sim.base_url, api_version=2)
    first = len(world.events)
    world.advance(timedelta(minutes=10))
    project = min(world.projects)
    created = world.create_version(project, "3.0")
    released = world.release_version(next(v.id for v in world.project_versions(project) if not v.released))
    epic = next(i for i in world.live_issues() if i.issue_type == EPIC_TYPE)
    child = next(i for i in world.live_issues() if i.issue_type != EPIC_TYPE and i.epic != epic.nid
                 and i.project_key == epic.project_key)
    world.set_epic(child.nid, epic.nid)
    world.set_fix_versions(child.nid, (created.id,))
    payloads = [jira_webhook_payload(world, renderer, ev) for ev in world.events[first:]]
    for n, body in enumerate(payloads * 2):  # twice: a redelivery changes nothing
        assert apply_webhook(store, cfg, body, {"X-Atlassian-Webhook-Identifier": str(n)}).outcome == "applied"
    versions = _versions(store, cfg.name)
    assert (versions[str(created.id)].project, versions[str(created.id)].name) == (project, "3.0")
    assert versions[str(released.id)].released
    it = _items(store, cfg.name)[child.id]
    assert (it.epic, it.fix_versions) == (epic.key, [str(created.id)])


def test_rederive_rebuilds_assignee_history_and_epic_links_from_stored_raw_json(
    jira_sim: JiraSimFactory, store: Store
) -> None:
    sim = jira_sim("dc", seed=6, issues_per_project=30)
    cfg = sim.source()
    open_connector(cfg).sync(store, full=True)

    def snapshot() -> tuple[list[tuple[Any, ...]], list[tuple[str, ...]]]:
        with store.session() as s:
            changes = sorted(tuple(r) for r in s.execute(sa.select(
                AssigneeChange.item_id, AssigneeChange.history_id, AssigneeChange.added, AssigneeChange.removed)))
            plans = sorted(tuple(str(x) for x in r) for r in s.execute(sa.select(
                Item.item_id, Item.assignees, Item.fix_versions, Item.epic, Item.is_epic)))
        return changes, plans

    before = snapshot()
    assert any(p[3] != "None" for p in before[1]), "no epic links synced"
    with store.transaction() as s:
        s.execute(sa.delete(AssigneeChange))
        s.execute(sa.update(Item).values(assignees=None, fix_versions=None, epic=None, is_epic=False))
    rederive(store, cfg)
    assert snapshot() == before


def test_epic_link_field_is_found_by_its_schema_custom_type() -> None:
    fields = [{"id": "customfield_10101", "name": "Epic Link",
               "schema": {"type": "any", "custom": "com.pyxis.greenhopper.jira:gh-epic-link"}},
              {"id": "customfield_10102", "name": "Epic Name",
               "schema": {"type": "string", "custom": "com.pyxis.greenhopper.jira:gh-epic-label"}}]
    m = jm.discover_mapping("Server", fields, [], [], story_points_field="auto", defect_types=["Bug"])
    assert m.epic_link_field == "customfield_10101"
    assert jm.JiraMapping.from_json(m.to_json()).epic_link_field == "customfield_10101"
    issue = {"id": "1", "key": "ABC-2", "fields": {"created": "2026-01-01T00:00:00.000+0000",
                                                   "customfield_10101": "ABC-1", "issuetype": {"name": "Story"}}}
    assert jm.map_issue("dc", issue, m).epic == "ABC-1"


def test_cloud_parent_is_an_epic_only_at_the_epic_hierarchy_level() -> None:
    m = jm.JiraMapping()

    def issue(level: int) -> dict[str, object]:
        return {"id": "2", "key": "ABC-2", "fields": {
            "created": "2026-01-01T00:00:00.000+0000", "issuetype": {"name": "Sub-task", "hierarchyLevel": -1},
            "parent": {"id": "1", "key": "ABC-1", "fields": {"issuetype": {"name": "X", "hierarchyLevel": level}}}}}

    assert jm.map_issue("c", issue(1), m).epic == "ABC-1"
    assert jm.map_issue("c", issue(0), m).epic is None  # a sub-task's parent story is not its epic


def test_assignee_changelog_item_is_a_delta_of_display_names() -> None:
    h = jm.map_history("1", {"id": "9", "created": "2026-01-02T00:00:00.000+0000", "items": [
        {"field": "assignee", "fieldtype": "jira", "from": "jdoe", "fromString": "Jane Doe", "to": None,
         "toString": None}]}, jm.JiraMapping())
    assert [(a.added, a.removed) for a in h.assignee_changes] == [((), ("Jane Doe",))]

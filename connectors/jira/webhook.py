"""Applying one verified Jira webhook delivery to the store, through the sync's own mapping.

The server module verifies the signature and deduplicates by `X-Atlassian-Webhook-Identifier`;
this function is nevertheless idempotent on its own: items are upserted under the writer's
`newer_than` guard (an older `updated` never overwrites newer data), the changelog becomes a
history row keyed by `changelog.id` (insert-or-ignore), deletions are tombstones that only move
forward. The mapping (story-points field, Sprint field, status catalogue) is the one the last
sync persisted in the cursor `meta.fields`; without it, the payload's own status category is used.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session
from sqlmodel import col
from trackpulse.connectors.jira import mapping as jm
from trackpulse.connectors.jira.rederive import mapping_for

from trackpulse.config import JiraSourceConfig
from trackpulse.errors import WebhookRejected
from trackpulse.records import ItemBundle
from trackpulse.store.db import Store
from trackpulse.store.models import Project, Version
from trackpulse.store.writer import (
    apply_bundles,
    delete_comments,
    delete_sprints,
    delete_versions,
    delete_worklogs,
    mark_items_deleted,
    upsert_sprints,
    upsert_versions,
)
from trackpulse.sync_api import WebhookResult

ISSUE_EVENTS = {"jira:issue_created", "jira:issue_updated"}
SPRINT_EVENTS = {"sprint_created", "sprint_updated", "sprint_started", "sprint_closed"}
VERSION_EVENTS = {"jira:version_created", "jira:version_updated", "jira:version_released",
                  "jira:version_unreleased", "jira:version_moved"}


def _event_time(body: Mapping[str, Any]) -> datetime | None:
    ts = body.get("timestamp")
    return jm.parse_time(ts) if ts not in (None, "") else None


def _issue_id(body: Mapping[str, Any], event: str) -> str:
    issue = body.get("issue") or {}
    if issue.get("id") is None:
        raise WebhookRejected(400, f"Jira webhook {event} has no issue id")
    return str(issue["id"])


@dataclass
class Batch:
    """Item bundles of consecutive deliveries, written together (one `apply_bundles`, a few
    statements, instead of a few statements per delivery). A delivery for an item already held,
    or one that writes by other means (deletions, sprints, versions), writes what is held first:
    the store sees every change in arrival order."""

    s: Session
    source: str
    bundles: list[ItemBundle] = field(default_factory=list)
    complete: set[str] = field(default_factory=set)  # items held with a complete worklog or comment list
    items: set[str] = field(default_factory=set)

    def add(self, bundle: ItemBundle) -> None:
        # Two deliveries of one item may share a write: `apply_bundles` runs their rows in order,
        # one after another. Only a complete child list (which deletes what it lacks) is written
        # before another delivery of its item is taken.
        full = bundle.worklogs is not None or bundle.comments is not None
        if bundle.item_id in self.complete or (full and bundle.item_id in self.items):
            self.flush()
        self.bundles.append(bundle)
        self.items.add(bundle.item_id)
        if full:
            self.complete.add(bundle.item_id)

    def flush(self) -> None:
        if self.bundles:
            apply_bundles(self.s, self.source, self.bundles)
        self.bundles, self.items, self.complete = [], set(), set()


@dataclass(frozen=True)
class Delivery:
    """One delivery being applied, inside its batch's transaction."""

    s: Session
    source: str
    m: jm.JiraMapping
    body: dict[str, Any]
    event: str
    at: datetime | None
    id: str
    batch: Batch


def _issue_changed(d: Delivery) -> WebhookResult:
    issue = d.body.get("issue") or {}
    iid = _issue_id(d.body, d.event)
    item = jm.map_issue(d.source, issue, d.m)
    histories = []
    cl = d.body.get("changelog") or {}
    if cl.get("id") is not None and cl.get("items"):
        # Jira stamps the change and the issue's `updated` together and fires the event a little
        # later; a payload rendered after further changes carries a newer `updated`. The earlier
        # of the two is the change's instant either way.
        when = (jm.parse_time(cl["created"]) if cl.get("created")
                else (min(item.updated, d.at) if d.at is not None else item.updated))
        raw = {"id": str(cl["id"]), "author": d.body.get("user"), "created": when.isoformat(), "items": cl["items"]}
        histories.append(jm.map_history(iid, raw, d.m, at=when))
    wl, _ = jm.inline_page(issue, "worklog", "worklogs")
    cm, _ = jm.inline_page(issue, "comment", "comments")
    d.batch.add(ItemBundle(
        item=item, item_id=iid, histories=histories,
        partial_worklogs=[jm.map_worklog(w, iid) for w in wl],
        partial_comments=[jm.map_comment(c, iid) for c in cm],
    ))
    return WebhookResult("applied", d.event, item.key, f"delivery {d.id}" + (
        f", history {histories[0].history_id}" if histories else ""), items=(iid,))


def _issue_deleted(d: Delivery) -> WebhookResult:
    iid = _issue_id(d.body, d.event)
    when = d.at or jm.parse_time((d.body.get("issue") or {}).get("fields", {}).get("updated"))
    if mark_items_deleted(d.s, d.source, [iid], when, with_worklogs=True):
        return WebhookResult("deleted", d.event, iid, f"delivery {d.id}", items=(iid,))
    return WebhookResult("ignored", d.event, iid, f"delivery {d.id}: already deleted or unknown", items=())


def _comment_changed(d: Delivery) -> WebhookResult:
    iid = _issue_id(d.body, d.event)
    c = jm.map_comment(d.body["comment"], iid)
    d.batch.add(ItemBundle(item=None, item_id=iid, partial_comments=[c]))
    return WebhookResult("applied", d.event, c.comment_id, f"on {iid}, delivery {d.id}", items=(iid,))


def _named_item(*ids: Any) -> tuple[str, ...] | None:
    """The item a deletion names, when its payload does (else: any item may have changed)."""
    for iid in ids:
        if iid is not None:
            return (str(iid),)
    return None


def _comment_deleted(d: Delivery) -> WebhookResult:
    cid = str((d.body.get("comment") or {}).get("id"))
    delete_comments(d.s, d.source, [cid])
    return WebhookResult("deleted", d.event, cid, f"delivery {d.id}",
                         items=_named_item((d.body.get("issue") or {}).get("id")))


def _worklog_changed(d: Delivery) -> WebhookResult:
    w = jm.map_worklog(d.body["worklog"])
    d.batch.add(ItemBundle(item=None, item_id=w.item_id, partial_worklogs=[w]))
    return WebhookResult("applied", d.event, w.worklog_id, f"on {w.item_id}, delivery {d.id}", items=(w.item_id,))


def _worklog_deleted(d: Delivery) -> WebhookResult:
    worklog = d.body.get("worklog") or {}
    wid = str(worklog.get("id"))
    delete_worklogs(d.s, d.source, [wid])
    return WebhookResult("deleted", d.event, wid, f"delivery {d.id}",
                         items=_named_item(worklog.get("issueId"), (d.body.get("issue") or {}).get("id")))


def _sprint_changed(d: Delivery) -> WebhookResult:
    sp = jm.map_sprint(d.body["sprint"])
    upsert_sprints(d.s, d.source, [sp])
    return WebhookResult("applied", d.event, sp.sprint_id, f"delivery {d.id}")


def _sprint_deleted(d: Delivery) -> WebhookResult:
    sid = str((d.body.get("sprint") or {}).get("id"))
    delete_sprints(d.s, d.source, [sid])
    return WebhookResult("deleted", d.event, sid, f"delivery {d.id}")


def _version_project(d: Delivery, version: Mapping[str, Any]) -> str | None:
    """A version payload names its project by id: the stored version or the catalogue knows the key."""
    known = d.s.get(Version, (d.source, str(version.get("id"))))
    if known is not None:
        return known.project
    pid = version.get("projectId")
    if pid is None:
        return None
    row = d.s.execute(sa.select(col(Project.key)).where(
        col(Project.source) == d.source, col(Project.project_id) == str(pid))).first()
    return str(row[0]) if row else None


def _version_changed(d: Delivery) -> WebhookResult:
    version = d.body.get("version") or {}
    if version.get("id") is None:
        raise WebhookRejected(400, f"Jira webhook {d.event} has no version id")
    project = _version_project(d, version)
    if project is None:
        # A project outside the synced catalogue: the next sync's version list decides.
        return WebhookResult("ignored", d.event, str(version["id"]), f"delivery {d.id}: project not synced")
    upsert_versions(d.s, d.source, [jm.map_version(version, project)])
    return WebhookResult("applied", d.event, str(version["id"]), f"delivery {d.id}")


def _version_deleted(d: Delivery) -> WebhookResult:
    vid = str((d.body.get("version") or {}).get("id"))
    delete_versions(d.s, d.source, [vid])
    return WebhookResult("deleted", d.event, vid, f"delivery {d.id}")


# One handler per event (a table, not an if-chain); an event not listed is acknowledged and ignored.
HANDLERS: dict[str, Callable[[Delivery], WebhookResult]] = {
    **{e: _issue_changed for e in ISSUE_EVENTS},
    "jira:issue_deleted": _issue_deleted,
    "comment_created": _comment_changed, "comment_updated": _comment_changed,
    "comment_deleted": _comment_deleted,
    "worklog_created": _worklog_changed, "worklog_updated": _worklog_changed,
    "worklog_deleted": _worklog_deleted,
    **{e: _sprint_changed for e in SPRINT_EVENTS},
    "sprint_deleted": _sprint_deleted,
    **{e: _version_changed for e in VERSION_EVENTS},
    "jira:version_deleted": _version_deleted,
}


# Handlers whose writes go through the batch's bundles; every other handler writes at once.
BATCHED = {_issue_changed, _comment_changed, _worklog_changed}


def _apply_one(s: Session, source: str, m: jm.JiraMapping, batch: Batch, body: dict[str, Any],
               headers: Mapping[str, str]) -> WebhookResult:
    event = str(body.get("webhookEvent") or "")
    if not event:
        raise WebhookRejected(400, "not a Jira webhook: no webhookEvent")
    delivery = (
        headers.get("X-Atlassian-Webhook-Identifier") or headers.get("x-atlassian-webhook-identifier") or "-"
    )
    handler = HANDLERS.get(event)
    if handler is None:
        return WebhookResult("ignored", event, None, f"delivery {delivery}: not an event this connector applies",
                             items=())
    if handler not in BATCHED:
        batch.flush()
    try:
        # A handler maps the whole payload before it writes anything, so a malformed delivery
        # leaves the batch's transaction as it was.
        return handler(Delivery(s, source, m, body, event, _event_time(body), delivery, batch))
    except (KeyError, jm.JiraPayloadError) as exc:
        raise WebhookRejected(400, f"Jira webhook {event} for source {source} is malformed: {exc}") from exc


def apply_webhooks(
    store: Store,
    source_cfg: JiraSourceConfig,
    deliveries: Sequence[tuple[dict[str, Any], Mapping[str, str]]],
    *,
    session: Session | None = None,
) -> list[WebhookResult | WebhookRejected]:
    """Apply deliveries in order, in one transaction: per delivery what it did, or why it was
    rejected (a rejected delivery writes nothing; the others still apply). A store error
    aborts the whole transaction and is raised: the caller tries the deliveries one by one.

    With `session`, the writes go into that session's transaction, which the caller commits or
    rolls back (the webhook queue's intake stores, applies and marks deliveries processed in one
    transaction); without, `store` opens and commits a transaction of its own."""
    if session is not None:
        return _apply_in(session, source_cfg, deliveries)
    with store.transaction() as s:
        return _apply_in(s, source_cfg, deliveries)


def _apply_in(s: Session, source_cfg: JiraSourceConfig,
              deliveries: Sequence[tuple[dict[str, Any], Mapping[str, str]]]) -> list[WebhookResult | WebhookRejected]:
    out: list[WebhookResult | WebhookRejected] = []
    batch = Batch(s, source_cfg.name)
    m = mapping_for(s, source_cfg)
    for body, headers in deliveries:
        try:
            out.append(_apply_one(s, source_cfg.name, m, batch, body, headers))
        except WebhookRejected as exc:
            out.append(exc)
    batch.flush()
    return out


def apply_webhook(
    store: Store, source_cfg: JiraSourceConfig, body: dict[str, Any], headers: Mapping[str, str]
) -> WebhookResult:
    """Apply one delivery; says what it did (`WebhookResult`) for the delivery log."""
    [result] = apply_webhooks(store, source_cfg, [(body, headers)])
    if isinstance(result, WebhookRejected):
        raise result
    return result

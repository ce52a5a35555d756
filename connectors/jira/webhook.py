"""Applying one verified Jira webhook delivery to the store, through the sync's own mapping.

The server module verifies the signature and deduplicates by `X-Atlassian-Webhook-Identifier`;
this function is nevertheless idempotent on its own: items are upserted under the writer's
`newer_than` guard (an older `updated` never overwrites newer data), the changelog becomes a
history row keyed by `changelog.id` (insert-or-ignore), deletions are tombstones that only move
forward. The mapping (story-points field, Sprint field, status catalogue) is the one the last
sync persisted in the cursor `meta.fields`; without it, the payload's own status category is used.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import col
from trackpulse.connectors.jira import mapping as jm
from trackpulse.connectors.jira.rederive import mapping_for

from trackpulse.config import JiraSourceConfig
from trackpulse.errors import WebhookRejected
from trackpulse.records import ItemBundle
from trackpulse.store.db import Store
from trackpulse.store.models import Worklog
from trackpulse.store.writer import (
    apply_bundles,
    delete_comments,
    delete_sprints,
    delete_worklogs,
    mark_items_deleted,
    upsert_sprints,
)
from trackpulse.sync_api import WebhookResult

ISSUE_EVENTS = {"jira:issue_created", "jira:issue_updated"}
SPRINT_EVENTS = {"sprint_created", "sprint_updated", "sprint_started", "sprint_closed"}


def _event_time(body: Mapping[str, Any]) -> datetime | None:
    ts = body.get("timestamp")
    return jm.parse_time(ts) if ts not in (None, "") else None


def _issue_id(body: Mapping[str, Any], event: str) -> str:
    issue = body.get("issue") or {}
    if issue.get("id") is None:
        raise WebhookRejected(400, f"Jira webhook {event} has no issue id")
    return str(issue["id"])


def apply_webhook(
    store: Store, source_cfg: JiraSourceConfig, body: dict[str, Any], headers: Mapping[str, str]
) -> WebhookResult:
    """Apply one delivery; says what it did (`WebhookResult`) for the delivery log."""
    event = str(body.get("webhookEvent") or "")
    if not event:
        raise WebhookRejected(400, "not a Jira webhook: no webhookEvent")
    source = source_cfg.name
    delivery = (
        headers.get("X-Atlassian-Webhook-Identifier") or headers.get("x-atlassian-webhook-identifier") or "-"
    )
    try:
        with store.transaction() as s:
            m = mapping_for(s, source_cfg)
            at = _event_time(body)

            if event in ISSUE_EVENTS:
                issue = body.get("issue") or {}
                iid = _issue_id(body, event)
                item = jm.map_issue(source, issue, m)
                histories = []
                cl = body.get("changelog") or {}
                if cl.get("id") is not None and cl.get("items"):
                    # Jira stamps the change and the issue's `updated` together and fires the
                    # event a little later; a payload rendered after further changes carries a
                    # newer `updated`. The earlier of the two is the change's instant either way.
                    when = (
                        jm.parse_time(cl["created"])
                        if cl.get("created")
                        else (min(item.updated, at) if at is not None else item.updated)
                    )
                    raw = {
                        "id": str(cl["id"]),
                        "author": body.get("user"),
                        "created": when.isoformat(),
                        "items": cl["items"],
                    }
                    histories.append(jm.map_history(iid, raw, m, at=when))
                wl, _ = jm.inline_page(issue, "worklog", "worklogs")
                cm, _ = jm.inline_page(issue, "comment", "comments")
                apply_bundles(
                    s,
                    source,
                    [
                        ItemBundle(
                            item=item,
                            item_id=iid,
                            histories=histories,
                            partial_worklogs=[jm.map_worklog(w, iid) for w in wl],
                            partial_comments=[jm.map_comment(c, iid) for c in cm],
                        )
                    ],
                )
                return WebhookResult("applied", event, item.key, f"delivery {delivery}" + (
                    f", history {histories[0].history_id}" if histories else ""
                ))

            if event == "jira:issue_deleted":
                iid = _issue_id(body, event)
                when = at or jm.parse_time((body.get("issue") or {}).get("fields", {}).get("updated"))
                n = mark_items_deleted(s, source, [iid], when)
                wl_ids = s.execute(
                    sa.select(col(Worklog.worklog_id)).where(col(Worklog.source) == source, col(Worklog.item_id) == iid)
                ).scalars()
                delete_worklogs(s, source, list(wl_ids))
                if n:
                    return WebhookResult("deleted", event, iid, f"delivery {delivery}")
                return WebhookResult("ignored", event, iid, f"delivery {delivery}: already deleted or unknown")

            if event in ("comment_created", "comment_updated"):
                iid = _issue_id(body, event)
                c = jm.map_comment(body["comment"], iid)
                apply_bundles(s, source, [ItemBundle(item=None, item_id=iid, partial_comments=[c])])
                return WebhookResult("applied", event, c.comment_id, f"on {iid}, delivery {delivery}")

            if event == "comment_deleted":
                cid = str((body.get("comment") or {}).get("id"))
                delete_comments(s, source, [cid])
                return WebhookResult("deleted", event, cid, f"delivery {delivery}")

            if event in ("worklog_created", "worklog_updated"):
                w = jm.map_worklog(body["worklog"])
                apply_bundles(s, source, [ItemBundle(item=None, item_id=w.item_id, partial_worklogs=[w])])
                return WebhookResult("applied", event, w.worklog_id, f"on {w.item_id}, delivery {delivery}")

            if event == "worklog_deleted":
                wid = str((body.get("worklog") or {}).get("id"))
                delete_worklogs(s, source, [wid])
                return WebhookResult("deleted", event, wid, f"delivery {delivery}")

            if event in SPRINT_EVENTS:
                sp = jm.map_sprint(body["sprint"])
                upsert_sprints(s, source, [sp])
                return WebhookResult("applied", event, sp.sprint_id, f"delivery {delivery}")

            if event == "sprint_deleted":
                sid = str((body.get("sprint") or {}).get("id"))
                delete_sprints(s, source, [sid])
                return WebhookResult("deleted", event, sid, f"delivery {delivery}")
    except (KeyError, jm.JiraPayloadError) as exc:
        raise WebhookRejected(400, f"Jira webhook {event} for source {source} is malformed: {exc}") from exc
    return WebhookResult("ignored", event, None, f"delivery {delivery}: not an event this connector applies")

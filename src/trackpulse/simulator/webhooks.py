"""Building, signing and delivering simulated tracker webhooks.

Jira part (functions prefixed `jira_`, class `JiraWebhookHub`): admin-webhook payloads for the
events a `JiraWorld` records (issue, comment, worklog and sprint events; API_NOTES §5), the
`X-Hub-Signature: sha256=<hex HMAC-SHA256 of the raw body>` signature, and delivery headers
(`X-Atlassian-Webhook-Identifier` unique per delivery and unchanged on retries,
`X-Atlassian-Webhook-Flow`, `X-Atlassian-Webhook-Retry` from the second attempt on).
Payloads use the REST v2 representation (plain-text rich fields), as Jira's webhooks do.
A Trello part can live beside it with `trello_`-prefixed names.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx

from trackpulse.simulator.jira_render import FieldSelection, JiraRenderer, epoch_ms
from trackpulse.simulator.jql import JqlError, parse_jql

if TYPE_CHECKING:
    from trackpulse.simulator.jira_world import JiraEvent, JiraProfile, JiraWorld, WebhookRegistration

JIRA_RETRYABLE_STATUSES = frozenset({408, 409, 425, 429})
_IDENTIFIER_NAMESPACE = uuid.UUID("9b8f5a8e-3c1d-4f2a-9e51-6a0c2d7b4e10")


@dataclass
class JiraWebhookDelivery:
    """One webhook POST: the exact body bytes and headers, kept for retries."""

    identifier: str
    event: str
    url: str
    body: bytes
    headers: dict[str, str]
    attempts: int = 0
    statuses: list[int] = field(default_factory=list)

    @property
    def payload(self) -> Any:
        return json.loads(self.body) if self.body else None


def jira_sign(body: bytes, secret: str) -> str:
    """The `X-Hub-Signature` value: sha256=<hex HMAC-SHA256 of the raw body keyed by the secret>."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def jira_build_delivery(
    payload: dict[str, Any] | None,
    url: str,
    *,
    secret: str | None = None,
    identifier: str | None = None,
    event: str | None = None,
) -> JiraWebhookDelivery:
    """Serialise `payload` once (the signature covers these exact bytes) and prepare the headers."""
    body = b"" if payload is None else json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    ident = identifier or str(uuid.uuid4())
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "User-Agent": "Atlassian Webhook HTTP Client",
        "X-Atlassian-Webhook-Identifier": ident,
        "X-Atlassian-Webhook-Flow": "Primary",
    }
    if secret:
        headers["X-Hub-Signature"] = jira_sign(body, secret)
    name = event or (payload or {}).get("webhookEvent", "")
    return JiraWebhookDelivery(ident, str(name), url, body, headers)


def jira_deliver(
    url: str, delivery: JiraWebhookDelivery, client: httpx.Client | None = None, timeout: float = 10.0
) -> int:
    """POST one delivery; returns the HTTP status, or 0 when the receiver could not be reached."""
    headers = dict(delivery.headers)
    if delivery.attempts > 0:
        headers["X-Atlassian-Webhook-Retry"] = str(delivery.attempts)
    delivery.attempts += 1
    own = client is None
    http = client or httpx.Client(timeout=timeout)
    try:
        status = http.post(url, content=delivery.body, headers=headers).status_code
    except httpx.TransportError:
        status = 0
    finally:
        if own:
            http.close()
    delivery.statuses.append(status)
    return status


def jira_should_retry(status: int) -> bool:
    """Jira retries on 408, 409, 425, 429, any 5xx and connection failures."""
    return status == 0 or status in JIRA_RETRYABLE_STATUSES or status >= 500


def jira_webhook_payload(world: JiraWorld, renderer: JiraRenderer, event: JiraEvent) -> dict[str, Any]:
    """The body Jira posts for `event`, rendered from the world's current data."""
    base: dict[str, Any] = {"timestamp": epoch_ms(event.timestamp), "webhookEvent": event.name}
    if event.name.startswith("sprint_"):
        assert event.sprint_id is not None
        base["sprint"] = renderer.agile_sprint(world.sprints[event.sprint_id])
        return base
    if event.name.startswith("jira:version_"):
        assert event.version_id is not None
        base["version"] = renderer.version(world.versions[event.version_id])
        return base
    if event.name.startswith("worklog_"):
        assert event.worklog_id is not None
        base["worklog"] = renderer.worklog(world.worklogs[event.worklog_id])
        return base
    assert event.issue_nid is not None
    issue = world.issues[event.issue_nid]
    if event.name.startswith("comment_"):
        assert event.comment_id is not None
        base["comment"] = renderer.comment(world.comments[event.comment_id])
        reduced = FieldSelection(
            ["summary", "issuetype", "project", "assignee", "priority", "status"], "id", renderer.issue_fields
        )
        full = renderer.issue(issue, reduced)
        base["issue"] = {"id": full["id"], "self": full["self"], "key": full["key"], "fields": full["fields"]}
        return base
    if event.issue_event_type_name:
        base["issue_event_type_name"] = event.issue_event_type_name
    base["user"] = renderer.user(event.user)
    base["issue"] = renderer.issue(issue, FieldSelection(["*all"], "*all", renderer.issue_fields))
    if event.history_id is not None:
        history = next(h for h in issue.histories if h.id == event.history_id)
        base["changelog"] = {"id": str(history.id), "items": [renderer.change_item(i) for i in history.items]}
    if event.comment_id is not None:
        base["comment"] = renderer.comment(world.comments[event.comment_id])
    return base


class JiraWebhookHub:
    """Turns a world's recorded events into deliveries to its registered admin webhooks.

    Tests call `flush()` after mutating the world; it posts every pending delivery synchronously
    and returns the HTTP statuses in order. Deliveries that failed with a retryable status stay
    in `failed` for `retry_failed()`, which resends the same bytes with the same identifier.
    """

    def __init__(self, world: JiraWorld, profile: JiraProfile, base_url: str = "http://127.0.0.1") -> None:
        self.world = world
        self.profile = profile
        self.base_url = base_url
        self._cursor = 0
        self.delivered: list[JiraWebhookDelivery] = []
        self.failed: list[JiraWebhookDelivery] = []

    def _matches(self, reg: WebhookRegistration, event: JiraEvent) -> bool:
        if not reg.enabled or event.seq < reg.from_seq or event.name not in reg.events:
            return False
        if reg.jql_filter and event.issue_nid is not None:
            try:
                pred = parse_jql(reg.jql_filter).compile(self.world)
            except JqlError:
                return False
            return pred(self.world.issues[event.issue_nid])
        return True

    def pending(self, base_url: str | None = None) -> list[JiraWebhookDelivery]:
        """Build the deliveries for events recorded since the last call (consumes them)."""
        renderer = JiraRenderer(self.world, self.profile, base_url or self.base_url, api_version=2)
        out: list[JiraWebhookDelivery] = []
        with self.world.lock:
            events = self.world.events[self._cursor :]
            self._cursor = len(self.world.events)
            for event in events:
                for reg in self.world.webhooks.values():
                    if not self._matches(reg, event):
                        continue
                    payload = None if reg.exclude_body else jira_webhook_payload(self.world, renderer, event)
                    ident = str(uuid.uuid5(_IDENTIFIER_NAMESPACE, f"{event.seq}:{reg.id}"))
                    out.append(
                        jira_build_delivery(
                            payload, reg.url, secret=reg.secret, identifier=ident, event=event.name
                        )
                    )
        return out

    def flush(self, client: httpx.Client | None = None, base_url: str | None = None) -> list[int]:
        """Deliver every pending event to every matching webhook; returns the statuses in order."""
        deliveries = self.pending(base_url)
        return [self._send(d, client) for d in deliveries]

    def retry_failed(self, client: httpx.Client | None = None) -> list[int]:
        retry, self.failed = self.failed, []
        return [self._send(d, client) for d in retry]

    def _send(self, delivery: JiraWebhookDelivery, client: httpx.Client | None) -> int:
        status = jira_deliver(delivery.url, delivery, client)
        self.delivered.append(delivery)
        if jira_should_retry(status):
            self.failed.append(delivery)
        return status

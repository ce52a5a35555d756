"""Registering trackpulse as a Jira admin webhook (`POST /rest/webhooks/1.0/webhook`).

Admin webhooks are the only kind that carry worklog and sprint events and sign deliveries
with `X-Hub-Signature` (research/API_NOTES.md §5); they need a Jira administrator's token.
Registration is idempotent: an existing webhook with the same URL is left as it is.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from trackpulse.config import JiraSourceConfig
from trackpulse.errors import AuthError, ConfigError

WEBHOOK_PATH = "/rest/webhooks/1.0/webhook"
EVENTS = [
    "jira:issue_created", "jira:issue_updated", "jira:issue_deleted",
    "comment_created", "comment_updated", "comment_deleted",
    "worklog_created", "worklog_updated", "worklog_deleted",
    "sprint_created", "sprint_updated", "sprint_started", "sprint_closed", "sprint_deleted",
    "jira:version_created", "jira:version_updated", "jira:version_released", "jira:version_unreleased",
    "jira:version_deleted",
]


@dataclass
class JiraWebhookRegistration:
    url: str
    webhook: str  # the webhook's `self` URL, Jira's handle for it
    created: bool


def register_webhook(source_cfg: JiraSourceConfig, callback_url: str, *,
                     client: httpx.Client | None = None) -> JiraWebhookRegistration:
    """Create (once) the admin webhook that posts this source's events to `callback_url`."""
    from trackpulse.connectors.jira.sync import open_connector, scope_jql

    if source_cfg.webhook_secret is None:
        raise ConfigError("set webhook_secret before registering: deliveries are verified with it",
                          key=f"sources({source_cfg.name}).webhook_secret")
    connector = open_connector(source_cfg, client=client)
    http = connector.http
    try:
        existing = http.get_json(WEBHOOK_PATH)
        for hook in existing if isinstance(existing, list) else []:
            if hook.get("url") == callback_url:
                return JiraWebhookRegistration(callback_url, str(hook.get("self", "")), False)
        body = {
            "name": f"trackpulse {source_cfg.name}",
            "url": callback_url,
            "events": EVENTS,
            "filters": {"issue-related-events-section": scope_jql(source_cfg)},
            "excludeBody": False,
            "secret": source_cfg.webhook_secret.get_secret_value(),
        }
        # A POST that creates: never retried blindly (a lost answer could mean it was created).
        created = http.post_json(WEBHOOK_PATH, body, idempotent=False)
        return JiraWebhookRegistration(callback_url, str(created.get("self", "")), True)
    except AuthError as exc:
        raise AuthError(source_cfg.name, "registering admin webhooks needs a Jira administrator's "
                        "token; register it in Jira (Settings → System → WebHooks) instead",
                        url=exc.url) from exc
    finally:
        if client is None:
            http.client.close()

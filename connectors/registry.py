"""The one registry of connector kinds: a source's `kind` in the configuration names its entry.

Everything that needs a connector (the sync job, `check`, the webhook queue, `status`) looks
it up here, so adding a tracker is one line below and nothing imports a module by a name
built at run time.
"""

from __future__ import annotations

import httpx
from trackpulse.connectors import jira, trello

from trackpulse.config import JiraSourceConfig, TrelloSourceConfig
from trackpulse.errors import ConfigError
from trackpulse.sync_api import Connector, ConnectorKind

CONNECTORS: dict[str, ConnectorKind] = {
    "jira": ConnectorKind("jira", jira.open_connector, jira.apply_webhook, jira.describe_cursor,
                          apply_webhooks=jira.apply_webhooks),
    "trello": ConnectorKind("trello", trello.open_connector, trello.apply_webhook, trello.describe_cursor),
}


def connector_kind(kind: str) -> ConnectorKind:
    try:
        return CONNECTORS[kind]
    except KeyError:
        raise ConfigError(f"no connector for kind {kind!r} (known: {', '.join(sorted(CONNECTORS))})",
                          key="sources.kind") from None


def open_connector(source_cfg: JiraSourceConfig | TrelloSourceConfig, *,
                   client: httpx.Client | None = None) -> Connector:
    """The source's connector, to be used in a with-block (it is closed after use)."""
    return connector_kind(source_cfg.kind).open(source_cfg, client=client)

"""An alert ledger row as every channel sees it (`AlertView`): shared by the ledger and the dispatcher."""

from __future__ import annotations

from datetime import UTC

from trackpulse.channels.base import AlertView
from trackpulse.config import AppConfig, JiraSourceConfig
from trackpulse.store.models import Alert


def view_of(alert: Alert, cfg: AppConfig) -> AlertView:
    """What channels show. `item` is the Jira key on Jira sources and the card id on Trello."""
    jira = any(s.name == alert.source and isinstance(s, JiraSourceConfig) for s in cfg.sources)
    item = alert.item if jira else (alert.item_id or alert.item)
    return AlertView(id=alert.id, rule=alert.rule, when=alert.when, source=alert.source,
                     project=alert.project, item=item, policy=alert.policy,
                     clock=alert.clock, value=alert.value, target=alert.target,
                     at=alert.at if alert.at.tzinfo else alert.at.replace(tzinfo=UTC), url=alert.url,
                     item_label=alert.item)

"""Jira connector (Cloud REST v3, Server/Data Center REST v2, agile 1.0).

- `client.py`: HTTP only (auth, endpoints, paging) over `trackpulse.http.TrackerHttp`;
- `mapping.py`: Jira JSON → normalised records, pure;
- `sync.py`: the connector (`check`, `sync`): what is fetched, in which order, committed how;
- `webhook.py`: `apply_webhook(s)`, deliveries (one, or a batch in one transaction) through the same mapping and writer;
- `rederive.py`: rebuild derived rows from stored raw JSON after a mapping change;
- `cursors.py`: `describe_cursor`, what each of its cursors means for `status`;
- `registration.py`: `register_webhook`, the admin webhook that pushes this source's events.
"""

from trackpulse.connectors.jira.cursors import describe_cursor
from trackpulse.connectors.jira.rederive import rederive
from trackpulse.connectors.jira.registration import register_webhook
from trackpulse.connectors.jira.sync import JiraConnector, open_connector
from trackpulse.connectors.jira.webhook import apply_webhook, apply_webhooks

__all__ = ["JiraConnector", "apply_webhook", "apply_webhooks", "describe_cursor", "open_connector", "rederive", "register_webhook"]

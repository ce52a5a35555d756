"""Trello connector: the pull path (sync of boards, cards and their action history) and the
push path (webhooks), per the contract in `trackpulse.sync_api`.

Modules, one concern each: `api` (HTTP: auth, pacing, 429s, paging; py-trello shim),
`mapping` (Trello JSON to records), `rows` (records to the store, shared by both paths),
`connector` (check and sync), `webhooks` (signature, delivery, registration), `cursors`
(what each cursor means for `status`).
"""

from __future__ import annotations

from .connector import TrelloConnector, open_connector
from .cursors import describe_cursor
from .webhooks import WebhookRegistration, apply_webhook, register_webhooks, verify_trello_signature

__all__ = [
    "TrelloConnector", "WebhookRegistration", "apply_webhook", "describe_cursor", "open_connector", "register_webhooks",
    "verify_trello_signature",
]

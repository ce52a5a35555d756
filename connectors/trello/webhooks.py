"""The Trello push path: verify a delivery's signature, apply its action, register webhooks.

A delivery (`{"action": …, "model": …, "webhook": …}`) carries one action, not the card, so
`apply_webhook` replays the action onto the card JSON stored by the last sync or webhook
(`mapping.apply_action_to_card`) and maps the result with the same `card_to_item` a sync
uses; history, comment and deletion rows come from the same `rows.write_actions`.

Safe against Trello's delivery habits:
- duplicates: every row is keyed by the action id (insert-or-ignore), and a repeat is
  recognised and reported before anything is written;
- reordering: each field of the stored card JSON remembers which action set it, and an
  action only changes fields it is newer for (`mapping.apply_action_to_card`), so a late
  older move adds its history row but never sets an older current list; `updated` only
  grows, and the writer's `newer_than="updated"` guard keeps a stale sync snapshot from
  overwriting newer webhook state.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import sqlalchemy as sa
from sqlmodel import col

from trackpulse.config import TrelloSourceConfig
from trackpulse.errors import ConfigError, TrackpulseError, WebhookRejected
from trackpulse.records import ItemBundle
from trackpulse.store import writer
from trackpulse.store.db import Store
from trackpulse.store.models import Comment, History, Item
from trackpulse.sync_api import WebhookResult

from .connector import TrelloConnector
from .mapping import CREATION_TYPES, STATE_TYPES, apply_action_to_card, card_to_item, parse_date
from .rows import fill_reporters, load_mapping, write_actions

# Actions that may bring a card we hold as deleted back (it had left for an untracked board).
_ARRIVALS = CREATION_TYPES | {"moveCardToBoard"}


def _binary_string(text: str) -> bytes:
    """Old Node.js "binary" encoding: every UTF-16 code unit truncated to its low byte.
    Trello's documentation example hashed strings that way; deliveries signed by it only
    verify when we do the same with non-ASCII payloads."""
    units = text.encode("utf-16-le")
    return bytes(units[i] for i in range(0, len(units), 2))


def verify_trello_signature(app_secret: str, raw_body: bytes, callback_url: str, header: str | None) -> bool:
    """True when `X-Trello-Webhook` is base64(HMAC-SHA1(app secret, raw body + callback URL)).

    The message is tried as UTF-8 bytes first, then in the legacy latin-1 ("binary")
    form (API_NOTES.md §10). Any missing part is a failed verification."""
    if not app_secret or not header or not callback_url:
        return False
    try:
        given = base64.b64decode(header.strip(), validate=True)
    except ValueError:
        return False
    key = app_secret.encode("utf-8")
    candidates = [raw_body + callback_url.encode("utf-8")]
    try:
        candidates.append(_binary_string(raw_body.decode("utf-8") + callback_url))
    except UnicodeDecodeError:
        pass
    return any(hmac.compare_digest(hmac.new(key, m, hashlib.sha1).digest(), given) for m in candidates)


def _action_of(body: Any) -> dict[str, Any]:
    action = body.get("action") if isinstance(body, dict) else None
    if not isinstance(action, dict) or not all(isinstance(action.get(k), str) for k in ("id", "type", "date")):
        raise WebhookRejected(400, "not a Trello webhook delivery: no action with id, type and date")
    if not isinstance(action.get("data"), dict):
        raise WebhookRejected(400, f"Trello action {action['id']} has no data")
    if parse_date(action["date"]) is None:
        raise WebhookRejected(400, f"Trello action {action['id']} has no valid date")
    return action


def apply_webhook(store: Store, source_cfg: TrelloSourceConfig, body: dict[str, Any],
                  headers: Mapping[str, str]) -> WebhookResult:
    """Apply one verified delivery; says what it did (`WebhookResult`)."""
    action = _action_of(body)
    source = source_cfg.name
    data = action["data"]
    board_id = (data.get("board") or {}).get("id") or (body.get("model") or {}).get("id")
    if board_id not in source_cfg.boards:
        return WebhookResult("ignored", action["type"], action["id"],
                             f"board {board_id} is not in source {source}'s boards", items=())
    card_id = (data.get("card") or {}).get("id")
    if not card_id:
        return WebhookResult("ignored", action["type"], action["id"], "not about a card", items=())
    with store.transaction() as s:
        if _already_applied(s, source, card_id, action):
            return WebhookResult("duplicate", action["type"], action["id"], "already applied", items=())
        known = s.get(Item, (source, card_id)) is not None
    fetched = None
    if not known and action["type"] in STATE_TYPES:
        fetched = _fetch_card(source_cfg, card_id)
    with store.transaction() as s:
        mapping = load_mapping(s, source_cfg)
        counts = write_actions(s, mapping, [action], tracked_boards=source_cfg.boards)
        notes = [f"to card {card_id}"]
        if action["type"] in STATE_TYPES:
            stored = s.get(Item, (source, card_id))
            at = parse_date(action["date"])
            assert at is not None
            if stored is not None and stored.updated > at:
                notes.append("older than the stored card: only fields no newer action set")
            if stored is None or not stored.deleted or action["type"] in _ARRIVALS:
                card: dict[str, Any] | None
                if stored is None and fetched is not None:
                    card = fetched
                else:
                    card = apply_action_to_card(stored.raw if stored is not None else None, action)
                if card is not None:
                    item = card_to_item(mapping, card)
                    if mapping.new_statuses:
                        writer.upsert_statuses(s, source, mapping.new_statuses)
                        mapping.new_statuses.clear()
                    writer.apply_bundles(s, source, [ItemBundle(item=item, item_id=card_id)])
                    fill_reporters(s, source, [card_id])
        if counts.deleted:
            notes.append("card deleted")
    return WebhookResult("deleted" if counts.deleted else "applied", action["type"], action["id"], "; ".join(notes),
                         items=(card_id,))


def _fetch_card(cfg: TrelloSourceConfig, card_id: str) -> dict[str, Any] | None:
    """The card as Trello has it now, for a card the store has never seen.

    A `createCard` (or copy, or arrival from another board) action does not carry the labels
    or custom-field values the card was created with, so type, priority and points would be
    wrong until the next sync. One GET fixes that; if Trello cannot be reached (or the card
    is already gone) the action alone is used and the next sync corrects it."""
    with TrelloConnector(cfg.model_copy(update={"max_retries": 1})) as connector:
        try:
            return connector.api.card(card_id)
        except TrackpulseError:
            return None


def _already_applied(s: Any, source: str, card_id: str, action: dict[str, Any]) -> bool:
    if action["type"] == "commentCard":
        return s.get(Comment, (source, action["id"])) is not None
    if action["type"] == "deleteComment":
        target = (action["data"].get("action") or {}).get("id")
        row = s.get(Comment, (source, target)) if target else None
        return row is not None and row.deleted
    return s.execute(sa.select(col(History.history_id)).where(
        col(History.source) == source, col(History.item_id) == card_id,
        col(History.history_id) == action["id"])).first() is not None


@dataclass
class WebhookRegistration:
    board_id: str
    webhook_id: str
    created: bool  # False: it already existed


def register_webhooks(source_cfg: TrelloSourceConfig, callback_url: str | None = None, *,
                      client: httpx.Client | None = None) -> Sequence[WebhookRegistration]:
    """One Trello webhook per configured board pointing at `callback_url`; idempotent.

    Lists the token's webhooks first (`GET /1/tokens/{token}/webhooks`) and creates only the
    missing ones. Trello then sends a HEAD to the callback URL and refuses the webhook unless
    it answers 200, so the server must be reachable when this runs."""
    url = callback_url or source_cfg.callback_url
    if not url:
        raise ConfigError("set callback_url (the public URL of /webhooks/trello/"
                          f"{source_cfg.name}) to register Trello webhooks", key=f"sources({source_cfg.name}).callback_url")
    connector = TrelloConnector(source_cfg, client)
    try:
        trello = connector.pytrello()
        token = source_cfg.token.get_secret_value()
        existing = {(h.id_model, h.callback_url): h.id for h in trello.list_hooks(token)}
        out = []
        for board_id in source_cfg.boards:
            hook_id = existing.get((board_id, url))
            if hook_id:
                out.append(WebhookRegistration(board_id, hook_id, False))
                continue
            hook = trello.create_hook(url, board_id, f"trackpulse {source_cfg.name}", token)
            out.append(WebhookRegistration(board_id, hook.id, True))
        return out
    finally:
        if client is None:  # a client handed in belongs to the caller
            connector.close()

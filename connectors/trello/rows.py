"""Writing mapped Trello actions and cards into the store, shared by sync pages and webhooks.

Three Trello facts shape this, beyond `trackpulse.store.writer`'s upserts:
- a deleted card is gone from `cards/all`, so the first we may hear of it is its `deleteCard`
  action; an item we never stored gets a tombstone row (built from the action) so a full
  sync and an incremental one agree that the card existed and is deleted;
- a backward walk (and a late webhook) sees `deleteComment` before the comment it deletes:
  the deletion leaves a deleted comment row, and a comment already stored as deleted is not
  revived by its older `commentCard`;
- a card moved to a board this source does not track has left our scope: deleted here,
  lifted again if it comes back (newer data wins over the tombstone).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session
from sqlmodel import col

from trackpulse.config import TrelloSourceConfig
from trackpulse.records import Category, ItemBundle, ItemRecord, StatusRecord
from trackpulse.store import writer
from trackpulse.store.models import Comment, History, Item, StatusDef

from .mapping import (
    CREATION_TYPES,
    ActionRows,
    BoardMapping,
    card_from_action,
    card_to_item,
    created_from_id,
    map_action,
)

POINTS_FIELD_CURSOR = "points-field:{board}"
MEMBERS_CURSOR = "members:{board}"  # the board's member names, for webhooks


@dataclass
class WriteCounts:
    histories: int = 0
    comments: int = 0
    deleted: int = 0


def stored_ids(session: Session, source: str, ids: Iterable[str]) -> set[str]:
    ids = list(set(ids))
    found: set[str] = set()
    for i in range(0, len(ids), 5000):
        found.update(session.execute(sa.select(col(Item.item_id)).where(
            col(Item.source) == source, col(Item.item_id).in_(ids[i:i + 5000]))).scalars())
    return found


def write_actions(session: Session, mapping: BoardMapping, actions: Sequence[dict[str, Any]], *,
                  tracked_boards: Iterable[str]) -> WriteCounts:
    """History, comment and deletion rows of a batch of actions (any order)."""
    source = mapping.source
    tracked = set(tracked_boards)
    counts = WriteCounts()
    bundles: dict[str, ItemBundle] = {}
    gone: list[tuple[ActionRows, dict[str, Any]]] = []
    dead_comments: list[tuple[str, str]] = []
    creators: dict[str, str] = {}
    for action in actions:
        rows = map_action(mapping, action)
        if rows.card_id is None:
            continue
        if action.get("type") in CREATION_TYPES and action.get("idMemberCreator"):
            creators[rows.card_id] = str(action["idMemberCreator"])
        bundle = bundles.get(rows.card_id)
        if bundle is None:
            bundle = bundles[rows.card_id] = ItemBundle(item=None, item_id=rows.card_id, histories=[])
        if rows.history is not None:
            assert bundle.histories is not None
            bundle.histories.append(rows.history)
            counts.histories += 1
        if rows.comment is not None:
            bundle.partial_comments.append(rows.comment)
        if rows.deleted_comment:
            dead_comments.append((rows.deleted_comment, rows.card_id))
        if rows.card_deleted or (rows.left_for_board and rows.left_for_board not in tracked):
            gone.append((rows, action))
    if mapping.new_statuses:
        writer.upsert_statuses(session, source, mapping.new_statuses)
        mapping.new_statuses.clear()
    # Deleted comment rows first, so an older commentCard in this very batch is not revived.
    if dead_comments:
        writer.upsert(session, Comment, [
            {"source": source, "comment_id": cid, "item_id": item, "author": None, "author_name": None,
             "created": created_from_id(cid), "updated": None, "deleted": True} for cid, item in dead_comments
        ], update=["deleted"])
    comment_ids = [c.comment_id for b in bundles.values() for c in b.partial_comments]
    if comment_ids:
        dead = set(session.execute(sa.select(col(Comment.comment_id)).where(
            col(Comment.source) == source, col(Comment.deleted).is_(True),
            col(Comment.comment_id).in_(comment_ids))).scalars())
        for b in bundles.values():
            b.partial_comments = [c for c in b.partial_comments if c.comment_id not in dead]
            counts.comments += len(b.partial_comments)
    writer.apply_bundles(session, source, list(bundles.values()))
    record_creators(session, source, creators)
    counts.deleted += remove_cards(session, mapping, gone)
    return counts


def fill_reporters(session: Session, source: str, card_ids: Iterable[str]) -> None:
    """Cards just written without a reporter take it from their stored creation action."""
    ids = list(card_ids)
    for i in range(0, len(ids), 5000):
        missing = set(session.execute(sa.select(col(Item.item_id)).where(
            col(Item.source) == source, col(Item.item_id).in_(ids[i:i + 5000]), col(Item.reporter).is_(None)
        )).scalars())
        if not missing:
            continue
        creators: dict[str, str] = {}
        for item_id, author, raw in session.execute(
            sa.select(col(History.item_id), col(History.author), col(History.raw)).where(
                col(History.source) == source, col(History.item_id).in_(missing)
            )
        ):
            if author and (raw or {}).get("type") in CREATION_TYPES:
                creators[item_id] = author
        record_creators(session, source, creators)


def record_creators(session: Session, source: str, creators: dict[str, str]) -> None:
    """A card's reporter is the member who created it (the card JSON does not say who).

    Only fills a missing reporter: the creation action is the oldest of a card, and the
    card row may be written before or after it (backward walks, webhooks)."""
    for card_id, member in creators.items():
        session.execute(sa.update(Item).where(
            col(Item.source) == source, col(Item.item_id) == card_id, col(Item.reporter).is_(None)
        ).values(reporter=member))


def remove_cards(session: Session, mapping: BoardMapping, gone: Sequence[tuple[ActionRows, dict[str, Any]]]) -> int:
    """Delete cards (deleteCard, or moved out of scope); a card never stored gets a tombstone."""
    if not gone:
        return 0
    known = stored_ids(session, mapping.source, (r.card_id for r, _ in gone if r.card_id))
    tombstones: dict[str, ItemRecord] = {}
    for rows, action in gone:
        cid = rows.card_id
        if cid is None or cid in known or cid in tombstones:
            continue
        card = card_from_action(action) or {"id": cid, "idList": "", "idBoard": (action.get("data") or {})
                                            .get("board", {}).get("id"), "dateLastActivity": action.get("date")}
        card["dateLastActivity"] = action.get("date")
        tombstones[cid] = card_to_item(mapping, card)
    if tombstones:
        writer.apply_bundles(session, mapping.source, [ItemBundle(item=i, item_id=i.item_id) for i in tombstones.values()])
    n = 0
    for rows, _ in gone:
        if rows.card_id:
            n += writer.mark_items_deleted(session, mapping.source, [rows.card_id], rows.at)
    return n


def save_points_fields(session: Session, source: str, board_id: str, ids: Iterable[str]) -> None:
    writer.set_cursor(session, source, POINTS_FIELD_CURSOR.format(board=board_id), json.dumps(sorted(ids)))


def save_members(session: Session, source: str, board_id: str, members: dict[str, str]) -> None:
    """The board's member names (id -> full name): webhooks name a card's members with them."""
    writer.set_cursor(session, source, MEMBERS_CURSOR.format(board=board_id),
                      json.dumps(members, ensure_ascii=False, sort_keys=True))


def load_mapping(session: Session, cfg: TrelloSourceConfig) -> BoardMapping:
    """The mapping as the last sync left it in the store (webhooks have no snapshot to hand)."""
    statuses = {row.status_id: StatusRecord(row.status_id, row.name, cast(Category, row.category))
                for row in session.execute(sa.select(StatusDef).where(col(StatusDef.source) == cfg.name)).scalars()}
    points: set[str] = set()
    members: dict[str, str] = {}
    for board in cfg.boards:
        value = writer.get_cursor(session, cfg.name, POINTS_FIELD_CURSOR.format(board=board))
        if value:
            points.update(json.loads(value))
        names = writer.get_cursor(session, cfg.name, MEMBERS_CURSOR.format(board=board))
        if names:
            members.update(json.loads(names))
    return BoardMapping(cfg, statuses, points, members=members)


def item_fingerprint(item: ItemRecord | Item) -> tuple[Any, ...]:
    """The columns whose change means a snapshot card must be written (incremental runs)."""
    deleted = bool(getattr(item, "deleted", False))
    updated: datetime = item.updated
    return (updated, item.status_id, item.archived, item.points, item.priority, item.is_defect, item.project,
            item.summary, item.key, item.assignee, deleted, tuple(item.assignees or ()))

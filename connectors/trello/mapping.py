"""From Trello JSON to trackpulse records (METRICS.md §1, Trello column): the one mapping a
sync page and a webhook delivery both go through.

- board -> project (board id); list -> status (list id, name, category from the source's
  `done_lists` / `in_progress_lists`, case-insensitive; other lists are todo);
- card -> item (card id; key = shortLink; created = the id's timestamp; updated =
  `dateLastActivity`; type "Bug" for a defect label else "Card"; priority = the first of
  `priority_labels` the card carries; points = the number custom field `points_field`;
  archived = `closed`);
- action -> history row (history id = action id, raw kept without comment text) with its
  transition (creations and board arrivals from None; `updateCard` list moves from
  `listBefore` to `listAfter`) or points change (`updateCustomFieldItem` on the points field);
  `commentCard` -> comment metadata only; `deleteCard` -> the card is deleted.

`apply_action_to_card` replays one action onto a stored card JSON: how a webhook, which
carries the action and not the card, brings an item up to date.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from trackpulse.config import TrelloSourceConfig
from trackpulse.records import (
    AssigneeChangeRecord,
    Category,
    CommentRecord,
    EstimateChangeRecord,
    HistoryRecord,
    ItemRecord,
    StatusRecord,
    TransitionRecord,
)

# Actions that bring a card into existence on a board (its "creation record").
CREATION_TYPES = frozenset({"createCard", "copyCard", "convertToCardFromCheckItem", "emailCard"})
MEMBER_TYPES = frozenset({"addMemberToCard", "removeMemberFromCard"})
# Actions that change what the item row holds; the others only add history or comments.
STATE_TYPES = CREATION_TYPES | {"updateCard", "moveCardToBoard", "updateCustomFieldItem", "addLabelToCard",
                                "removeLabelFromCard", "commentCard"} | MEMBER_TYPES


def parse_date(value: str | None) -> datetime | None:
    if not value:
        return None
    at = datetime.fromisoformat(value)
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def created_from_id(object_id: str) -> datetime:
    """A Trello ObjectId's first 8 hex digits are its creation time in unix seconds."""
    return datetime.fromtimestamp(int(object_id[:8], 16), tz=UTC)


def list_category(cfg: TrelloSourceConfig, name: str) -> Category:
    folded = name.strip().casefold()
    if folded in {n.strip().casefold() for n in cfg.done_lists}:
        return "done"
    if folded in {n.strip().casefold() for n in cfg.in_progress_lists}:
        return "in_progress"
    return "todo"


def list_statuses(cfg: TrelloSourceConfig, lists: Iterable[dict[str, Any]]) -> list[StatusRecord]:
    return [StatusRecord(str(x["id"]), str(x.get("name") or ""), list_category(cfg, str(x.get("name") or "")))
            for x in lists]


def points_field_ids(cfg: TrelloSourceConfig, custom_fields: Iterable[dict[str, Any]]) -> list[str]:
    """Ids of the board's number custom fields named `points_field` (case-insensitive)."""
    want = cfg.points_field.strip().casefold()
    out = []
    for f in custom_fields:
        name = f.get("name") or (f.get("display") or {}).get("name") or ""
        if str(name).strip().casefold() == want and f.get("type", "number") == "number":
            out.append(str(f["id"]))
    return out


@dataclass
class BoardMapping:
    """Everything a card or action needs to become rows: the source's rules and catalogue."""

    cfg: TrelloSourceConfig
    statuses: dict[str, StatusRecord] = field(default_factory=dict)
    points_fields: set[str] = field(default_factory=set)
    new_statuses: list[StatusRecord] = field(default_factory=list)  # lists first seen in an action
    members: dict[str, str] = field(default_factory=dict)  # member id -> full name (board snapshot)

    def member_name(self, member_id: str) -> str:
        """The name reports show; a member the snapshot did not list (left the board) by id."""
        return self.members.get(member_id) or member_id

    @property
    def source(self) -> str:
        return self.cfg.name

    def status(self, list_id: str, name_hint: str | None = None) -> StatusRecord:
        found = self.statuses.get(list_id)
        if found is None:
            # A list created after the last snapshot (seen in a webhook): its name is in the action.
            name = name_hint or ""
            found = StatusRecord(list_id, name, list_category(self.cfg, name))
            self.statuses[list_id] = found
            if name_hint:
                self.new_statuses.append(found)
        return found

    def is_points_field(self, custom_field: dict[str, Any]) -> bool:
        if str(custom_field.get("id")) in self.points_fields:
            return True
        name = str(custom_field.get("name") or "").strip().casefold()
        if name and name == self.cfg.points_field.strip().casefold() and custom_field.get("id"):
            # Actions name their field: a webhook seen before any sync still finds the points.
            self.points_fields.add(str(custom_field["id"]))
            return True
        return False


def _number(value: Any) -> float | None:
    """Trello custom-field numbers are strings in `{"number": "5"}`; no value is None."""
    if not isinstance(value, dict):
        return None
    raw = value.get("number")
    if raw in (None, ""):
        return None
    try:
        return float(raw)
    except (TypeError, ValueError):
        return None


def card_to_item(mapping: BoardMapping, card: dict[str, Any]) -> ItemRecord:
    cfg = mapping.cfg
    labels = [str(lb.get("name") or "") for lb in card.get("labels") or []]
    folded = {n.strip().casefold() for n in labels}
    is_defect = any(d.strip().casefold() in folded for d in cfg.defect_labels)
    priority = next((p for p in cfg.priority_labels if p.strip().casefold() in folded), None)
    points = None
    for cfi in card.get("customFieldItems") or []:
        if str(cfi.get("idCustomField")) in mapping.points_fields:
            points = _number(cfi.get("value"))
    status = mapping.status(str(card.get("idList") or ""))
    created = created_from_id(card["id"])
    members = card.get("idMembers") or []
    return ItemRecord(
        source=mapping.source, item_id=card["id"], key=card.get("shortLink") or card["id"],
        project=str(card.get("idBoard") or ""), type="Bug" if is_defect else "Card",
        status_id=status.status_id, status_name=status.name, status_category=status.category,
        created=created, updated=parse_date(card.get("dateLastActivity")) or created, raw=card,
        summary=str(card.get("name") or ""), priority=priority, is_defect=is_defect, points=points,
        resolved_at=parse_date(card.get("dateCompleted")), assignee=members[0] if members else None,
        archived=bool(card.get("closed")),
        assignees=tuple(sorted({mapping.member_name(str(m)) for m in members})),
    )


def _slim(action: dict[str, Any]) -> dict[str, Any]:
    """The action as kept in history: no comment text, no member profile (ids stay)."""
    data = {k: v for k, v in (action.get("data") or {}).items() if k not in ("text", "textData")}
    display = action.get("display") or {}
    return {"id": action["id"], "type": action.get("type"), "date": action.get("date"),
            "idMemberCreator": action.get("idMemberCreator"), "data": data,
            "display": {"translationKey": display.get("translationKey")}}


@dataclass
class ActionRows:
    """What one action contributes to the store."""

    action_id: str
    card_id: str | None
    at: datetime
    history: HistoryRecord | None = None
    comment: CommentRecord | None = None
    deleted_comment: str | None = None
    card_deleted: bool = False
    left_for_board: str | None = None  # moveCardFromBoard: the board the card went to


def map_action(mapping: BoardMapping, action: dict[str, Any]) -> ActionRows:
    data = action.get("data") or {}
    card = data.get("card") or {}
    kind = action.get("type")
    at = parse_date(action.get("date")) or created_from_id(action["id"])
    rows = ActionRows(action["id"], card.get("id"), at)
    if not rows.card_id:
        return rows
    author = action.get("idMemberCreator")
    if kind == "commentCard":
        creator = action.get("memberCreator") or {}
        rows.comment = CommentRecord(action["id"], rows.card_id, author, creator.get("fullName"), at)
        return rows
    if kind == "deleteComment":
        rows.deleted_comment = (data.get("action") or {}).get("id")
        return rows
    history = HistoryRecord(rows.card_id, action["id"], at, author, _slim(action))
    if kind in CREATION_TYPES or kind == "moveCardToBoard":
        # A card arriving from another board starts its life on this one: no "from" list here.
        lst = data.get("list")
        if lst and lst.get("id"):
            to = mapping.status(lst["id"], lst.get("name"))
            history.transitions.append(TransitionRecord(at, 0, None, to.status_id, None, lst.get("name")))
    elif kind == "updateCard" and data.get("listAfter") and data.get("listBefore"):
        before, after = data["listBefore"], data["listAfter"]
        mapping.status(before["id"], before.get("name"))
        mapping.status(after["id"], after.get("name"))
        history.transitions.append(TransitionRecord(at, 0, before["id"], after["id"], before.get("name"),
                                                    after.get("name")))
    elif kind == "updateCustomFieldItem" and mapping.is_points_field(data.get("customField") or {}):
        new = _number((data.get("customFieldItem") or {}).get("value"))
        old = _number((data.get("old") or {}).get("value"))
        history.estimate_changes.append(EstimateChangeRecord(at, 0, old, new))
    elif kind in MEMBER_TYPES:
        member_id = str(data.get("idMember") or (data.get("member") or {}).get("id") or "")
        name = (data.get("member") or {}).get("name") or (action.get("member") or {}).get("fullName")
        if member_id and name:
            mapping.members.setdefault(member_id, str(name))
        if member_id:
            who = (mapping.member_name(member_id),)
            added, removed = (who, ()) if kind == "addMemberToCard" else ((), who)
            history.assignee_changes.append(AssigneeChangeRecord(at, 0, added, removed))
    elif kind == "deleteCard":
        rows.card_deleted = True
    elif kind == "moveCardFromBoard":
        rows.left_for_board = (data.get("boardTarget") or {}).get("id")
    rows.history = history
    return rows


def card_from_action(action: dict[str, Any]) -> dict[str, Any] | None:
    """The card JSON an action reveals, for a card we have not stored yet; None when the
    action does not say which list the card is in. Nothing else about the card is known, so
    any other action, older or newer, may still fill it in."""
    data = action.get("data") or {}
    ref = data.get("card") or {}
    lst = data.get("list") or data.get("listAfter") or {}
    if not ref.get("id") or not lst.get("id"):
        return None
    stamp = [action.get("date") or "", action["id"]]
    return {"id": ref["id"], "name": ref.get("name", ""), "idShort": ref.get("idShort"),
            "shortLink": ref.get("shortLink"), "idBoard": (data.get("board") or {}).get("id"),
            "idList": lst["id"], "closed": bool(ref.get("closed", False)), "labels": [], "idLabels": [],
            "idMembers": [], "customFieldItems": [], "dateLastActivity": action.get("date"),
            STAMPS: {"since": ["", ""], "fields": {"idList": stamp, "idBoard": stamp, "name": stamp}}}


# Where a card JSON built from webhook actions records which action last set each field.
STAMPS = "_trackpulse_stamps"


def apply_action_to_card(card: dict[str, Any] | None, action: dict[str, Any]) -> dict[str, Any] | None:
    """The card JSON after `action`, whatever order actions arrive in.

    Each field (list, board, name, closed, each label, each custom field) remembers the
    (date, id) of the action that last set it, and an action only sets a field it is newer
    for. A card from a snapshot (a sync or a GET) is as of its `dateLastActivity`: every
    action up to then is already in it. So deliveries commute: any order gives the state
    the newest actions describe, and a late older move never sets an older list."""
    if card is None:
        card = card_from_action(action)
        if card is None:
            return None
    else:
        card = copy.deepcopy(card)
    meta = card.get(STAMPS) or {"since": [card.get("dateLastActivity") or "", "~"], "fields": {}}
    card[STAMPS] = meta
    since = tuple(meta["since"])
    fields: dict[str, list[str]] = meta["fields"]
    stamp = (action.get("date") or "", action["id"])

    def newer(name: str) -> bool:
        return stamp > tuple(fields.get(name, since))

    def put(name: str, value: Any) -> None:
        if newer(name):
            card[name] = value
            fields[name] = list(stamp)

    data = action.get("data") or {}
    ref = data.get("card") or {}
    kind = action.get("type")
    if (action.get("date") or "") > (card.get("dateLastActivity") or ""):
        card["dateLastActivity"] = action.get("date")
    if ref.get("name"):
        put("name", ref["name"])
    if kind in CREATION_TYPES or kind == "moveCardToBoard":
        if (data.get("list") or {}).get("id"):
            put("idList", data["list"]["id"])
        if (data.get("board") or {}).get("id"):
            put("idBoard", data["board"]["id"])
    elif kind == "updateCard":
        for k in data.get("old") or {}:
            if k in ref and k != "name":
                put(k, ref[k])
        if (data.get("listAfter") or {}).get("id"):
            put("idList", data["listAfter"]["id"])
    elif kind == "updateCustomFieldItem":
        item = data.get("customFieldItem") or {}
        fid = item.get("idCustomField") or (data.get("customField") or {}).get("id")
        if newer(f"cf:{fid}"):
            items = [x for x in card.get("customFieldItems") or [] if x.get("idCustomField") != fid]
            if item.get("value") is not None or item.get("idValue") is not None:
                items.append(item)
            card["customFieldItems"] = items
            fields[f"cf:{fid}"] = list(stamp)
    elif kind in MEMBER_TYPES:
        member_id = data.get("idMember") or (data.get("member") or {}).get("id")
        if member_id and newer(f"member:{member_id}"):
            ids = [m for m in card.get("idMembers") or [] if m != member_id]
            if kind == "addMemberToCard":
                ids.append(member_id)
            card["idMembers"] = ids
            fields[f"member:{member_id}"] = list(stamp)
    elif kind in ("addLabelToCard", "removeLabelFromCard"):
        label = data.get("label") or {}
        if newer(f"label:{label.get('id')}"):
            labels = [lb for lb in card.get("labels") or [] if lb.get("id") != label.get("id")]
            if kind == "addLabelToCard":
                labels.append({"id": label.get("id"), "idBoard": card.get("idBoard"),
                               "name": label.get("name", ""), "color": label.get("color")})
            card["labels"] = labels
            card["idLabels"] = [lb["id"] for lb in labels]
            fields[f"label:{label.get('id')}"] = list(stamp)
    return card

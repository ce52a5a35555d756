"""A simulated Trello account: boards, lists, labels, members, custom fields, cards and the
board actions that record every change, with the truth exposed for tests.

The world owns data only; `trello_app` serves it over HTTP the way api.trello.com does.
Everything a real board has that trackpulse reads is here:

- ids are 24-hex ObjectIds whose first 8 hex digits are the creation time in unix seconds
  (what the connector decodes for `created`), and ids grow with time, so "newest first" is
  "highest id first" exactly as on Trello;
- every change is an action in the board's log (`createCard`, `updateCard` list moves and
  archive/unarchive, `updateCustomFieldItem`, `commentCard`, `deleteCard`, board moves,
  copies, check-item conversions, label changes) shaped like Trello's, and bumps the card's
  `dateLastActivity` to the action's date;
- deleted cards vanish from `cards/all`; their actions stay in the log.

`TrelloWorld.generate()` builds a seeded history spread over months (back-and-forth moves,
points set and changed, comments, archive, unarchive, delete); the mutation methods and
`mutate()` change it later, on the world's own clock (`now`), never the host's.
Listeners (the HTTP app's webhook outbox) see every new action.
"""

from __future__ import annotations

import bisect
import random
import string
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

DEFAULT_NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
FLOW = ("Backlog", "To Do", "Doing", "Review", "Done")
LABELS = (("bug", "red"), ("P1", "orange"), ("P2", "yellow"), ("P3", "green"), ("feature", "blue"),
          ("design", "purple"))
# What a board webhook and the actions endpoint both understand as "something happened to a card".
CARD_ACTION_TYPES = frozenset({
    "createCard", "copyCard", "convertToCardFromCheckItem", "emailCard", "updateCard", "moveCardToBoard",
    "moveCardFromBoard", "deleteCard", "commentCard", "updateCustomFieldItem", "addLabelToCard",
    "removeLabelFromCard", "deleteComment", "addMemberToCard", "removeMemberFromCard",
})


def iso(at: datetime) -> str:
    """Trello's date format: UTC with milliseconds and Z."""
    at = at.astimezone(UTC)
    return (f"{at.year:04d}-{at.month:02d}-{at.day:02d}T{at.hour:02d}:{at.minute:02d}:{at.second:02d}."
            f"{at.microsecond // 1000:03d}Z")


def id_time(object_id: str) -> datetime:
    return datetime.fromtimestamp(int(object_id[:8], 16), tz=UTC)


def id_bound(value: str, *, upper: bool) -> str:
    """A `before`/`since` value (ObjectId or ISO date) as an id to compare against."""
    if len(value) == 24 and all(c in string.hexdigits for c in value):
        return value.lower()
    at = datetime.fromisoformat(value)
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    secs = int(at.timestamp())
    return f"{secs:08x}" + ("f" * 16 if upper else "0" * 16)


@dataclass
class Member:
    id: str
    username: str
    full_name: str

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id, "activityBlocked": False, "avatarHash": None, "avatarUrl": None,
            "fullName": self.full_name, "idMemberReferrer": None,
            "initials": "".join(p[0] for p in self.full_name.split()[:2]).upper(),
            "nonPublic": {}, "nonPublicAvailable": True, "username": self.username,
        }


@dataclass
class Card:
    id: str
    board_id: str
    list_id: str
    name: str
    id_short: int
    short_link: str
    pos: float
    label_ids: list[str] = field(default_factory=list)
    member_ids: list[str] = field(default_factory=list)
    closed: bool = False
    points: float | None = None
    points_item_id: str | None = None
    date_last_activity: datetime | None = None
    deleted: bool = False


@dataclass
class Board:
    id: str
    name: str
    short_link: str
    lists: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> Trello list JSON
    labels: dict[str, dict[str, Any]] = field(default_factory=dict)
    custom_fields: list[dict[str, Any]] = field(default_factory=list)
    member_ids: list[str] = field(default_factory=list)
    actions: list[dict[str, Any]] = field(default_factory=list)  # ascending id (oldest first)
    action_ids: list[str] = field(default_factory=list)
    next_short: int = 1
    date_last_activity: datetime | None = None

    @property
    def points_field_id(self) -> str | None:
        for f in self.custom_fields:
            if f["name"] == "Points":
                return str(f["id"])
        return None

    def list_id(self, name: str) -> str:
        for lid, lst in self.lists.items():
            if lst["name"] == name:
                return lid
        raise KeyError(f"board {self.id} has no list {name!r}")

    def ref(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "shortLink": self.short_link}


class TrelloWorld:
    """Boards and their action logs; thread-safe (the HTTP app and tests share it)."""

    def __init__(self, seed: int = 1, now: datetime = DEFAULT_NOW) -> None:
        self.rng = random.Random(seed)
        self.now = now
        self.lock = threading.RLock()
        self.boards: dict[str, Board] = {}
        self.cards: dict[str, Card] = {}  # including deleted ones (flagged), for the truth
        self.members: dict[str, Member] = {}
        self.me: Member | None = None
        self.listeners: list[Callable[[dict[str, Any]], None]] = []
        self.deleted_comments: set[str] = set()
        self._counter = self.rng.getrandbits(40)
        self._card_ids: list[str] = []
        self._public: dict[str, dict[str, Any]] = {}

    # --- ids -------------------------------------------------------------------------------
    def new_id(self, at: datetime) -> str:
        """An ObjectId for `at`: time prefix, then a counter so ids sort in creation order."""
        self._counter += 1
        return f"{int(at.timestamp()):08x}{self._counter:016x}"

    def _short_link(self) -> str:
        return "".join(self.rng.choice(string.ascii_letters + string.digits) for _ in range(8))

    def _tick(self, at: datetime | None) -> datetime:
        if at is not None:
            return at
        self.now += timedelta(seconds=self.rng.randint(30, 900), milliseconds=self.rng.randint(0, 999))
        return self.now

    # --- setup -----------------------------------------------------------------------------
    def add_member(self, username: str, full_name: str, at: datetime | None = None) -> Member:
        with self.lock:
            m = Member(self.new_id(at or self.now - timedelta(days=400)), username, full_name)
            self.members[m.id] = m
            if self.me is None:
                self.me = m
            return m

    def add_board(self, name: str, *, lists: Iterable[str] = FLOW, at: datetime | None = None,
                  points_field: str = "Points") -> Board:
        with self.lock:
            at = at or self.now - timedelta(days=365)
            board = Board(self.new_id(at), name, self._short_link(), date_last_activity=at)
            for i, lname in enumerate(lists):
                self._add_list(board, lname, pos=16384.0 * (i + 1), at=at)
            for lname, color in LABELS:
                lid = self.new_id(at)
                board.labels[lid] = {"id": lid, "idBoard": board.id, "name": lname, "color": color, "uses": 0}
            fid = self.new_id(at)
            board.custom_fields.append({
                "id": fid, "idModel": board.id, "modelType": "board", "fieldGroup": f"{self.rng.getrandbits(64):016x}",
                "display": {"cardFront": True, "name": points_field, "pos": 16384},
                "name": points_field, "pos": 16384, "type": "number", "isSuggestedField": False,
            })
            board.member_ids = list(self.members)
            self.boards[board.id] = board
            return board

    def _add_list(self, board: Board, name: str, *, pos: float, at: datetime) -> str:
        lid = self.new_id(at)
        board.lists[lid] = {"id": lid, "name": name, "closed": False, "idBoard": board.id, "pos": pos,
                            "subscribed": False, "softLimit": None}
        return lid

    def add_list(self, board_id: str, name: str) -> str:
        with self.lock:
            board = self.boards[board_id]
            return self._add_list(board, name, pos=16384.0 * (len(board.lists) + 1), at=self.now)

    # --- action log --------------------------------------------------------------------------
    def _card_ref(self, card: Card, **extra: Any) -> dict[str, Any]:
        return {"id": card.id, "name": card.name, "idShort": card.id_short, "shortLink": card.short_link, **extra}

    def _list_ref(self, board: Board, list_id: str) -> dict[str, Any]:
        return {"id": list_id, "name": board.lists[list_id]["name"]}

    def _log(self, board: Board, type_: str, at: datetime, member: Member, data: dict[str, Any],
             translation_key: str, card: Card | None = None) -> dict[str, Any]:
        aid = self.new_id(at)
        action = {
            "id": aid, "idMemberCreator": member.id, "data": data, "appCreator": None, "type": type_,
            "date": iso(at), "limits": {}, "display": {"translationKey": translation_key, "entities": {}},
            "memberCreator": self._public.get(member.id) or self._public.setdefault(member.id, member.public()),
        }
        if board.action_ids and aid < board.action_ids[-1]:
            # An action stamped earlier than the newest one (a scripted `at`): keep the log sorted.
            i = bisect.bisect_left(board.action_ids, aid)
            board.action_ids.insert(i, aid)
            board.actions.insert(i, action)
        else:
            board.action_ids.append(aid)
            board.actions.append(action)
        board.date_last_activity = at
        if card is not None:
            card.date_last_activity = at
        for listener in list(self.listeners):
            listener(action)
        return action

    def _member(self, member_id: str | None) -> Member:
        if member_id:
            return self.members[member_id]
        return self.rng.choice(list(self.members.values()))

    # --- mutations (each records the action Trello would) -------------------------------------
    def create_card(self, board_id: str, list_id: str, name: str, *, labels: Iterable[str] = (),
                    points: float | None = None, how: str = "createCard", member_id: str | None = None,
                    at: datetime | None = None) -> str:
        with self.lock:
            at = self._tick(at)
            board = self.boards[board_id]
            member = self._member(member_id)
            card = Card(self.new_id(at), board.id, list_id, name, board.next_short, self._short_link(),
                        pos=float(board.next_short) * 1024)
            board.next_short += 1
            card.label_ids = [lid for lid in board.labels if board.labels[lid]["name"] in set(labels)]
            self.cards[card.id] = card
            self._card_ids.append(card.id)
            data: dict[str, Any] = {"card": self._card_ref(card), "list": self._list_ref(board, list_id),
                                    "board": board.ref()}
            key = "action_create_card"
            if how == "copyCard":
                data["cardSource"] = self._card_ref(self.cards[self._card_ids[self.rng.randrange(len(self._card_ids))]])
                key = "action_copy_card"
            elif how == "convertToCardFromCheckItem":
                data["cardSource"] = self._card_ref(self.cards[self._card_ids[self.rng.randrange(len(self._card_ids))]])
                data["checklist"] = {"id": self.new_id(at), "name": "Checklist"}
                key = "action_convert_to_card_from_checkitem"
            elif how != "createCard":
                raise ValueError(f"unknown creation {how!r}")
            self._log(board, how, at, member, data, key, card)
            if points is not None:
                self.set_points(card.id, points, at=at + timedelta(seconds=1), member_id=member.id)
            return card.id

    def _live(self, card_id: str) -> tuple[Card, Board]:
        card = self.cards[card_id]
        if card.deleted:
            raise KeyError(f"card {card_id} is deleted")
        return card, self.boards[card.board_id]

    def move_card(self, card_id: str, list_id: str, *, at: datetime | None = None,
                  member_id: str | None = None) -> dict[str, Any]:
        with self.lock:
            card, board = self._live(card_id)
            if list_id not in board.lists:  # a list of the board the card has left: same name here
                name = next(b.lists[list_id]["name"] for b in self.boards.values() if list_id in b.lists)
                list_id = board.list_id(name) if name in {x["name"] for x in board.lists.values()} else card.list_id
            at = self._tick(at)
            before = card.list_id
            card.list_id = list_id
            data = {"card": self._card_ref(card, idList=list_id), "old": {"idList": before}, "board": board.ref(),
                    "listBefore": self._list_ref(board, before), "listAfter": self._list_ref(board, list_id)}
            return self._log(board, "updateCard", at, self._member(member_id), data,
                             "action_move_card_from_list_to_list", card)

    def set_closed(self, card_id: str, closed: bool, *, at: datetime | None = None,
                   member_id: str | None = None) -> dict[str, Any]:
        with self.lock:
            card, board = self._live(card_id)
            at = self._tick(at)
            card.closed = closed
            data = {"card": self._card_ref(card, closed=closed), "old": {"closed": not closed},
                    "board": board.ref(), "list": self._list_ref(board, card.list_id)}
            key = "action_archived_card" if closed else "action_sent_card_to_board"
            return self._log(board, "updateCard", at, self._member(member_id), data, key, card)

    def archive_card(self, card_id: str, **kw: Any) -> dict[str, Any]:
        return self.set_closed(card_id, True, **kw)

    def unarchive_card(self, card_id: str, **kw: Any) -> dict[str, Any]:
        return self.set_closed(card_id, False, **kw)

    def rename_card(self, card_id: str, name: str, *, at: datetime | None = None) -> dict[str, Any]:
        with self.lock:
            card, board = self._live(card_id)
            at = self._tick(at)
            old, card.name = card.name, name
            data = {"card": self._card_ref(card), "old": {"name": old}, "board": board.ref(),
                    "list": self._list_ref(board, card.list_id)}
            return self._log(board, "updateCard", at, self._member(None), data, "action_renamed_card", card)

    def set_points(self, card_id: str, value: float | None, *, at: datetime | None = None,
                   member_id: str | None = None) -> dict[str, Any]:
        with self.lock:
            card, board = self._live(card_id)
            at = self._tick(at)
            fid = board.points_field_id
            assert fid is not None
            old = card.points
            card.points = value
            if card.points_item_id is None:
                card.points_item_id = self.new_id(at)

            def num(v: float | None) -> dict[str, str] | None:
                return None if v is None else {"number": _num_text(v)}

            data = {
                "card": self._card_ref(card), "board": board.ref(),
                "customField": {"id": fid, "name": "Points", "type": "number"},
                "customFieldItem": {"id": card.points_item_id, "value": num(value), "idCustomField": fid,
                                    "idModel": card.id, "modelType": "card"},
                "old": {"value": num(old)},
            }
            return self._log(board, "updateCustomFieldItem", at, self._member(member_id), data,
                             "action_update_custom_field_item", card)

    def comment(self, card_id: str, text: str, *, at: datetime | None = None,
                member_id: str | None = None) -> dict[str, Any]:
        with self.lock:
            card, board = self._live(card_id)
            at = self._tick(at)
            data = {"text": text, "textData": {"emoji": {}}, "card": self._card_ref(card), "board": board.ref(),
                    "list": self._list_ref(board, card.list_id)}
            return self._log(board, "commentCard", at, self._member(member_id), data, "action_comment_on_card", card)

    def delete_comment(self, action_id: str, *, at: datetime | None = None) -> dict[str, Any]:
        with self.lock:
            for board in self.boards.values():
                i = bisect.bisect_left(board.action_ids, action_id)
                if i < len(board.action_ids) and board.action_ids[i] == action_id:
                    original = board.actions[i]
                    card, _ = self._live(original["data"]["card"]["id"])
                    at = self._tick(at)
                    self.deleted_comments.add(action_id)
                    data = {"action": {"id": action_id}, "card": self._card_ref(card), "board": board.ref()}
                    return self._log(board, "deleteComment", at, self._member(None), data,
                                     "action_delete_comment", card)
            raise KeyError(f"no comment action {action_id}")

    def create_label(self, board_id: str, name: str, color: str | None) -> dict[str, Any]:
        """A new board label (POST /1/boards/{id}/labels); Trello allows two labels of one name."""
        with self.lock:
            board = self.boards[board_id]
            lid = self.new_id(self.now)
            board.labels[lid] = {"id": lid, "idBoard": board.id, "name": name, "color": color, "uses": 0}
            return {k: v for k, v in board.labels[lid].items() if k != "uses"}

    def add_label(self, card_id: str, label_name: str, *, at: datetime | None = None) -> dict[str, Any]:
        with self.lock:
            card, board = self._live(card_id)
            label = next(lb for lb in board.labels.values() if lb["name"] == label_name)
            at = self._tick(at)
            if label["id"] not in card.label_ids:
                card.label_ids.append(label["id"])
            data = {"card": self._card_ref(card), "board": board.ref(),
                    "label": {"id": label["id"], "name": label["name"], "color": label["color"]},
                    "text": label["name"], "value": label["color"]}
            return self._log(board, "addLabelToCard", at, self._member(None), data, "action_add_label_to_card", card)

    def remove_label(self, card_id: str, label_name: str, *, at: datetime | None = None) -> dict[str, Any]:
        with self.lock:
            card, board = self._live(card_id)
            label = next(lb for lb in board.labels.values() if lb["name"] == label_name)
            at = self._tick(at)
            card.label_ids = [x for x in card.label_ids if x != label["id"]]
            data = {"card": self._card_ref(card), "board": board.ref(),
                    "label": {"id": label["id"], "name": label["name"], "color": label["color"]},
                    "text": label["name"], "value": label["color"]}
            return self._log(board, "removeLabelFromCard", at, self._member(None), data,
                             "action_remove_label_from_card", card)

    def add_member_to_card(self, card_id: str, member_id: str, *, at: datetime | None = None,
                           by: str | None = None) -> dict[str, Any] | None:
        """`addMemberToCard`; None when the member is on the card already (Trello refuses)."""
        with self.lock:
            card, board = self._live(card_id)
            if member_id in card.member_ids:
                return None
            card.member_ids.append(member_id)
            return self._member_action(card, board, "addMemberToCard", member_id, at, by,
                                       "action_add_member_to_card")

    def remove_member_from_card(self, card_id: str, member_id: str, *, at: datetime | None = None,
                                by: str | None = None) -> dict[str, Any] | None:
        with self.lock:
            card, board = self._live(card_id)
            if member_id not in card.member_ids:
                return None
            card.member_ids.remove(member_id)
            return self._member_action(card, board, "removeMemberFromCard", member_id, at, by,
                                       "action_remove_member_from_card")

    def _member_action(self, card: Card, board: Board, kind: str, member_id: str, at: datetime | None,
                       by: str | None, key: str) -> dict[str, Any]:
        at = self._tick(at)
        member = self.members[member_id]
        # A scripted past `at` must not move the card's or board's last activity backwards.
        card_last, board_last = card.date_last_activity, board.date_last_activity
        data: dict[str, Any] = {"card": self._card_ref(card), "board": board.ref(), "idMember": member.id,
                                "member": {"id": member.id, "name": member.full_name}}
        if kind == "removeMemberFromCard":
            data["deactivated"] = False
        action = self._log(board, kind, at, self.members[by] if by else member, data, key, card)
        action["member"] = member.public()
        card.date_last_activity = max(filter(None, (card_last, at)))
        board.date_last_activity = max(filter(None, (board_last, at)))
        return action

    def _plan_members(self, rng: random.Random) -> None:
        """Card members and their history, after the rest of the world and on their own random
        stream (the rest of the world stays as it was): most cards get one to three members soon
        after creation, some change hands later."""
        ids = sorted(self.members)
        end = self.now - timedelta(minutes=2)
        for card in sorted(self.cards.values(), key=lambda c: c.id):
            if card.deleted or rng.random() < 0.2:
                continue
            created = datetime.fromtimestamp(int(card.id[:8], 16), tz=UTC)
            last = card.date_last_activity or end
            if last <= created + timedelta(seconds=10):
                continue
            at = created + (last - created) * rng.uniform(0.01, 0.2)
            for m in rng.sample(ids, rng.choices([1, 2, 3], [60, 30, 10])[0]):
                at += timedelta(seconds=rng.uniform(1, 600))
                self.add_member_to_card(card.id, m, at=min(at, end))
            if rng.random() < 0.3:
                when = min(at + (last - at) * rng.uniform(0.1, 0.9), end)
                self.remove_member_from_card(card.id, rng.choice(card.member_ids), at=when)
                newcomer = rng.choice(ids)
                if newcomer not in card.member_ids:
                    self.add_member_to_card(card.id, newcomer, at=min(when + timedelta(seconds=30), end))

    def mutate_members(self, seed: int, n: int = 5) -> list[dict[str, Any]]:
        """Reassignments on the world's clock, on their own random stream: a member joins or
        leaves a live card."""
        rng = random.Random(f"{seed}:members")
        out: list[dict[str, Any]] = []
        with self.lock:
            live = sorted((c for c in self.cards.values() if not c.deleted and not c.closed), key=lambda c: c.id)
            for _ in range(n):
                if not live:
                    break
                card = rng.choice(live)
                self.now += timedelta(seconds=rng.randint(30, 900))
                m = rng.choice(sorted(self.members))
                action = (self.remove_member_from_card(card.id, m, at=self.now) if m in card.member_ids
                          else self.add_member_to_card(card.id, m, at=self.now))
                if action is not None:
                    out.append(action)
        return out

    def delete_card(self, card_id: str, *, at: datetime | None = None) -> dict[str, Any]:
        with self.lock:
            card, board = self._live(card_id)
            at = self._tick(at)
            card.deleted = True
            data = {"card": {"id": card.id, "idShort": card.id_short, "shortLink": card.short_link},
                    "list": self._list_ref(board, card.list_id), "board": board.ref()}
            return self._log(board, "deleteCard", at, self._member(None), data, "action_delete_card", card)

    def move_card_to_board(self, card_id: str, board_id: str, list_id: str, *,
                           at: datetime | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
        """Trello logs the move twice: `moveCardFromBoard` on the source, `moveCardToBoard` on the target."""
        with self.lock:
            card, source = self._live(card_id)
            target = self.boards[board_id]
            at = self._tick(at)
            member = self._member(None)
            from_list = card.list_id
            # Labels are board-scoped: a moved card keeps the ones of the same name.
            names = {source.labels[x]["name"] for x in card.label_ids if x in source.labels}
            card.label_ids = [lid for lid, lb in target.labels.items() if lb["name"] in names]
            card.board_id, card.list_id = target.id, list_id
            if card.points is not None and target.points_field_id:
                card.points_item_id = card.points_item_id or self.new_id(at)
            left = self._log(source, "moveCardFromBoard", at, member,
                             {"card": self._card_ref(card), "board": source.ref(),
                              "boardTarget": {"id": target.id, "name": target.name},
                              "list": self._list_ref(source, from_list)}, "action_move_card_from_board", card)
            arrived = self._log(target, "moveCardToBoard", at, member,
                                {"card": self._card_ref(card), "board": target.ref(),
                                 "boardSource": {"id": source.id, "name": source.name},
                                 "list": self._list_ref(target, list_id)}, "action_move_card_to_board", card)
            return left, arrived

    def advance(self, seconds: float) -> datetime:
        with self.lock:
            self.now += timedelta(seconds=seconds)
            return self.now

    def mutate(self, n: int = 1, *, board_id: str | None = None) -> list[dict[str, Any]]:
        """Apply `n` random, realistic changes (moves back and forth, points, comments, archive,
        unarchive, delete, new cards) on the world's clock; returns the new actions."""
        out: list[dict[str, Any]] = []
        record = out.append
        with self.lock:
            self.listeners.append(record)
            try:
                for _ in range(n):
                    self._random_change(board_id)
            finally:
                self.listeners.remove(record)
        return out

    def _random_change(self, board_id: str | None) -> None:
        rng = self.rng
        boards = [self.boards[board_id]] if board_id else list(self.boards.values())
        board = rng.choice(boards)
        live = [c for c in self.cards.values() if c.board_id == board.id and not c.deleted]
        roll = rng.random()
        if not live or roll < 0.12:
            self.create_card(board.id, board.list_id(rng.choice(FLOW[:2])), f"Card {board.next_short}",
                             labels=_random_labels(rng), points=rng.choice([None, 1, 2, 3, 5, 8]))
            return
        card = rng.choice(live)
        if card.closed:
            if roll < 0.5:
                self.unarchive_card(card.id)
            else:
                self.comment(card.id, "why archived?")
        elif roll < 0.55:
            self.move_card(card.id, _next_list(rng, board, card.list_id))
        elif roll < 0.68:
            self.set_points(card.id, rng.choice([None, 1, 2, 3, 5, 8, 13]))
        elif roll < 0.82:
            self.comment(card.id, rng.choice(["looks good", "blocked on API", "see PR", "ça marche ✅"]))
        elif roll < 0.90:
            self.archive_card(card.id)
        elif roll < 0.94:
            self.delete_card(card.id)
        elif roll < 0.97:
            self.add_label(card.id, rng.choice(["bug", "P1", "P2"]))
        else:
            self.rename_card(card.id, card.name + " (renamed)")

    # --- generation ---------------------------------------------------------------------------
    @classmethod
    def generate(cls, seed: int = 1, *, boards: int = 1, cards_per_board: int = 60,
                 actions_per_card: float = 8.0, days: int = 180, now: datetime = DEFAULT_NOW,
                 members: int = 5) -> TrelloWorld:
        """A seeded account with months of history (about `actions_per_card` actions per card)."""
        world = cls(seed, now)
        rng = world.rng
        for i in range(members):
            world.add_member(f"user{i}", f"User {chr(65 + i)} Example")
        start = now - timedelta(days=days)
        for b in range(boards):
            world.add_board(f"Team board {b + 1}", at=start - timedelta(days=30))
        plans: list[tuple[datetime, int, Callable[[], None]]] = []
        handles: dict[int, str] = {}
        seq = 0

        last = now - timedelta(minutes=1)

        def plan(at: datetime, fn: Callable[[], None]) -> None:
            nonlocal seq
            seq += 1
            # History never reaches past `now`: later mutations must sort after all of it.
            plans.append((min(at, last), seq, fn))

        span = (now - start).total_seconds()
        board_list = list(world.boards.values())
        for h in range(cards_per_board * boards):
            board = board_list[h % boards]
            t = start + timedelta(seconds=rng.uniform(0, span * 0.97))
            world._plan_card(board, h, t, now, plan, handles, actions_per_card)
        # Two-board worlds get a few moves across boards (a card's history spans both).
        if boards > 1:
            for h in rng.sample(range(cards_per_board * boards), k=max(1, cards_per_board // 20)):
                at = now - timedelta(seconds=rng.uniform(60, span * 0.2))
                plan(at, world._guarded(handles, h, lambda cid: world._cross_board(cid)))
        plans.sort(key=lambda p: (p[0], p[1]))
        for at, _, fn in plans:
            world._plan_now = at
            fn()
        world._plan_now = None
        world._plan_members(random.Random(f"{seed}:members"))
        return world

    _plan_now: datetime | None = None

    def _guarded(self, handles: dict[int, str], h: int, fn: Callable[[str], Any]) -> Callable[[], None]:
        """Run `fn(card_id)` at play time unless the card is gone (deleted earlier in the plan)."""
        def run() -> None:
            cid = handles.get(h)
            if cid is None or self.cards[cid].deleted:
                return
            fn(cid)
        return run

    def _cross_board(self, card_id: str) -> None:
        card = self.cards[card_id]
        targets = [b for b in self.boards.values() if b.id != card.board_id]
        target = self.rng.choice(targets)
        self.move_card_to_board(card_id, target.id, target.list_id(self.rng.choice(FLOW[1:3])), at=self._plan_now)

    def _plan_card(self, board: Board, h: int, t: datetime, now: datetime,
                   plan: Callable[[datetime, Callable[[], None]], None], handles: dict[int, str],
                   actions_per_card: float) -> None:
        rng = self.rng
        end = now - timedelta(minutes=5)
        how = rng.choices(["createCard", "copyCard", "convertToCardFromCheckItem"], [90, 5, 5])[0]
        first = rng.choice(FLOW[:2])
        labels = _random_labels(rng)

        def create() -> None:
            handles[h] = self.create_card(board.id, board.list_id(first), f"Card {h + 1}", labels=labels,
                                          how=how, at=self._plan_now)
        plan(t, create)
        g = lambda fn: self._guarded(handles, h, fn)
        at = t
        n = 1
        if rng.random() < 0.75:
            at += timedelta(minutes=rng.uniform(1, 120))
            value: int | None = rng.choice([1, 2, 3, 5, 8])
            plan(at, g(lambda cid, v=value: self.set_points(cid, v, at=self._plan_now)))
            n += 1
        # Walk the flow with some steps back; stop early for cards still in flight.
        stage = FLOW.index(first)
        goal = rng.choices([4, 3, 2, 1], [70, 10, 10, 10])[0]
        while stage < goal and at < end:
            at += timedelta(hours=rng.expovariate(1 / 30))
            if rng.random() < 0.2 and stage >= 2:
                stage -= 1
            else:
                stage += 1
            target = FLOW[stage]
            plan(at, g(lambda cid, ln=target: self.move_card(cid, board.list_id(ln), at=self._plan_now)))
            n += 1
        # Extra activity up to the requested density: comments, points changes, wobble moves.
        extra = max(0, int(rng.expovariate(1 / max(0.1, actions_per_card - n - 0.6))))
        for _ in range(extra):
            when = t + (min(at, end) - t) * rng.random() + timedelta(seconds=rng.uniform(1, 3600))
            r = rng.random()
            if r < 0.7:
                plan(when, g(lambda cid: self.comment(cid, "progress note", at=self._plan_now)))
            elif r < 0.85:
                value = rng.choice([None, 2, 3, 5, 8, 13])
                plan(when, g(lambda cid, v=value: self.set_points(cid, v, at=self._plan_now)))
            else:
                plan(when, g(lambda cid: self._wobble(cid)))
        fate = rng.random()
        if stage == 4 and fate < 0.3:
            at += timedelta(days=rng.uniform(1, 20))
            plan(at, g(lambda cid: self.archive_card(cid, at=self._plan_now)))
            if rng.random() < 0.15:
                at += timedelta(days=rng.uniform(1, 5))
                plan(at, g(lambda cid: self.unarchive_card(cid, at=self._plan_now)))
        elif fate > 0.97:
            at += timedelta(days=rng.uniform(0.5, 10))
            plan(at, g(lambda cid: self.delete_card(cid, at=self._plan_now)))

    def _wobble(self, card_id: str) -> None:
        """A move back and forth (Review <-> Doing), the history that makes cycle time non-trivial."""
        card = self.cards[card_id]
        board = self.boards[card.board_id]
        self.move_card(card_id, _next_list(self.rng, board, card.list_id), at=self._plan_now)

    # --- reads (what the HTTP app serves) -------------------------------------------------------
    def board(self, board_id: str) -> Board:
        return self.boards[board_id]

    def board_json(self, board: Board) -> dict[str, Any]:
        return {
            "id": board.id, "name": board.name, "desc": "", "descData": None, "closed": False,
            "idOrganization": None, "idEnterprise": None, "pinned": False,
            "url": f"https://trello.com/b/{board.short_link}/{board.name.lower().replace(' ', '-')}",
            "shortUrl": f"https://trello.com/b/{board.short_link}", "shortLink": board.short_link,
            "prefs": {"permissionLevel": "private", "background": "blue", "cardAging": "regular"},
            "labelNames": {lb["color"]: lb["name"] for lb in board.labels.values()},
            "dateLastActivity": iso(board.date_last_activity) if board.date_last_activity else None,
        }

    def card_json(self, card: Card, *, custom_field_items: bool = False) -> dict[str, Any]:
        board = self.boards[card.board_id]
        labels = [dict(board.labels[x]) for x in card.label_ids if x in board.labels]
        for lb in labels:
            lb.pop("uses", None)
        slug = "-".join(card.name.lower().split())
        out: dict[str, Any] = {
            "id": card.id,
            "badges": {"attachmentsByType": {"trello": {"board": 0, "card": 0}}, "location": False, "votes": 0,
                       "viewingMemberVoted": False, "subscribed": False, "fogbugz": "", "checkItems": 0,
                       "checkItemsChecked": 0, "checkItemsEarliestDue": None, "comments": 0, "attachments": 0,
                       "description": False, "due": None, "dueComplete": False, "start": None},
            "checkItemStates": None, "closed": card.closed, "dueComplete": False,
            "dateLastActivity": iso(card.date_last_activity) if card.date_last_activity else None,
            "desc": "", "descData": {"emoji": {}}, "due": None, "dueReminder": None, "email": None,
            "idBoard": card.board_id, "idChecklists": [], "idList": card.list_id, "idMembers": list(card.member_ids),
            "idMembersVoted": [], "idShort": card.id_short, "idAttachmentCover": None, "labels": labels,
            "idLabels": [lb["id"] for lb in labels], "manualCoverAttachment": False, "name": card.name,
            "pos": card.pos, "shortLink": card.short_link, "shortUrl": f"https://trello.com/c/{card.short_link}",
            "start": None, "subscribed": False, "url": f"https://trello.com/c/{card.short_link}/{card.id_short}-{slug}",
            "cover": {"idAttachment": None, "color": None, "idUploadedBackground": None, "size": "normal",
                      "brightness": "dark", "idPlugin": None},
            "isTemplate": False, "cardRole": None,
        }
        if custom_field_items:
            items = []
            fid = board.points_field_id
            if card.points is not None and fid:
                items.append({"id": card.points_item_id, "value": {"number": _num_text(card.points)},
                              "idCustomField": fid, "idModel": card.id, "modelType": "card"})
            out["customFieldItems"] = items
        return out

    def board_cards(self, board_id: str, card_filter: str = "visible") -> list[Card]:
        """Cards of a board by Trello's filter (`all` and `closed` include archived cards)."""
        cards = [c for c in self.cards.values() if c.board_id == board_id and not c.deleted]
        if card_filter in ("open", "visible"):
            cards = [c for c in cards if not c.closed]
        elif card_filter == "closed":
            cards = [c for c in cards if c.closed]
        elif card_filter == "none":
            cards = []
        return cards

    def board_actions(self, board_id: str, *, before: str | None = None, since: str | None = None,
                      limit: int = 50, types: Iterable[str] | None = None) -> list[dict[str, Any]]:
        """Newest first, `before`/`since` exclusive (ids or dates), at most `limit`."""
        board = self.boards[board_id]
        ids = board.action_ids
        hi = bisect.bisect_left(ids, id_bound(before, upper=False)) if before else len(ids)
        lo = bisect.bisect_right(ids, id_bound(since, upper=True)) if since else 0
        matcher = _type_matcher(types)
        out: list[dict[str, Any]] = []
        i = hi - 1
        while i >= lo and len(out) < limit:
            action = board.actions[i]
            if matcher(action):
                out.append(action)
            i -= 1
        return out

    def find_action(self, action_id: str) -> dict[str, Any] | None:
        for board in self.boards.values():
            i = bisect.bisect_left(board.action_ids, action_id)
            if i < len(board.action_ids) and board.action_ids[i] == action_id:
                return board.actions[i]
        return None

    # --- the truth, in tracker terms, for tests -------------------------------------------------
    def truth_moves(self, board_ids: Iterable[str] | None = None) -> set[tuple[str, str, str | None, str]]:
        """(card id, action id, from list, to list) for every creation, list move and board arrival."""
        out: set[tuple[str, str, str | None, str]] = set()
        for board in self._boards(board_ids):
            for a in board.actions:
                d = a["data"]
                if a["type"] in ("createCard", "copyCard", "convertToCardFromCheckItem", "moveCardToBoard"):
                    out.add((d["card"]["id"], a["id"], None, d["list"]["id"]))
                elif a["type"] == "updateCard" and "listAfter" in d:
                    out.add((d["card"]["id"], a["id"], d["listBefore"]["id"], d["listAfter"]["id"]))
        return out

    def truth_points_changes(self, board_ids: Iterable[str] | None = None
                             ) -> set[tuple[str, str, float | None, float | None]]:
        out: set[tuple[str, str, float | None, float | None]] = set()
        for board in self._boards(board_ids):
            for a in board.actions:
                if a["type"] == "updateCustomFieldItem":
                    d = a["data"]
                    new, old = d["customFieldItem"]["value"], d["old"]["value"]
                    out.add((d["card"]["id"], a["id"], float(old["number"]) if old else None,
                             float(new["number"]) if new else None))
        return out

    def truth_comments(self, board_ids: Iterable[str] | None = None) -> set[tuple[str, str, str]]:
        """(comment action id, card id, author id) of comments not deleted."""
        return {(a["id"], a["data"]["card"]["id"], a["idMemberCreator"])
                for board in self._boards(board_ids) for a in board.actions
                if a["type"] == "commentCard" and a["id"] not in self.deleted_comments}

    def truth_cards(self, board_ids: Iterable[str] | None = None) -> dict[str, Card]:
        """Every card ever created on these boards (deleted ones flagged), by id."""
        wanted = {b.id for b in self._boards(board_ids)}
        return {c.id: c for c in self.cards.values() if c.board_id in wanted}

    def action_count(self, board_ids: Iterable[str] | None = None) -> int:
        return sum(len(b.actions) for b in self._boards(board_ids))

    def _boards(self, board_ids: Iterable[str] | None) -> list[Board]:
        if board_ids is None:
            return list(self.boards.values())
        return [self.boards[b] for b in board_ids]


def _num_text(v: float) -> str:
    """Trello stores custom-field numbers as strings ("5", "2.5")."""
    return str(int(v)) if float(v).is_integer() else str(v)


def _random_labels(rng: random.Random) -> list[str]:
    out = []
    if rng.random() < 0.2:
        out.append("bug")
    if rng.random() < 0.5:
        out.append(rng.choice(["P1", "P2", "P3"]))
    if rng.random() < 0.2:
        out.append(rng.choice(["feature", "design"]))
    return out


def _next_list(rng: random.Random, board: Board, list_id: str) -> str:
    names = [board.lists[x]["name"] for x in board.lists]
    current = board.lists[list_id]["name"]
    i = FLOW.index(current) if current in FLOW else 0
    step = 1 if rng.random() < 0.7 else -1
    j = min(len(FLOW) - 1, max(0, i + step))
    if j == i:
        j = max(0, i - 1) if i == len(FLOW) - 1 else i + 1
    name = FLOW[j] if FLOW[j] in names else names[0]
    return board.list_id(name)


def _type_matcher(types: Iterable[str] | None) -> Callable[[dict[str, Any]], bool]:
    """Trello's `filter`: action types, or `type:field` for the updateCard variants (`updateCard:idList`)."""
    if types is None:
        return lambda a: True
    plain: set[str] = set()
    fields: dict[str, set[str]] = {}
    for t in types:
        t = t.strip()
        if not t:
            continue
        if t == "all":
            return lambda a: True
        if ":" in t:
            typ, fld = t.split(":", 1)
            fields.setdefault(typ, set()).add(fld)
        else:
            plain.add(t)

    def match(a: dict[str, Any]) -> bool:
        if a["type"] in plain:
            return True
        wanted = fields.get(a["type"])
        return bool(wanted and wanted & set(a["data"].get("old", {})))
    return match

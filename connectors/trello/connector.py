"""The Trello pull path: check a source, sync its boards into the store.

What is pulled, per configured board, and how it is keyed:

| entity              | request                                                        | key / cursor            |
|---------------------|----------------------------------------------------------------|-------------------------|
| board, lists, labels, custom fields, members | `GET /1/boards/{id}?lists=all&labels=all&customFields=true&members=all` (one request) | board id, list id |
| cards (archived too) | `GET /1/boards/{id}/cards/all?customFieldItems=true`          | card id                 |
| actions             | `GET /1/boards/{id}/actions?filter=…&limit=1000&before=…&since=…`, newest first | action id; cursor `actions:{board}` = newest action id stored |

Every run walks the actions backwards from the newest down to a floor (the `since` cursor,
or nothing on `--full`), one page of up to 1000 per request. Each page commits in one
transaction with the walk's progress (`actions-walk:{board}` = the top id, the oldest id
done, the floor). Only when the walk reaches its floor does `actions:{board}` move to the
top id, so a killed run resumes its walk where it stopped and loses nothing; rows are
keyed by action id, so re-reading a page duplicates nothing. The cursor is tracker data
(an action id), never the host clock.

Cards are read once per run that has anything to do, after the first page of actions: the
snapshot is then at least as new as the top action, and anything later is a newer action
the next run walks to. A full run writes every card and then marks deleted what no
configured board lists any more; an incremental one writes the cards that changed.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Self

import httpx
import sqlalchemy as sa
from sqlmodel import col
from trello import TrelloClient

from trackpulse.config import TrelloSourceConfig
from trackpulse.errors import RequestFailed
from trackpulse.gcpolicy import sparse_collections
from trackpulse.records import BoardRecord, ItemBundle, ProjectRecord
from trackpulse.store import writer
from trackpulse.store.db import Store
from trackpulse.store.models import Item
from trackpulse.sync_api import CheckResult, NoProgress, Progress, SyncResult, WebhookResult

from .api import PAGE_LIMIT, PyTrelloTransport, TrelloApi
from .mapping import BoardMapping, card_to_item, list_statuses, parse_date, points_field_ids
from .rows import fill_reporters, item_fingerprint, save_members, save_points_fields, write_actions

SINCE_CURSOR = "actions:{board}"
_FINGERPRINT_COLUMNS = (col(Item.item_id), col(Item.updated), col(Item.status_id), col(Item.archived),
                        col(Item.points), col(Item.priority), col(Item.is_defect), col(Item.project),
                        col(Item.summary), col(Item.key), col(Item.assignee), col(Item.deleted),
                        col(Item.assignees))
WALK_CURSOR = "actions-walk:{board}"


@dataclass
class _Walk:
    top: str | None  # newest action id of this walk: the `since` cursor once the walk is done
    before: str | None  # the oldest action id written so far (next page is older)
    floor: str | None  # where the walk stops (the previous `since` cursor; None = everything)
    resumed: bool = False

    def dump(self) -> str:
        return json.dumps({"top": self.top, "before": self.before, "floor": self.floor})


class TrelloConnector:
    kind = "trello"

    def __init__(self, cfg: TrelloSourceConfig, client: httpx.Client | None = None, *,
                 sleep: Callable[[float], None] = time.sleep, page_limit: int = PAGE_LIMIT) -> None:
        self.cfg = cfg
        self.page_limit = page_limit  # Trello's maximum; smaller only to exercise paging in tests
        self._owns_client = client is None  # a client handed in stays the caller's to close
        self.api = TrelloApi(cfg, client, sleep=sleep)
        self.http = self.api.http

    def close(self) -> None:
        """Close the HTTP client this connector built (its keep-alive connections)."""
        if self._owns_client:
            self.api.close()

    def apply_webhook(self, store: Store, body: dict[str, Any], headers: Mapping[str, str]) -> WebhookResult:
        from .webhooks import apply_webhook

        return apply_webhook(store, self.cfg, body, headers)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- check ------------------------------------------------------------------------------------
    def pytrello(self) -> TrelloClient:
        """py-trello on our transport (pacing, 429 recovery, our errors, the configured api_url).
        The token goes in `api_secret`: that is how py-trello spells key+token auth."""
        return TrelloClient(api_key=self.cfg.key.get_secret_value(), api_secret=self.cfg.token.get_secret_value(),
                            http_service=PyTrelloTransport(self.api))

    def check(self) -> CheckResult:
        client = self.pytrello()
        # fetch_json, not get_member(): Member.fetch() needs `email`, which tokens without the
        # account scope do not return (a KeyError inside py-trello).
        me = client.fetch_json("/members/me", query_params={"fields": "username,fullName"})
        details = [f"token of {me.get('fullName') or '?'} (@{me.get('username') or '?'})"]
        for board_id in self.cfg.boards:
            try:
                board = client.get_board(board_id)
            except RequestFailed as exc:
                if exc.status in (400, 404):
                    raise RequestFailed(self.cfg.name, f"board {board_id} does not exist or this token cannot see it "
                                        f"(HTTP {exc.status}); check `boards` in the config",
                                        url=self.api.url(f"/boards/{board_id}"), status=exc.status) from exc
                raise
            details.append(f"board {board.name!r} ({board_id}){' (closed)' if board.closed else ''}")
        return CheckResult(self.cfg.name, True, "Trello", user=me.get("username"), details=details)

    # --- sync -------------------------------------------------------------------------------------
    def sync(self, store: Store, *, full: bool = False, progress: Progress | None = None) -> SyncResult:
        with sparse_collections():  # a sync allocates millions of acyclic objects (trackpulse.gcpolicy)
            return self._sync(store, full=full, progress=progress)

    def _sync(self, store: Store, *, full: bool, progress: Progress | None) -> SyncResult:
        progress = progress or NoProgress()
        result = SyncResult(self.cfg.name, "trello", full)
        alive: set[str] = set()
        latest: datetime | None = None
        cursors = []
        for board_id in self.cfg.boards:
            seen, newest, cursor = self._sync_board(store, board_id, full, result, progress)
            alive |= seen
            latest = max(filter(None, (latest, newest)), default=None)
            cursors.append(f"{board_id}:{cursor or '-'}")
        if full and latest is not None:
            # Every configured board listed its cards: what none of them has is gone.
            with store.transaction() as s:
                n = writer.reconcile_deleted_items(s, self.cfg.name, alive, latest)
            result.deleted += n
            if n:
                result.notes.append(f"{n} cards no longer on any configured board marked deleted")
        result.cursor = ",".join(cursors)
        return result

    def _mapping(self, snapshot: dict[str, Any]) -> BoardMapping:
        statuses = {s.status_id: s for s in list_statuses(self.cfg, snapshot.get("lists") or [])}
        members = {str(m["id"]): str(m.get("fullName") or m.get("username") or m["id"])
                   for m in snapshot.get("members") or [] if m.get("id")}
        return BoardMapping(self.cfg, statuses, set(points_field_ids(self.cfg, snapshot.get("customFields") or [])),
                            members=members)

    def _sync_board(self, store: Store, board_id: str, full: bool, result: SyncResult,
                    progress: Progress) -> tuple[set[str], datetime | None, str | None]:
        source = self.cfg.name
        snapshot = self.api.board_snapshot(board_id)
        mapping = self._mapping(snapshot)
        label = f"board {snapshot.get('name') or board_id}"
        with store.transaction() as s:
            writer.upsert_projects(s, source, [ProjectRecord(board_id, board_id, str(snapshot.get("name") or ""))])
            writer.upsert_boards(s, source, [BoardRecord(board_id, str(snapshot.get("name") or ""), "trello",
                                                         board_id)])
            writer.upsert_statuses(s, source, list(mapping.statuses.values()))
            save_points_fields(s, source, board_id, mapping.points_fields)
            save_members(s, source, board_id, mapping.members)
            since = writer.get_cursor(s, source, SINCE_CURSOR.format(board=board_id))
            saved = writer.get_cursor(s, source, WALK_CURSOR.format(board=board_id))
        walk = self._plan_walk(full, since, saved)
        newest = parse_date(snapshot.get("dateLastActivity"))
        alive: set[str] = set()
        progress.begin(source, label)
        first = True
        while True:
            page = self.api.actions_page(board_id, before=walk.before, since=walk.floor, limit=self.page_limit)
            if walk.top is None and page:
                walk.top = page[0]["id"]
            cards: list[dict[str, Any]] | None = None
            if first and (full or walk.resumed or page):
                cards = self.api.cards(board_id)
                alive = {c["id"] for c in cards}
            done = len(page) < self.page_limit
            with store.transaction() as s:
                if cards is not None:
                    result.items += self._write_cards(s, mapping, cards, full)
                counts = write_actions(s, mapping, page, tracked_boards=self.cfg.boards)
                if done:
                    if walk.top:
                        writer.set_cursor(s, source, SINCE_CURSOR.format(board=board_id), walk.top)
                    writer.clear_cursor(s, source, WALK_CURSOR.format(board=board_id))
                else:
                    walk.before = page[-1]["id"]
                    writer.set_cursor(s, source, WALK_CURSOR.format(board=board_id), walk.dump())
            result.histories += counts.histories
            result.comments += counts.comments
            result.deleted += counts.deleted
            if page:
                at = parse_date(page[0].get("date"))
                newest = max(filter(None, (newest, at)), default=None)
            progress.advance(source, label, len(page))
            first = False
            if done:
                break
        progress.end(source, label)
        return alive, newest, walk.top or since

    @staticmethod
    def _plan_walk(full: bool, since: str | None, saved: str | None) -> _Walk:
        if saved:
            prior = json.loads(saved)
            # Resume an interrupted walk unless it stops short of what a --full run needs.
            if not full or prior.get("floor") is None:
                return _Walk(prior.get("top"), prior.get("before"), prior.get("floor"), resumed=True)
        return _Walk(None, None, None if full else since)

    def _write_cards(self, s: Any, mapping: BoardMapping, cards: list[dict[str, Any]], full: bool) -> int:
        items = [card_to_item(mapping, c) for c in cards]
        if mapping.new_statuses:
            writer.upsert_statuses(s, self.cfg.name, mapping.new_statuses)
            mapping.new_statuses.clear()
        if not full:
            ids = [i.item_id for i in items]
            stored: dict[str, tuple[Any, ...]] = {}
            for k in range(0, len(ids), 5000):
                rows = s.execute(sa.select(*_FINGERPRINT_COLUMNS).where(
                    col(Item.source) == self.cfg.name, col(Item.item_id).in_(ids[k:k + 5000])))
                stored.update({r.item_id: item_fingerprint(r) for r in rows})
            items = [i for i in items if stored.get(i.item_id) != item_fingerprint(i)]
        writer.apply_bundles(s, self.cfg.name, [ItemBundle(item=i, item_id=i.item_id) for i in items])
        fill_reporters(s, self.cfg.name, [i.item_id for i in items])
        return len(items)


def open_connector(source_cfg: TrelloSourceConfig, *, client: httpx.Client | None = None) -> TrelloConnector:
    return TrelloConnector(source_cfg, client)

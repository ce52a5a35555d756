"""Recorded real Trello responses (shared/fixtures/trello, from Apache DevLake's e2e data)
parse into the rows we expect; expected values are read from the JSON itself."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from trackpulse.connectors.trello.mapping import BoardMapping, card_to_item, list_statuses, points_field_ids

from trackpulse.config import TrelloSourceConfig

FIXTURES = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures" / "trello"
pytestmark = pytest.mark.skipif(not (FIXTURES / "cards.json").exists(),
                                reason=f"recorded Trello responses not found at {FIXTURES}")


def _items(name: str) -> list[dict[str, Any]]:
    items = json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))["items"]
    return [i["data"] if isinstance(i, dict) and "data" in i and "input" in i else i for i in items]


def _cfg() -> TrelloSourceConfig:
    # Label and list names as the template boards use them (emoji and Chinese included).
    return TrelloSourceConfig(
        name="recorded", kind="trello", key="k", token="t", boards=["6402f643d23aa9af56b28f4b"],
        done_lists=["Done", "Done 🎉", "完成"], in_progress_lists=["Doing", "In Progress", "Code Review", "Testing"],
        defect_labels=["Blocked 🔙"], priority_labels=["Flagged 🔴", "Not clear ⏸", "Planning"],
    )


def test_recorded_lists_become_the_status_catalogue_with_categories_by_name() -> None:
    cfg = _cfg()
    lists = _items("lists")
    statuses = {s.status_id: s for s in list_statuses(cfg, lists)}
    assert len(statuses) == len(lists) == 37
    for lst in lists:
        s = statuses[lst["id"]]
        assert s.name == lst["name"]
        folded = lst["name"].casefold()
        expected = ("done" if folded in {"done", "done 🎉", "完成"} else
                    "in_progress" if folded in {"doing", "in progress", "code review", "testing"} else "todo")
        assert s.category == expected, lst["name"]


def test_recorded_cards_parse_into_the_expected_items() -> None:
    cfg = _cfg()
    mapping = BoardMapping(cfg, {s.status_id: s for s in list_statuses(cfg, _items("lists"))},
                           set(points_field_ids(cfg, [])))
    cards = _items("cards")
    assert len(cards) == 72
    per_board: dict[str, int] = defaultdict(int)
    for card in cards:
        item = card_to_item(mapping, card)
        per_board[item.project] += 1
        names = [lb["name"] for lb in card["labels"]]
        assert item.item_id == card["id"] and item.key == card["shortLink"] and item.project == card["idBoard"]
        assert item.summary == card["name"]
        assert item.created == datetime.fromtimestamp(int(card["id"][:8], 16), tz=UTC)
        assert item.updated == datetime.fromisoformat(card["dateLastActivity"].replace("Z", "+00:00"))  # noqa: FURB162
        assert item.updated.tzinfo is not None
        lst = next(x for x in _items("lists") if x["id"] == card["idList"])
        assert (item.status_id, item.status_name) == (lst["id"], lst["name"])
        assert item.archived is card["closed"] is False
        assert item.is_defect == ("Blocked 🔙" in names) and item.type == ("Bug" if item.is_defect else "Card")
        assert item.priority == next((p for p in cfg.priority_labels if p in names), None)
        assert item.points is None  # the template boards have no custom fields
        assert item.assignee == (card["idMembers"][0] if card["idMembers"] else None)
        assert item.raw is card
    assert dict(per_board) == {"640987842d1ccfffebb316fd": 25, "6402f643d23aa9af56b28f4b": 23,
                               "6402f6413ee115cc0084af56": 14, "64098772e6751c75dc0dc6bb": 10}


def test_recorded_labels_drive_type_and_priority_on_the_cards_that_carry_them() -> None:
    cfg = _cfg()
    mapping = BoardMapping(cfg, {s.status_id: s for s in list_statuses(cfg, _items("lists"))})
    items = [card_to_item(mapping, c) for c in _items("cards")]
    carrying = [c for c in _items("cards") if any(lb["name"] == "Blocked 🔙" for lb in c["labels"])]
    assert sum(i.is_defect for i in items) == len(carrying) == 1
    label_ids = {lb["id"] for lb in _items("labels")}
    assert all(set(c["idLabels"]) <= label_ids for c in _items("cards"))
    assert sum(i.priority is not None for i in items) == sum(
        any(lb["name"] in cfg.priority_labels for lb in c["labels"]) for c in _items("cards")) == 4

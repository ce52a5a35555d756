"""Trello post-back over HTTP to the Trello simulator: a retry whose first outcome is unknown
finds its marker instead of commenting twice; the rule's label is created on the board once and
put on the card once, the card's other labels untouched."""

from __future__ import annotations

import httpx
from test_trello_support import running, source_cfg
from trackpulse.connectors.trello.postback import TrelloPostBack

from trackpulse.outcomes import Sent
from trackpulse.simulator.trello_world import TrelloWorld


def test_comment_retry_finds_its_marker_and_label_is_added_once() -> None:
    world = TrelloWorld.generate(5, boards=1, cards_per_board=3)
    board_id = next(iter(world.boards))
    card = next(c for c in world.cards.values() if not c.deleted)
    labels_before = list(card.label_ids)
    comments_before = sum(1 for c in world.truth_comments([board_id]) if c[1] == card.id)
    with running(world) as sim, httpx.Client() as http:
        pb = TrelloPostBack(source_cfg(sim.url, [board_id]), http)
        segments = [("trackpulse alert: late", True), (" resolution clock breached", False),
                    ("\ntrackpulse alert id abc123", False)]
        first = pb.post_comment(card.id, segments, "trackpulse alert id abc123", check_first=False)
        retry = pb.post_comment(card.id, segments, "trackpulse alert id abc123", check_first=True)
        assert isinstance(first, Sent) and retry == first  # found, not posted again
        one = pb.add_label(card.id, "sla-late")
        two = pb.add_label(card.id, "sla-late")
        assert isinstance(one, Sent) and two == one
    assert sum(1 for c in world.truth_comments([board_id]) if c[1] == card.id) == comments_before + 1
    named = [lb for lb in world.boards[board_id].labels.values() if lb["name"] == "sla-late"]
    assert len(named) == 1
    assert card.label_ids == [*labels_before, named[0]["id"]]


def test_sla_breaches_on_trello_get_one_comment_and_one_label_each_end_to_end(store) -> None:  # type: ignore[no-untyped-def]
    from trackpulse.connectors.trello import open_connector

    from trackpulse.alerts import evaluate_and_dispatch
    from trackpulse.config import AppConfig
    from trackpulse.sync_api import NoProgress

    world = TrelloWorld.generate(5, boards=1, cards_per_board=12)
    board_id = next(iter(world.boards))
    with running(world) as sim, httpx.Client() as http:
        src = source_cfg(sim.url, [board_id])
        open_connector(src).sync(store, full=True, progress=NoProgress())
        secrets = {k: getattr(src, k).get_secret_value() for k in ("key", "token", "app_secret")}
        cfg = AppConfig.model_validate({
            "sources": [src.model_dump(mode="python") | secrets],
            "sla": {"policies": [{"name": "any", "resolution_hours": 1}]},
            "alerts": {"rules": [{"name": "late", "when": "sla_breached", "clocks": ["resolution"],
                                  "post_back": ["comment", "label"], "label": "sla-late"}]}})
        labels_before = {c.id: list(c.label_ids) for c in world.cards.values()}
        first = evaluate_and_dispatch(cfg, store, as_of=world.now, http=http)
        again = evaluate_and_dispatch(cfg, store, as_of=world.now, http=http)
    assert first.opened and first.dispatch is not None and first.dispatch.failed == 0
    assert again.opened == [] and again.dispatch is not None and again.dispatch.messages == 0
    breached = {c.item_id for c in first.conditions}
    marked: dict[str, int] = {}
    for a in world.boards[board_id].actions:
        if a["type"] == "commentCard" and "trackpulse alert id" in a["data"].get("text", ""):
            marked[a["data"]["card"]["id"]] = marked.get(a["data"]["card"]["id"], 0) + 1
    assert marked == {card_id: 1 for card_id in breached}
    [label] = [lb["id"] for lb in world.boards[board_id].labels.values() if lb["name"] == "sla-late"]
    for card in world.cards.values():
        expected = [*labels_before[card.id], label] if card.id in breached else labels_before[card.id]
        assert card.label_ids == expected, card.id

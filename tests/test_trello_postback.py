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

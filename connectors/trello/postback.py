"""Posting back to a Trello card: one comment per alert and a board label, each ONE attempt -> Outcome.

- comment: `POST /1/cards/{id}/actions/comments` (`text`, Markdown); its text carries a marker
  (the alert id) that `find_comment` looks for among the card's `commentCard` actions, so a
  retry after an unknown outcome never posts twice (Trello has no entity properties);
- label: reuse the board's label of that name (`GET /1/boards/{id}/labels`), or create it once
  (`POST /1/boards/{id}/labels`, name and colour); then add it to the card
  (`POST /1/cards/{id}/idLabels?value=<label id>`) unless the card has it already.

Credentials are the source's key and token, sent in the OAuth header (never in URLs). Nothing
here sleeps or retries: the dispatcher does, from the Outcome.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx

from trackpulse.config import TrelloSourceConfig
from trackpulse.http import parse_retry_after
from trackpulse.outcomes import Failed, Outcome, RetryAfter, Sent

Segment = tuple[str, bool]  # (text, bold)
LABEL_COLOUR = "red"


def markdown_text(segments: Sequence[Segment]) -> str:
    return "".join(f"**{text}**" if bold else text for text, bold in segments)


def answer_of(resp: httpx.Response) -> str:
    try:
        body = resp.json()
    except ValueError:
        return f"HTTP {resp.status_code} {' '.join(resp.text.split())[:300]}".strip()
    if isinstance(body, dict):
        words = " ".join(str(body.get(k)) for k in ("error", "message") if body.get(k))
        return f"HTTP {resp.status_code} {words}".strip()
    return f"HTTP {resp.status_code} {' '.join(str(body).split())[:300]}"


def _refused(resp: httpx.Response) -> Outcome:
    if resp.status_code == 429 or resp.status_code >= 500:
        wait = parse_retry_after(resp.headers.get("Retry-After"))
        # Trello sends no Retry-After: its windows are 10 s long.
        return RetryAfter(wait if wait is not None else 10.0, answer_of(resp))
    return Failed(answer_of(resp), resp.status_code)


def _transport(exc: httpx.HTTPError, what: str) -> Outcome:
    kind = type(exc).__name__
    if isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout)):
        return RetryAfter(60.0, f"cannot connect ({kind})")
    return RetryAfter(30.0, f"outcome unknown ({kind}); the retry checks the {what} first")


class TrelloPostBack:
    """Comments and labels on one Trello source's cards, through a client handed in from outside."""

    def __init__(self, cfg: TrelloSourceConfig, client: httpx.Client) -> None:
        self.cfg = cfg
        self.client = client
        self.base = cfg.api_url.rstrip("/")
        self.headers = {
            "Authorization": f'OAuth oauth_consumer_key="{cfg.key.get_secret_value()}", '
                             f'oauth_token="{cfg.token.get_secret_value()}"',
            "Accept": "application/json", "User-Agent": "trackpulse"}

    def _send(self, method: str, path: str, **kw: Any) -> httpx.Response:
        return self.client.request(method, f"{self.base}{path}", headers=self.headers,
                                   timeout=self.cfg.timeout_seconds, **kw)

    def find_comment(self, card_id: str, marker: str) -> str | Outcome | None:
        try:
            resp = self._send("GET", f"/1/cards/{card_id}/actions", params={"filter": "commentCard", "limit": 1000})
        except httpx.HTTPError as exc:
            return _transport(exc, "card's comments")
        if resp.status_code != 200:
            return _refused(resp)
        for action in resp.json():
            if marker in str((action.get("data") or {}).get("text", "")):
                return str(action["id"])
        return None

    def post_comment(self, card_id: str, segments: Sequence[Segment], marker: str, *,
                     check_first: bool) -> Outcome:
        if check_first:
            found = self.find_comment(card_id, marker)
            if isinstance(found, str):
                return Sent(found)
            if found is not None:
                return found
        try:
            resp = self._send("POST", f"/1/cards/{card_id}/actions/comments",
                              params={"text": markdown_text(segments)})
        except httpx.HTTPError as exc:
            return _transport(exc, "card's comments")
        if resp.status_code == 200:
            return Sent(str(resp.json().get("id")))
        return _refused(resp)

    def add_label(self, card_id: str, name: str) -> Outcome:
        """The board's label `name` (found or created once) on the card; idempotent."""
        try:
            card = self._send("GET", f"/1/cards/{card_id}", params={"fields": "idBoard,idLabels"})
            if card.status_code != 200:
                return _refused(card)
            board, have = card.json()["idBoard"], set(card.json().get("idLabels") or [])
            labels = self._send("GET", f"/1/boards/{board}/labels", params={"fields": "name,color", "limit": 1000})
            if labels.status_code != 200:
                return _refused(labels)
            label_id = next((lb["id"] for lb in labels.json() if lb.get("name") == name), None)
            if label_id is None:
                made = self._send("POST", f"/1/boards/{board}/labels", params={"name": name, "color": LABEL_COLOUR})
                if made.status_code != 200:
                    return _refused(made)
                label_id = made.json()["id"]
            if label_id in have:
                return Sent(label_id)
            added = self._send("POST", f"/1/cards/{card_id}/idLabels", params={"value": label_id})
        except httpx.HTTPError as exc:
            return _transport(exc, "board's labels")
        if added.status_code == 200:
            return Sent(label_id)
        return _refused(added)

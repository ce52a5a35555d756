"""Microsoft Teams through a Workflows "When a Teams webhook request is received" URL
(ALERTS_NOTES.md §5): an Adaptive Card in a `message` envelope.

The retired Office 365 connector URLs (`*.webhook.office.com`, `outlook.office.com/webhook`) are
refused by the configuration. The URL's `sig=` parameter is the credential; no HMAC. A
Workflows trigger answers 202 Accepted with an empty body, which is delivered (treating it as a
failure caused duplicates in several tools, Pitfall 11); any 2xx is. More than 4 requests a
second are throttled with 429. Mentions are not rendered (an Adaptive Card mention needs the
member's Entra id and display name, which a webhook channel does not know).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, ClassVar

from trackpulse.channels.base import AlertView, Message
from trackpulse.channels.chat import WebhookChannel, cut_to_fit, dumps, markdown_link
from trackpulse.channels.wording import title as alert_title
from trackpulse.channels.wording import words
from trackpulse.i18n import Lang

_HEADING = re.compile(r"^#{1,6}\s*(.+)$", re.MULTILINE)


class TeamsChannel(WebhookChannel):
    kind: ClassVar[str] = "teams"
    max_message_bytes: ClassVar[int] = 28_000  # "message size limit is 28 KB"
    min_interval: ClassVar[float] = 0.25  # more than 4 a second is throttled
    per_minute: ClassVar[int | None] = None

    def _body(self, title: str, blocks: list[str]) -> dict[str, Any]:
        body: list[dict[str, Any]] = [{"type": "TextBlock", "text": title, "weight": "Bolder", "size": "Medium",
                                       "wrap": True}]
        body += [{"type": "TextBlock", "text": b, "wrap": True, "spacing": "Small"} for b in blocks]
        card = {"$schema": "http://adaptivecards.io/schemas/adaptive-card.json", "type": "AdaptiveCard",
                "version": "1.4", "body": body}
        return {"type": "message",
                "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None,
                                 "content": card}]}

    def render(self, alerts: Sequence[AlertView], lang: Lang) -> Message:
        title = alert_title(alerts, lang)
        blocks = []
        for a in alerts:
            w = words(a, lang)
            blocks.append(f"**{markdown_link(w.label, w.url)}** {w.sentence}\n\n{w.details}")
        return self._message(self._body(title, blocks), text="\n".join([title, *blocks]),
                             alert_ids=[a.id for a in alerts])

    def render_markdown(self, title: str, markdown: str, lang: Lang) -> Message:
        # TextBlock Markdown has no headings: make them bold lines.
        md = _HEADING.sub(lambda m: f"**{m.group(1)}**", markdown)
        text = cut_to_fit("", md, self.max_message_bytes, lang, lambda h, b: len(dumps(self._body(title, [b]))))
        return self._message(self._body(title, [text]), text=f"{title}\n{markdown}")

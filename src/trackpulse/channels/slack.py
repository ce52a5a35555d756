"""Slack incoming webhooks: `text` (the notification fallback) plus `blocks` (ALERTS_NOTES.md §4).

No signing: the URL is the secret. Success is HTTP 200 with the body `ok`; errors are an HTTP
status with a plain-text code (400 invalid_payload, 403 invalid_token / action_prohibited,
404 channel_not_found / no_service, 410 channel_is_archived) and are permanent; 429 carries
`Retry-After` seconds, which the outcome passes on. One message a second per channel.
Slack's mrkdwn is not Markdown: bold is `*x*`, links are `<url|text>`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, ClassVar

import httpx

from trackpulse.channels.base import AlertView, Message
from trackpulse.channels.chat import WebhookChannel, cut_to_fit, dumps
from trackpulse.channels.wording import title as alert_title
from trackpulse.channels.wording import words
from trackpulse.i18n import Lang
from trackpulse.outcomes import Failed, Outcome, Sent

_SECTION_CHARS = 2900  # a section block's text is at most 3000 characters
_BOLD = re.compile(r"\*\*(.+?)\*\*")
_LINK = re.compile(r"\[([^\]]+)\]\(([^)\s]+)\)")
_HEADING = re.compile(r"^#{1,6}\s*(.+)$", re.MULTILINE)


def to_mrkdwn(markdown: str) -> str:
    """The common Markdown of digests and test messages in Slack's mrkdwn."""
    text = markdown.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = _LINK.sub(lambda m: f"<{m.group(2)}|{m.group(1)}>", text)
    text = _HEADING.sub(lambda m: f"*{m.group(1)}*", text)
    return _BOLD.sub(lambda m: f"*{m.group(1)}*", text)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class SlackChannel(WebhookChannel):
    kind: ClassVar[str] = "slack"
    max_message_bytes: ClassVar[int] = 35_000  # well under the 40,000-character text limit
    min_interval: ClassVar[float] = 1.0
    per_minute: ClassVar[int | None] = None

    def _mentions(self) -> str:
        return " ".join(m if m.startswith("<") else f"<@{m}>" for m in self.mention)

    def _body(self, title: str, mrkdwn: str) -> dict[str, Any]:
        sections: list[str] = []
        current = ""
        for line in mrkdwn.splitlines():
            if current and len(current) + len(line) + 1 > _SECTION_CHARS:
                sections.append(current)
                current = ""
            current = f"{current}\n{line}" if current else line[:_SECTION_CHARS]
        if current:
            sections.append(current)
        mentions = self._mentions()
        blocks: list[dict[str, Any]] = [{"type": "header", "text": {"type": "plain_text", "text": title[:150]}}]
        blocks += [{"type": "section", "text": {"type": "mrkdwn", "text": s}} for s in sections[:48]]
        if mentions:
            blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": mentions}})
        return {"text": f"{title} {mentions}".strip(), "blocks": blocks}

    def render(self, alerts: Sequence[AlertView], lang: Lang) -> Message:
        title = alert_title(alerts, lang)
        lines = []
        for a in alerts:
            w = words(a, lang)
            label = f"<{w.url}|{_escape(w.label)}>" if w.url else _escape(w.label)
            lines.append(f"• *{label}* {_escape(w.sentence)}\n    _{_escape(w.details)}_")
        text = "\n".join(lines)
        return self._message(self._body(title, text), text=f"{title}\n{text}", alert_ids=[a.id for a in alerts])

    def render_markdown(self, title: str, markdown: str, lang: Lang) -> Message:
        text = cut_to_fit("", to_mrkdwn(markdown), self.max_message_bytes, lang,
                          lambda h, b: len(dumps(self._body(title, b))))
        return self._message(self._body(title, text), text=f"{title}\n{markdown}")

    def _judge(self, response: httpx.Response) -> Outcome:
        if response.text.strip() == "ok":
            return Sent()
        return Failed(self.answer(response), response.status_code)

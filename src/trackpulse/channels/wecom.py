"""WeCom group robot (企业微信群机器人): markdown messages (ALERTS_NOTES.md §3).

No signing: the `key` in the URL is the only credential. Markdown content is at most 4096 bytes
(errcode 40058 beyond); mentions are `<@userid>` inside the content (the `mentioned_list` field
is for text messages only). `errcode` 0 is delivered; 45009 (frequency limit; the robot allows
20 a minute) is retried later; 93000 (invalid webhook URL) and every other code are failures.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import httpx

from trackpulse.channels.base import AlertView, Message
from trackpulse.channels.chat import WebhookChannel, cut_to_fit, dumps, markdown_link
from trackpulse.channels.wording import title as alert_title
from trackpulse.channels.wording import words
from trackpulse.i18n import Lang
from trackpulse.outcomes import Failed, Outcome, RetryAfter, Sent

RATE_LIMITED = frozenset({45009})
RATE_LIMIT_RETRY_SECONDS = 60.0


class WeComChannel(WebhookChannel):
    kind: ClassVar[str] = "wecom"
    # The limit is on markdown.content; the serialised body is never smaller than its content,
    # so a body under 4096 bytes always passes.
    max_message_bytes: ClassVar[int] = 4096
    min_interval: ClassVar[float] = 3.0
    per_minute: ClassVar[int | None] = 20

    def _body(self, content: str) -> dict[str, Any]:
        ats = " ".join(f"<@{m}>" for m in self.mention)
        return {"msgtype": "markdown", "markdown": {"content": content + (f"\n{ats}" if ats else "")}}

    def render(self, alerts: Sequence[AlertView], lang: Lang) -> Message:
        lines = [f"### {alert_title(alerts, lang)}"]
        for a in alerts:
            w = words(a, lang)
            lines.append(f"> **{markdown_link(w.label, w.url)}** {w.sentence}\n> {w.details}")
        text = "\n".join(lines)
        return self._message(self._body(text), text=text, alert_ids=[a.id for a in alerts])

    def render_markdown(self, title: str, markdown: str, lang: Lang) -> Message:
        head = f"### {title}\n"
        text = cut_to_fit(head, markdown, self.max_message_bytes, lang,
                          lambda h, b: len(dumps(self._body(h + b))))
        return self._message(self._body(head + text), text=head + text)

    def _judge(self, response: httpx.Response) -> Outcome:
        data = self._json(response)
        if data is None or "errcode" not in data:
            return Failed(self.answer(response), response.status_code)
        code = data.get("errcode")
        words_ = self.redact(f"errcode {code}: {data.get('errmsg', '')}".strip())
        if code == 0:
            return Sent()
        if code in RATE_LIMITED:
            return RetryAfter(RATE_LIMIT_RETRY_SECONDS, words_)
        return Failed(words_, response.status_code)

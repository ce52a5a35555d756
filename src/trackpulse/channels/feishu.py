"""Feishu / Lark custom bot (飞书自定义机器人): signed interactive cards (ALERTS_NOTES.md §2).

Signing is the reverse of DingTalk's (Pitfall 7): the HMAC-SHA256 *key* is
f"{timestamp}\\n{secret}" and the *message is empty*; `timestamp` is in seconds; both go into
the JSON body, not the URL. The bot answers in the body: `code` 0 is delivered, 11232 (rate
limited: 5 a second, 100 a minute) is retried later, 19021 (sign match fail), 19022 (IP),
19024 (keywords), 9499 (bad request) and every other code are failures.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Sequence
from typing import Any, ClassVar

import httpx

from trackpulse.channels.base import AlertView, Message
from trackpulse.channels.chat import WebhookChannel, cut_to_fit, dumps, markdown_link
from trackpulse.channels.wording import title as alert_title
from trackpulse.channels.wording import words
from trackpulse.i18n import Lang
from trackpulse.outcomes import Failed, Outcome, RetryAfter, Sent

RATE_LIMITED = frozenset({11232})
RATE_LIMIT_RETRY_SECONDS = 60.0


def sign(timestamp_s: int, secret: str) -> str:
    """Feishu's signature for `timestamp_s`: HMAC keyed by "timestamp\\nsecret" over b""."""
    key = f"{timestamp_s}\n{secret}".encode()
    return base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode("ascii")


class FeishuChannel(WebhookChannel):
    kind: ClassVar[str] = "feishu"
    max_message_bytes: ClassVar[int] = 20_000  # request body <= 20 KB; room for timestamp and sign
    min_interval: ClassVar[float] = 0.2  # 5 a second
    per_minute: ClassVar[int | None] = 100

    def _body(self, title: str, markdown: str) -> dict[str, Any]:
        ats = " ".join(f"<at id={m}></at>" for m in self.mention)
        content = markdown + (f"\n\n{ats}" if ats else "")
        return {"msg_type": "interactive",
                "card": {"schema": "2.0",
                         "header": {"title": {"tag": "plain_text", "content": title}, "template": "red"},
                         "body": {"elements": [{"tag": "markdown", "content": content}]}}}

    def render(self, alerts: Sequence[AlertView], lang: Lang) -> Message:
        title = alert_title(alerts, lang)
        lines = []
        for a in alerts:
            w = words(a, lang)
            lines.append(f"- **{markdown_link(w.label, w.url)}** {w.sentence}\n  {w.details}")
        text = "\n".join(lines)
        return self._message(self._body(title, text), text=f"{title}\n{text}", alert_ids=[a.id for a in alerts])

    def render_markdown(self, title: str, markdown: str, lang: Lang) -> Message:
        text = cut_to_fit("", markdown, self.max_message_bytes, lang, lambda h, b: len(dumps(self._body(title, b))))
        return self._message(self._body(title, text), text=f"{title}\n{text}")

    def _sign(self, body: Any, delivery_id: str) -> tuple[dict[str, str], dict[str, str], bytes]:
        if not self._secret:
            return {}, {}, dumps(body)
        ts = int(time.time())
        return {}, {}, dumps({"timestamp": str(ts), "sign": sign(ts, self._secret), **body})

    def _judge(self, response: httpx.Response) -> Outcome:
        data = self._json(response)
        code = None if data is None else data.get("code", data.get("StatusCode"))
        if code is None or data is None:
            return Failed(self.answer(response), response.status_code)
        words_ = self.redact(f"code {code}: {data.get('msg', data.get('StatusMessage', ''))}".strip())
        if code == 0:
            return Sent()
        if code in RATE_LIMITED:
            return RetryAfter(RATE_LIMIT_RETRY_SECONDS, words_)
        return Failed(words_, response.status_code)

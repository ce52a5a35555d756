"""DingTalk custom robot (钉钉自定义机器人): signed markdown messages (ALERTS_NOTES.md §1).

Signing: `timestamp` (epoch ms) and `sign` = base64(HMAC-SHA256(key=secret,
msg=f"{timestamp}\\n{secret}")) as query parameters. The raw base64 goes into httpx `params=`,
which URL-encodes it exactly once (encoding it ourselves as well is the classic 310000
"sign not match", Pitfall 1). The robot refuses in the body of an HTTP 200: `errcode` 0 is
delivered, 130101 (over 20 a minute; the robot is then limited for 10 minutes) is retried
later, 310000 (signature, keyword, IP) and every other code are failures.
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

RATE_LIMITED = frozenset({130101, 410100})
# "每分钟最多发送20条消息到群里，如果超过20条，会限流10分钟"
RATE_LIMIT_PENALTY_SECONDS = 600.0


def sign(timestamp_ms: int, secret: str) -> str:
    """The raw (not URL-encoded) base64 signature DingTalk expects for `timestamp_ms`."""
    digest = hmac.new(secret.encode("utf-8"), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


class DingTalkChannel(WebhookChannel):
    kind: ClassVar[str] = "dingtalk"
    max_message_bytes: ClassVar[int] = 20_000  # errcode 460101 "message too long, exceed 20000 bytes"
    min_interval: ClassVar[float] = 3.0  # 20 per minute
    per_minute: ClassVar[int | None] = 20

    def _at(self) -> tuple[dict[str, Any], str]:
        mobiles = [m for m in self.mention if m != "all"]
        at = {"atMobiles": mobiles, "isAtAll": "all" in self.mention}
        # An @ renders only when "@<mobile>" also appears in the text.
        tail = ("\n\n" + " ".join(f"@{m}" for m in mobiles)) if mobiles else ""
        return at, tail

    def _body(self, title: str, text: str) -> dict[str, Any]:
        at, tail = self._at()
        return {"msgtype": "markdown", "markdown": {"title": title, "text": text + tail}, "at": at}

    def render(self, alerts: Sequence[AlertView], lang: Lang) -> Message:
        title = alert_title(alerts, lang)
        lines = [f"### {title}", ""]
        for a in alerts:
            w = words(a, lang)
            lines.append(f"- **{markdown_link(w.label, w.url)}** {w.sentence}  \n  {w.details}")
        text = "\n".join(lines)
        return self._message(self._body(title, text), text=text, alert_ids=[a.id for a in alerts])

    def render_markdown(self, title: str, markdown: str, lang: Lang) -> Message:
        head = f"### {title}\n\n"
        text = cut_to_fit(head, markdown, self.max_message_bytes, lang,
                          lambda h, b: len(dumps(self._body(title, h + b))))
        return self._message(self._body(title, head + text), text=head + text)

    def _sign(self, body: Any, delivery_id: str) -> tuple[dict[str, str], dict[str, str], bytes]:
        if not self._secret:
            return {}, {}, dumps(body)
        ts = int(time.time() * 1000)
        return {"timestamp": str(ts), "sign": sign(ts, self._secret)}, {}, dumps(body)

    def _judge(self, response: httpx.Response) -> Outcome:
        data = self._json(response)
        if data is None or "errcode" not in data:
            return Failed(self.answer(response), response.status_code)
        code = data.get("errcode")
        words_ = self.redact(f"errcode {code}: {data.get('errmsg', '')}".strip())
        if code == 0:
            return Sent()
        if code in RATE_LIMITED:
            return RetryAfter(RATE_LIMIT_PENALTY_SECONDS, words_)
        return Failed(words_, response.status_code)

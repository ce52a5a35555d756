"""The generic `webhook` channel: a JSON document signed the Standard Webhooks way
(ACTIONS.md; ALERTS_NOTES.md §7).

Headers: `webhook-id` (the delivery id: a retry repeats it, so receivers de-duplicate on it),
`webhook-timestamp` (unix seconds of this attempt) and `webhook-signature`
`v1,<base64 HMAC-SHA256 over "{id}.{timestamp}.{body}">`, keyed by the base64-decoded bytes of
the `whsec_…` secret, as the standard's own libraries verify. Any 2xx is delivered; 429 and
5xx are retried; 410 (the receiver disabled us) and other 4xx are failures.

Alert messages are `trackpulse.alerts/1` documents; free-form ones (digest summaries, channel
tests) are `trackpulse.message/1`: {"schema", "sent_at", "language", "title", "markdown"}.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar

from trackpulse.channels.base import AlertView, Message
from trackpulse.channels.chat import WebhookChannel, cut_to_fit, dumps
from trackpulse.i18n import Lang

ALERTS_SCHEMA = "trackpulse.alerts/1"
MESSAGE_SCHEMA = "trackpulse.message/1"


def secret_key(secret: str) -> bytes:
    """The HMAC key of a `whsec_<base64>` secret (raises ValueError if it is not one)."""
    if not secret.startswith("whsec_"):
        raise ValueError("a Standard Webhooks secret starts with whsec_")
    return base64.b64decode(secret.removeprefix("whsec_"), validate=True)


def signature(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode("ascii")


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class WebhookJsonChannel(WebhookChannel):
    kind: ClassVar[str] = "webhook"
    max_message_bytes: ClassVar[int] = 256_000
    min_interval: ClassVar[float] = 0.0
    per_minute: ClassVar[int | None] = None

    def render(self, alerts: Sequence[AlertView], lang: Lang) -> Message:
        body = {"schema": ALERTS_SCHEMA, "sent_at": _now(), "alerts": [a.as_json() for a in alerts]}
        text = "\n".join(f"{a.rule}: {a.item or a.project or a.source}" for a in alerts)
        return self._message(body, text=text, alert_ids=[a.id for a in alerts])

    def render_markdown(self, title: str, markdown: str, lang: Lang) -> Message:
        def body(text: str) -> dict[str, Any]:
            return {"schema": MESSAGE_SCHEMA, "sent_at": _now(), "language": lang, "title": title, "markdown": text}

        text = cut_to_fit("", markdown, self.max_message_bytes, lang, lambda h, b: len(dumps(body(b))))
        return self._message(body(text), text=f"{title}\n{markdown}")

    def _sign(self, body: Any, delivery_id: str) -> tuple[dict[str, str], dict[str, str], bytes]:
        raw = dumps(body)
        ts = int(time.time())
        headers = {"webhook-id": delivery_id, "webhook-timestamp": str(ts)}
        if self._secret:
            headers["webhook-signature"] = signature(secret_key(self._secret), delivery_id, ts, raw)
        return {}, headers, raw

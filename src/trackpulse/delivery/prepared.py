"""Ready-made messages in the outbox: a message rendered by its producer (a digest's e-mail with
its `cid:` charts, or a digest's chat body) and stored whole in a `Delivery` row's payload, so
the dispatcher sends exactly what was built, however late it gets to send it.

Such rows have `target_kind = "message"`, `target` = the channel's name and `alert_id` = the
producer's subject (for digests `digest:<name>:<scheduled local time>`). They share the outbox's
claims, retries with backoff, pacing and `failed` state with alert deliveries, and show in
`trackpulse alerts history` beside them. The payload holds no secret: a channel's URL, token
and password are read from the configuration when the row is sent.
"""

from __future__ import annotations

import base64
import email
import email.policy
from collections.abc import Sequence
from datetime import datetime
from email.message import EmailMessage
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session
from sqlmodel import col

from trackpulse.channels.base import Message
from trackpulse.outcomes import Failed, Outcome, RetryAfter, Sent
from trackpulse.store.db import Store
from trackpulse.store.models import Delivery
from trackpulse.store.writer import insert_once

TARGET_KIND = "message"


def payload_of(message: Message) -> dict[str, Any]:
    """A JSON-able form of `message` that `message_of` turns back into the same message."""
    if isinstance(message.body, EmailMessage):
        raw = message.body.as_bytes()
        return {"format": "email", "mime_b64": base64.b64encode(raw).decode("ascii"), "size": message.size,
                "text": message.text}
    return {"format": "json", "body": message.body, "size": message.size, "text": message.text}


def message_of(payload: dict[str, Any]) -> Message:
    if payload.get("format") == "email":
        parsed = email.message_from_bytes(base64.b64decode(payload["mime_b64"]), policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        return Message(body=parsed, size=int(payload["size"]), text=str(payload.get("text", "")))
    return Message(body=payload["body"], size=int(payload["size"]), text=str(payload.get("text", "")))


def enqueue(session: Session, *, delivery_id: str, subject: str, channel: str, message: Message,
            now: datetime) -> bool:
    """Add one ready-made message for `channel` in the caller's transaction; False when a row
    with this id exists already (the producer's exactly-once key)."""
    return insert_once(session, Delivery, {
        "id": delivery_id, "alert_id": subject, "target_kind": TARGET_KIND, "target": channel,
        "status": "pending", "attempts": 0, "not_before": now, "payload": payload_of(message),
        "created_at": now, "updated_at": now})


def outcomes(store: Store, ids: Sequence[str], now: datetime) -> dict[str, Outcome | None]:
    """{delivery id: its state as an Outcome}: Sent, Failed, RetryAfter (still pending, with the
    seconds until it is due again), None for an id that is not in the outbox."""
    with store.session() as s:
        rows = {r.id: r for r in s.execute(sa.select(Delivery).where(col(Delivery.id).in_(list(ids)))).scalars()}
    out: dict[str, Outcome | None] = {}
    for i in ids:
        r = rows.get(i)
        if r is None:
            out[i] = None
        elif r.status == "sent":
            out[i] = Sent(remote_id=r.remote_id)
        elif r.status == "failed":
            out[i] = Failed(r.answer or "failed")
        else:
            due = r.not_before if r.not_before.tzinfo else r.not_before.replace(tzinfo=now.tzinfo)
            out[i] = RetryAfter(max((due - now).total_seconds(), 0.0), r.answer or "pending in the outbox")
    return out

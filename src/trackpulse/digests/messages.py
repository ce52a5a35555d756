"""One digest message per channel: the e-mail (HTML with cid: charts and a text part) for
`email` channels, the fitted Markdown/card for chat channels."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from trackpulse.channels.base import Message
from trackpulse.config import ChannelConfig
from trackpulse.digests.chat import chat_message
from trackpulse.digests.content import DigestContent
from trackpulse.digests.mail import RenderedMail, build_email, render_mail


def channel_messages(content: DigestContent, channels: list[ChannelConfig], *, when: datetime,
                     opened: dict[str, Any] | None = None) -> dict[str, Message]:
    """{channel name: message}. The charts are rendered once, whatever the number of e-mail channels.
    `opened`: channel objects of the channels package by name, whose `render_markdown` makes chat bodies."""
    mail: RenderedMail | None = None
    out: dict[str, Message] = {}
    for ch in channels:
        if ch.kind == "email":
            mail = mail or render_mail(content)
            email = build_email(mail, sender=ch.sender, to=list(ch.to), when=when)
            out[ch.name] = Message(body=email, size=len(email.as_bytes()), text=mail.text,
                                   extra={"html_bytes": len(mail.html.encode("utf-8"))})
        else:
            out[ch.name] = chat_message(ch.kind, content, (opened or {}).get(ch.name))
    return out

"""One digest message per channel: the e-mail (HTML with cid: charts and a text part) for
`email` channels, the fitted Markdown/card for chat channels."""

from __future__ import annotations

from datetime import datetime

from trackpulse.channels import open_channel
from trackpulse.channels.base import Message
from trackpulse.config import ChannelConfig
from trackpulse.digests.chat import chat_message
from trackpulse.digests.content import DigestContent
from trackpulse.digests.mail import RenderedMail, build_email, render_mail


def channel_messages(content: DigestContent, channels: list[ChannelConfig], *, when: datetime) -> dict[str, Message]:
    """{channel name: message}, rendered without sending anything. The charts are rendered
    once, whatever the number of e-mail channels."""
    mail: RenderedMail | None = None
    out: dict[str, Message] = {}
    for ch in channels:
        if ch.kind == "email":
            mail = mail or render_mail(content)
            email = build_email(mail, sender=ch.sender, to=list(ch.to), when=when)
            out[ch.name] = Message(body=email, size=len(email.as_bytes()), text=mail.text,
                                   extra={"html_bytes": len(mail.html.encode("utf-8"))})
        else:
            channel = open_channel(ch)  # rendering is pure; its HTTP client is never used here
            try:
                out[ch.name] = chat_message(content, channel)
            finally:
                channel.close()
    return out

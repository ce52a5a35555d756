"""The digest for chat channels: a short Markdown summary (headline figures with their change,
the SLA clocks breached in the period) cut to fit each service's size limit, with a "see the
e-mail" note when it had to be cut.

The body is made by the channel module's `render_markdown` when the channels package provides
one (`trackpulse.channels.open_channel`); until then, and for tests of the cut, `chat_body`
builds each service's documented Markdown/card envelope itself. Either way the Markdown is
fitted first, so the message fits whoever wraps it.
"""

from __future__ import annotations

import json
from typing import Any

from trackpulse.channels.base import Message
from trackpulse.digests.content import DigestContent
from trackpulse.i18n import t

# Bytes of Markdown content each service accepts in one message, with room left for the JSON
# envelope (ALERTS_NOTES.md): DingTalk 20000 bytes, Feishu body 20 KB, WeCom markdown 4096,
# Slack 3000 characters per section block, Teams 28 KB.
CONTENT_LIMITS: dict[str, int] = {"dingtalk": 19_000, "feishu": 18_000, "wecom": 4_000, "slack": 2_900,
                                  "teams": 26_000, "webhook": 60_000}
CHAT_KINDS = tuple(k for k in CONTENT_LIMITS if k != "webhook")
MAX_BREACHES_LISTED = 20


def _size(text: str) -> int:
    return len(text.encode("utf-8"))


def digest_markdown(content: DigestContent, *, limit: int) -> str:
    """The Markdown summary, at most `limit` UTF-8 bytes; cut at a line boundary with the
    catalogue's "see e-mail" note when it would not fit."""
    lang = content.lang
    head = [f"### {content.title}", content.period, ""]
    lines = [f"- **{h.label}**: {h.value} ({t('digests.vs_previous', lang)} {h.change})" for h in content.headlines]
    breached = next((tb for tb in content.tables if tb.key == "sla_breached"), None)
    if breached is not None:
        lines += ["", f"**{t('digests.chat_breached', lang, n=content.breached_in_period)}**"]
        for row in breached.rows[:MAX_BREACHES_LISTED]:
            lines.append(f"- {row[0]} · {row[1]} · {row[2]} · {row[3]} / {row[4]}")
        if content.breached_in_period > MAX_BREACHES_LISTED:
            lines.append(t("digests.more_rows", lang, n=content.breached_in_period - MAX_BREACHES_LISTED))
    full = "\n".join(head + lines)
    if _size(full) <= limit:
        return full
    note = "\n\n" + t("digests.see_email", lang)
    kept = list(head)
    for line in lines:
        if _size("\n".join([*kept, line]) + note) > limit:
            break
        kept.append(line)
    text = "\n".join(kept) + note
    while _size(text) > limit:  # a single enormous line: cut by characters
        kept[-1] = kept[-1][: max(0, len(kept[-1]) - 64)]
        text = "\n".join(kept) + note
    return text


def chat_body(kind: str, title: str, markdown: str) -> dict[str, Any]:
    """Each service's Markdown/card message (ALERTS_NOTES.md wire formats)."""
    if kind == "dingtalk":
        return {"msgtype": "markdown", "markdown": {"title": title, "text": markdown}}
    if kind == "wecom":
        return {"msgtype": "markdown", "markdown": {"content": markdown}}
    if kind == "feishu":
        return {"msg_type": "interactive", "card": {
            "header": {"title": {"tag": "plain_text", "content": title}},
            "elements": [{"tag": "markdown", "content": markdown}]}}
    if kind == "slack":
        return {"text": title, "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": markdown}}]}
    if kind == "teams":
        return {"type": "message", "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "content": {"type": "AdaptiveCard", "version": "1.4", "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                        "body": [{"type": "TextBlock", "text": markdown, "wrap": True}]}}]}
    return {"schema": "trackpulse.digest-summary/1", "title": title, "markdown": markdown}


def chat_message(kind: str, content: DigestContent, channel: Any = None) -> Message:
    """One chat channel's digest message. `channel`: an opened channel of the channels package
    (its `render_markdown` makes the body) or None for our own envelope."""
    limit = CONTENT_LIMITS.get(kind, CONTENT_LIMITS["webhook"])
    if channel is not None:
        limit = min(limit, int(getattr(channel, "max_message_bytes", limit)) - 1024)
    markdown = digest_markdown(content, limit=limit)
    if channel is not None:
        message: Message = channel.render_markdown(content.title, markdown, content.lang)  # type: ignore[assignment]
        return message
    body = chat_body(kind, content.title, markdown)
    return Message(body=body, size=_size(json.dumps(body, ensure_ascii=False)), text=markdown)

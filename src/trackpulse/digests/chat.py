"""The digest for chat channels: a short Markdown summary (headline figures with their change,
the SLA clocks breached in the period) cut to fit each service's size limit, with a "see the
e-mail" note when it had to be cut.

The Markdown is fitted here, under the service's limit less room for its JSON envelope; the
channel module's `render_markdown` (trackpulse.channels) then wraps it in the service's own
message or card, with the digest's title as the heading.
"""

from __future__ import annotations

from trackpulse.channels.base import Channel, Message
from trackpulse.digests.content import DigestContent
from trackpulse.i18n import Lang, t

# UTF-8 bytes of Markdown per message (ALERTS_NOTES.md): DingTalk 20000 bytes (errcode 460101),
# Feishu request body 20 KB, WeCom markdown 4096 bytes (40058), Teams 28 KB; Slack takes more,
# but a summary longer than this is not read in a chat.
CONTENT_LIMITS: dict[str, int] = {"dingtalk": 19_000, "feishu": 18_000, "wecom": 3_800, "slack": 12_000,
                                  "teams": 26_000, "webhook": 60_000}
ENVELOPE_BYTES = 1024  # the service's JSON around the Markdown, mentions, title
MAX_BREACHES_LISTED = 20


def _size(text: str) -> int:
    return len(text.encode("utf-8"))


def content_limit(channel: Channel) -> int:
    """The Markdown budget of one message on `channel`."""
    return min(CONTENT_LIMITS.get(channel.kind, CONTENT_LIMITS["webhook"]),
               int(channel.max_message_bytes) - ENVELOPE_BYTES)


def digest_markdown(content: DigestContent, *, limit: int) -> str:
    """The Markdown summary, at most `limit` UTF-8 bytes; cut at a line boundary with the
    catalogue's "see e-mail" note when it would not fit."""
    lang = content.lang
    head = [content.period, ""]
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
    while _size(text) > limit and kept:  # a single enormous line: cut it by characters
        kept[-1] = kept[-1][: max(0, len(kept[-1]) - 64)]
        if not kept[-1]:
            kept.pop()
        text = "\n".join(kept) + note
    return text


def chat_message(content: DigestContent, channel: Channel) -> Message:
    """One chat channel's digest message, in the service's format (`channel.render_markdown`)."""
    markdown = digest_markdown(content, limit=content_limit(channel))
    lang: Lang = "zh" if content.lang == "zh" else "en"
    return channel.render_markdown(content.title, markdown, lang)

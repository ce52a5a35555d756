"""E-mail over SMTP (ALERTS_NOTES.md §6): multipart/alternative with a plain-text and an HTML part.

`smtp_security` is `starttls` (submission, port 587: EHLO, STARTTLS with a verifying context,
EHLO, AUTH), `ssl` (implicit TLS, port 465) or `none` (a relay on a trusted network, or the
local test server). `send` accepts a rendered alert or free-form message, or any ready-made
`email.message.EmailMessage` in `Message.body` (the digests build multipart/related mails with
inline `cid:` charts); missing From, To, Date and Message-ID headers are filled in.

One SMTP session per `send`. Answers: 4xx replies, a dropped connection and timeouts are
retried later; 5xx replies (authentication, refused sender or every recipient refused) and
TLS certificate failures are failures. The password never appears in an answer.
"""

from __future__ import annotations

import html
import re
import smtplib
import ssl
from collections.abc import Sequence
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import ClassVar

from trackpulse.channels.base import AlertView, Message
from trackpulse.channels.redact import Redactor
from trackpulse.channels.wording import title as alert_title
from trackpulse.channels.wording import words
from trackpulse.config import EmailChannelConfig
from trackpulse.i18n import Lang, t
from trackpulse.outcomes import Failed, Outcome, RetryAfter, Sent

RETRY_SECONDS = 60.0
_BOLD = re.compile(r"\*\*(.+?)\*\*")
_LINK = re.compile(r"\[([^\]]+)\]\((https?://[^)\s]+)\)")
_HEADING = re.compile(r"^(#{1,6})\s*(.+)$")


def markdown_to_html(markdown: str) -> str:
    """The small Markdown of digest summaries and test messages (headings, bold, links, "- "
    lists, paragraphs) as escaped HTML."""
    out: list[str] = []
    in_list = False

    def inline(text: str) -> str:
        text = html.escape(text)
        text = _LINK.sub(lambda m: f'<a href="{m.group(2)}">{m.group(1)}</a>', text)
        return _BOLD.sub(lambda m: f"<strong>{m.group(1)}</strong>", text)

    for line in markdown.splitlines():
        stripped = line.strip()
        if stripped.startswith(("- ", "* ")):
            if not in_list:
                out.append("<ul>")
                in_list = True
            out.append(f"<li>{inline(stripped[2:])}</li>")
            continue
        if in_list:
            out.append("</ul>")
            in_list = False
        if not stripped:
            continue
        heading = _HEADING.match(stripped)
        if heading:
            level = min(len(heading.group(1)) + 1, 6)
            out.append(f"<h{level}>{inline(heading.group(2))}</h{level}>")
        else:
            out.append(f"<p>{inline(stripped)}</p>")
    if in_list:
        out.append("</ul>")
    return "\n".join(out)


def _page(title: str, body_html: str, lang: Lang) -> str:
    return (f'<!DOCTYPE html>\n<html lang="{lang}"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f'</head><body style="font-family: sans-serif">\n<h1 style="font-size: 1.3em">{html.escape(title)}</h1>\n'
            f'{body_html}\n<p style="color: #777; font-size: 0.85em">{html.escape(t("channels.mail_footer", lang))}</p>'
            "\n</body></html>\n")


class EmailChannel:
    kind: ClassVar[str] = "email"
    max_message_bytes: ClassVar[int] = 5_000_000
    min_interval: ClassVar[float] = 0.0
    per_minute: ClassVar[int | None] = None

    def __init__(self, cfg: EmailChannelConfig, *, ssl_context: ssl.SSLContext | None = None) -> None:
        self.cfg = cfg
        self.name = cfg.name
        self.language: Lang = cfg.language
        self._password = cfg.password.get_secret_value() if cfg.password is not None else None
        self.redact = Redactor([self._password])
        # A test hands in a context trusting its own certificate; production verifies normally.
        self._ssl_context = ssl_context

    def _mail(self, subject: str, text: str, body_html: str, lang: Lang) -> EmailMessage:
        msg = EmailMessage()
        msg["Subject"] = subject
        msg.set_content(text + "\n\n-- \n" + t("channels.mail_footer", lang) + "\n")
        msg.add_alternative(_page(subject, body_html, lang), subtype="html")
        return msg

    def _message(self, mail: EmailMessage, *, text: str, alert_ids: Sequence[str] = ()) -> Message:
        return Message(body=mail, size=len(mail.as_bytes()), alert_ids=tuple(alert_ids), text=text)

    def render(self, alerts: Sequence[AlertView], lang: Lang) -> Message:
        subject = alert_title(alerts, lang)
        text_lines: list[str] = []
        items: list[str] = []
        for a in alerts:
            w = words(a, lang)
            text_lines.append(f"- {w.label}: {w.sentence}\n  {w.details}" + (f"\n  {w.url}" if w.url else ""))
            label = html.escape(w.label)
            if w.url:
                label = f'<a href="{html.escape(w.url)}">{label}</a>'
            items.append(f"<li><strong>{label}</strong> {html.escape(w.sentence)}<br>"
                         f'<span style="color: #555">{html.escape(w.details)}</span></li>')
        text = "\n".join(text_lines)
        mail = self._mail(subject, text, "<ul>\n" + "\n".join(items) + "\n</ul>", lang)
        return self._message(mail, text=f"{subject}\n{text}", alert_ids=[a.id for a in alerts])

    def render_markdown(self, title: str, markdown: str, lang: Lang) -> Message:
        return self._message(self._mail(title, markdown, markdown_to_html(markdown), lang), text=f"{title}\n{markdown}")

    def _complete(self, mail: EmailMessage) -> EmailMessage:
        if mail["From"] is None:
            mail["From"] = self.cfg.sender
        if mail["To"] is None:
            mail["To"] = ", ".join(self.cfg.to)
        if mail["Date"] is None:
            mail["Date"] = formatdate(localtime=False, usegmt=True)
        if mail["Message-ID"] is None:
            domain = self.cfg.sender.rpartition("@")[2] or "trackpulse.local"
            mail["Message-ID"] = make_msgid(domain=domain)
        return mail

    def _connect(self) -> smtplib.SMTP:
        cfg = self.cfg
        context = self._ssl_context or ssl.create_default_context()
        if cfg.smtp_security == "ssl":
            return smtplib.SMTP_SSL(cfg.smtp_host, cfg.smtp_port, timeout=cfg.timeout_seconds, context=context)
        smtp = smtplib.SMTP(cfg.smtp_host, cfg.smtp_port, timeout=cfg.timeout_seconds)
        if cfg.smtp_security == "starttls":
            smtp.ehlo()
            smtp.starttls(context=context)
            smtp.ehlo()
        return smtp

    def send(self, message: Message, *, delivery_id: str) -> Outcome:
        if not isinstance(message.body, EmailMessage):
            raise TypeError(f"email channel {self.name}: Message.body must be an EmailMessage")
        mail = self._complete(message.body)
        where = f"{self.cfg.smtp_host}:{self.cfg.smtp_port}"
        try:
            with self._connect() as smtp:
                if self.cfg.username and self._password is not None:
                    smtp.login(self.cfg.username, self._password)
                smtp.send_message(mail, from_addr=self.cfg.sender, to_addrs=list(self.cfg.to))
        except smtplib.SMTPRecipientsRefused as exc:
            refused = "; ".join(f"{rcpt}: {code} {self._text(msg)}" for rcpt, (code, msg) in exc.recipients.items())
            return Failed(self.redact(f"every recipient refused: {refused}"))
        except smtplib.SMTPResponseException as exc:
            answer = self.redact(f"SMTP {exc.smtp_code} {self._text(exc.smtp_error)} ({where})")
            if 400 <= exc.smtp_code < 500:
                return RetryAfter(RETRY_SECONDS, answer)
            return Failed(answer, exc.smtp_code)
        except smtplib.SMTPNotSupportedError as exc:
            return Failed(self.redact(f"{exc} ({where})"))
        except ssl.SSLCertVerificationError as exc:
            return Failed(self.redact(f"TLS certificate not trusted: {exc.verify_message} ({where})"))
        except (TimeoutError, smtplib.SMTPException, OSError) as exc:
            return RetryAfter(RETRY_SECONDS, self.redact(f"{type(exc).__name__}: {exc} ({where})"))
        return Sent(remote_id=str(mail["Message-ID"]))

    @staticmethod
    def _text(value: bytes | str) -> str:
        return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)

    def close(self) -> None:
        return None

"""The digest e-mail: autoescaped Jinja2 templates (table layout, 600 px), CSS inlined with
css_inline, charts as PNG parts referenced by `cid:` (Gmail and Outlook strip data URIs).

MIME tree: multipart/alternative{text/plain, multipart/related{text/html, image/png …}},
plain text first (RFC 2046: the last alternative is the preferred one).
"""

from __future__ import annotations

from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Any

import css_inline
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from trackpulse.digests.content import DigestContent, render_charts
from trackpulse.i18n import t

CID_DOMAIN = "trackpulse.digest"
GMAIL_CLIP_BYTES = 102 * 1024

_env = Environment(loader=PackageLoader("trackpulse.digests", "templates"),
                   autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
                   undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
_inliner = css_inline.CSSInliner(load_remote_stylesheets=False)


@dataclass
class RenderedMail:
    html: str  # inlined, with cid: image sources
    text: str
    images: list[tuple[str, str, bytes]]  # (cid without <>, file name, PNG bytes)
    subject: str


def _labels(lang: str) -> dict[str, str]:
    return {k: t(f"digests.{k}", lang) for k in ("headlines", "vs_previous", "none", "footer", "charts_in_html")}


def render_html(content: DigestContent, image_src: dict[str, str], *, inline: bool = True) -> str:
    images = [{"title": spec.title, "src": image_src[spec.key]} for spec in content.charts if spec.key in image_src]
    html = _env.get_template("digest.html").render(c=content, labels=_labels(content.lang), images=images)
    return str(_inliner.inline(html)) if inline else html


def render_text(content: DigestContent) -> str:
    return _env.get_template("digest.txt").render(c=content, labels=_labels(content.lang))


def render_mail(content: DigestContent, pngs: list[tuple[Any, bytes]] | None = None) -> RenderedMail:
    pngs = render_charts(content) if pngs is None else pngs
    images = []
    src = {}
    for spec, png in pngs:
        cid = make_msgid(idstring=spec.key, domain=CID_DOMAIN)[1:-1]
        images.append((cid, f"{spec.key}.png", png))
        src[spec.key] = f"cid:{cid}"
    return RenderedMail(render_html(content, src), render_text(content), images, content.subject)


def build_email(mail: RenderedMail, *, sender: str, to: list[str], when: Any = None) -> EmailMessage:
    msg = EmailMessage()
    msg["Subject"] = mail.subject  # the policy encodes non-ASCII (RFC 2047)
    msg["From"] = sender
    msg["To"] = ", ".join(to)
    msg["Message-ID"] = make_msgid(domain=CID_DOMAIN)
    if when is not None:
        msg["Date"] = format_datetime(when)
    msg.set_content(mail.text, subtype="plain", charset="utf-8")
    msg.add_alternative(mail.html, subtype="html", charset="utf-8")
    related = msg.get_payload()[1]  # type: ignore[index]
    assert isinstance(related, EmailMessage)  # add_alternative made it multipart/related-ready
    for cid, filename, png in mail.images:
        related.add_related(png, "image", "png", cid=f"<{cid}>", filename=filename, disposition="inline")
    if mail.images:
        related.set_param("type", "text/html")  # RFC 2387's root type, which the stdlib leaves out
    return msg


def write_preview(mail: RenderedMail, path: Any) -> list[Any]:
    """The HTML with `cid:` sources pointed at PNG files written beside it; returns every file written."""
    from pathlib import Path

    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    html = mail.html
    written = []
    for cid, filename, png in mail.images:
        image = out.parent / f"{out.stem}-{filename}"
        image.write_bytes(png)
        written.append(image)
        html = html.replace(f"cid:{cid}", image.name)
    out.write_text(html, encoding="utf-8")
    return [out, *written]

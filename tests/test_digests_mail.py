"""The digest e-mail as a mail client gets it: sent through the outbox and the e-mail channel
to a real SMTP server on loopback (aiosmtpd), then parsed from the bytes it received."""

from __future__ import annotations

import re
from email.message import EmailMessage
from pathlib import Path

import pytest
from digest_worlds import AS_OF, app_config, mail_channel, many_projects_world

from trackpulse.digests import build_from_input, send_digest
from trackpulse.digests.content import build_content
from trackpulse.i18n import t
from trackpulse.simulator.smtp import SmtpReceiver
from trackpulse.store.db import open_store

GMAIL_CLIP_BYTES = 102 * 1024


def tree(part: EmailMessage) -> object:
    if part.is_multipart():
        return (part.get_content_type(), [tree(p) for p in part.iter_parts()])  # type: ignore[arg-type]
    return part.get_content_type()


@pytest.fixture(scope="module")
def received(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[EmailMessage, bytes, object]]:
    """The 10-project digest in English and in Chinese, as the SMTP server received them."""
    world = many_projects_world(10)
    out = {}
    with SmtpReceiver() as smtp:
        for lang in ("en", "zh"):
            d = tmp_path_factory.mktemp(lang)
            cfg = app_config(f"sqlite:///{d}/s.db", channels=[mail_channel(smtp.port)], language=lang)
            store = open_store(cfg.store.url)
            try:
                data = build_from_input(world, cfg.digest("weekly"), as_of=AS_OF)
                result = send_digest(cfg, store, "weekly", scheduled_for=AS_OF, data=data)
            finally:
                store.dispose()
            assert result.sent and not result.failed and not result.pending, result
            mail = smtp.received[-1]
            out[lang] = (mail.message, mail.raw, build_content(data))
    return out


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_mail_is_text_plus_related_html_with_png_charts(received: dict, lang: str) -> None:
    msg, _, content = received[lang]
    kind, parts = tree(msg)  # type: ignore[misc]
    assert kind == "multipart/alternative"
    assert parts[0] == "text/plain"
    related, inner = parts[1]
    assert related == "multipart/related"
    assert inner[0] == "text/html"
    assert len(inner) == 1 + len(content.charts) and len(content.charts) >= 5
    assert set(inner[1:]) == {"image/png"}


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_every_cid_in_the_html_is_an_attached_image_and_there_are_no_data_uris(received: dict, lang: str) -> None:
    msg, _, _ = received[lang]
    related = msg.get_payload()[1]
    html_part, *images = related.get_payload()
    html = html_part.get_content()
    cids = re.findall(r'src="cid:([^"]+)"', html)
    attached = {str(p["Content-ID"]).strip().strip("<>"): p for p in images}  # may be folded
    assert cids and set(cids) == set(attached)
    for cid in cids:
        png = attached[cid].get_content()
        assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 1000
    assert "data:" not in html.replace("data-", "")
    sources = re.findall(r"""\bsrc=["']?([^"' >]+)""", html)
    assert sources and all(s.startswith("cid:") for s in sources)  # nothing loaded from anywhere else


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_html_of_a_ten_project_digest_is_under_gmails_clipping_size(received: dict, lang: str) -> None:
    msg, _, content = received[lang]
    html = msg.get_payload()[1].get_payload()[0].get_content()
    assert len({row[0] for tb in content.tables if tb.key == "projects" for row in tb.rows}) == 10
    assert len(html.encode("utf-8")) < GMAIL_CLIP_BYTES


def test_chinese_subject_and_body_decode_to_the_catalogue_text(received: dict) -> None:
    msg, raw, content = received["zh"]
    header = raw.split(b"\r\n\r\n", 1)[0].decode("ascii")  # headers travel as ASCII (RFC 2047)
    assert "Subject: =?utf-8?" in header
    assert msg["Subject"] == content.subject and "交付周报" in msg["Subject"]
    text = msg.get_payload()[0].get_content()
    html = msg.get_payload()[1].get_payload()[0].get_content()
    for word in (t("digests.title", "zh", name="weekly"), t("digests.figure.issues_done", "zh"),
                 t("digests.table.sla_breached", "zh")):
        assert word in text and word in html
    assert t("digests.col.project", "zh") in html and "—" in text


def test_preview_writes_the_html_with_its_charts_beside_it(tmp_path: Path, received: dict) -> None:
    from trackpulse.digests.mail import render_mail, write_preview

    _, _, content = received["en"]
    written = write_preview(render_mail(content), tmp_path / "out.html")
    html = written[0].read_text(encoding="utf-8")
    assert "cid:" not in html
    for image in written[1:]:
        assert image.read_bytes().startswith(b"\x89PNG") and f'src="{image.name}"' in html

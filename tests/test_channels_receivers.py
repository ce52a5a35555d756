"""Every channel against the product's local stand-in of its service, over real HTTP and SMTP.

The receivers (`trackpulse.simulator.chat_receivers`, `trackpulse.simulator.smtp`) check each
request the way the real service does and answer with its real bodies, so these tests show the
signatures are right byte for byte and the answers map to the right outcome.
"""

from __future__ import annotations

import email.header
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest

from trackpulse.channels import open_channel
from trackpulse.channels.base import AlertView
from trackpulse.config import ChannelConfig, parse_config
from trackpulse.outcomes import Failed, RetryAfter, Sent
from trackpulse.simulator.chat_receivers import KINDS, ChatReceivers
from trackpulse.simulator.runner import serve_in_thread
from trackpulse.simulator.smtp import SmtpReceiver

ALERT = AlertView(id="a1b2c3", rule="sla-breach", when="sla_breached", source="acme-jira", project="ABC",
                  item="ABC-12", policy="P1", clock="resolution", value=10.25, target=8.0,
                  at=datetime(2026, 11, 19, 22, 10, tzinfo=UTC), url="https://acme.example/browse/ABC-12",
                  item_label="ABC-12")


@pytest.fixture
def receivers() -> Iterator[tuple[ChatReceivers, dict[str, str]]]:
    rec = ChatReceivers()
    with serve_in_thread(rec.app()) as base:
        yield rec, rec.urls(base)


def channel(kind: str, urls: dict[str, str], rec: ChatReceivers, *, secret: str | None = None) -> ChannelConfig:
    entry: dict[str, str] = {"name": f"team-{kind}", "kind": kind, "url": urls[kind]}
    default = {"dingtalk": rec.dingtalk_secret, "feishu": rec.feishu_secret, "webhook": rec.webhook_secret}
    if kind in default:
        entry["secret"] = secret or default[kind]
    return parse_config({"channels": [entry]}).channels[0]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("lang", ["en", "zh"])
def test_every_channel_is_accepted_by_its_services_real_check(receivers, kind: str, lang: str) -> None:
    rec, urls = receivers
    with httpx.Client(timeout=5) as client:
        ch = open_channel(channel(kind, urls, rec), client)
        outcome = ch.send(ch.render([ALERT], lang), delivery_id="delivery-1")  # type: ignore[arg-type]
    assert isinstance(outcome, Sent), outcome
    assert rec.count(kind) == 1 and not rec.refused[kind]
    assert "ABC-12" in str(rec.received[kind][0])


@pytest.mark.parametrize("kind, errcode", [("dingtalk", "310000"), ("feishu", "19021")])
def test_a_wrong_signing_secret_is_failed_with_the_services_errcode(receivers, kind: str, errcode: str) -> None:
    rec, urls = receivers
    with httpx.Client(timeout=5) as client:
        ch = open_channel(channel(kind, urls, rec, secret="SECwrong-secret"), client)
        outcome = ch.send(ch.render([ALERT], "en"), delivery_id="d1")
    assert isinstance(outcome, Failed) and errcode in outcome.answer
    assert rec.count(kind) == 0 and rec.refused[kind]
    assert rec.dingtalk_secret not in outcome.answer and "SECwrong-secret" not in outcome.answer


@pytest.mark.parametrize("kind", ["slack", "teams", "webhook"])
def test_a_429_with_retry_after_is_a_retry_after_that_many_seconds(receivers, kind: str) -> None:
    rec, urls = receivers
    rec.mode(kind, "throttle", seconds=17)
    with httpx.Client(timeout=5) as client:
        ch = open_channel(channel(kind, urls, rec), client)
        outcome = ch.send(ch.render([ALERT], "en"), delivery_id="d1")
    assert isinstance(outcome, RetryAfter) and outcome.seconds == 17


@pytest.mark.parametrize("kind", ["dingtalk", "feishu", "wecom"])
def test_the_per_minute_cap_answer_is_a_retry_not_a_failure(receivers, kind: str) -> None:
    rec, urls = receivers
    rec.mode(kind, "throttle")
    with httpx.Client(timeout=5) as client:
        ch = open_channel(channel(kind, urls, rec), client)
        assert isinstance(ch.send(ch.render([ALERT], "en"), delivery_id="d1"), RetryAfter)


def test_teams_workflows_answer_202_counts_as_sent(receivers) -> None:
    rec, urls = receivers
    with httpx.Client(timeout=5) as client:
        ch = open_channel(channel("teams", urls, rec), client)
        raw = client.post(urls["teams"], json=ch.render([ALERT], "en").body)
        assert raw.status_code == 202 and raw.content == b""
        assert ch.send(ch.render([ALERT], "en"), delivery_id="d1") == Sent()


@pytest.mark.parametrize("kind", ["dingtalk", "feishu", "wecom", "slack", "teams", "webhook"])
def test_a_refusal_is_failed_and_names_neither_the_token_nor_the_secret(receivers, kind: str) -> None:
    rec, urls = receivers
    rec.mode(kind, "refuse")
    with httpx.Client(timeout=5) as client:
        ch = open_channel(channel(kind, urls, rec), client)
        outcome = ch.send(ch.render([ALERT], "en"), delivery_id="d1")
    assert isinstance(outcome, Failed)
    for secret in (rec.token, rec.dingtalk_secret, rec.feishu_secret, rec.webhook_secret):
        assert secret not in outcome.answer


def test_mail_to_a_real_smtp_server_has_text_and_html_and_a_chinese_subject() -> None:
    with SmtpReceiver() as smtp:
        cfg = parse_config({"channels": [{"name": "pmo", "kind": "email", "smtp_host": smtp.host,
                                          "smtp_port": smtp.port, "smtp_security": "none", "language": "zh",
                                          "sender": "trackpulse@example.com", "to": ["pmo@example.com"]}]}).channels[0]
        ch = open_channel(cfg)
        outcome = ch.send(ch.render([ALERT], "zh"), delivery_id="d1")
        ch.close()
        assert isinstance(outcome, Sent), outcome
        [mail] = smtp.received
    message = mail.message
    assert mail.rcpt_tos == ("pmo@example.com",)
    raw_subject = mail.raw.split(b"\r\n\r\n", 1)[0].decode("ascii")  # headers are 7-bit on the wire
    assert "=?utf-8?" in raw_subject.lower()
    subject = str(email.header.make_header(email.header.decode_header(message["Subject"])))
    assert any("\u4e00" <= ch <= "\u9fff" for ch in subject)
    parts = {p.get_content_type(): p.get_content() for p in message.walk() if not p.is_multipart()}
    assert set(parts) == {"text/plain", "text/html"}
    assert "ABC-12" in parts["text/plain"] and "ABC-12" in parts["text/html"]
    assert any("\u4e00" <= ch <= "\u9fff" for ch in parts["text/plain"])

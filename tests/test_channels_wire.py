"""Each chat channel's request, checked the way the real service checks it (ACTIONS.md, ALERTS_NOTES.md).

The receivers here are httpx.MockTransport handlers written from the services' documentation,
independently of the channel code: DingTalk recomputes `sign` from the query's timestamp,
Feishu from the body's, a Standard Webhooks receiver from the three headers. Answers are the
services' real bodies, so the outcome mapping (sent / retry after / failed) is exercised too.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime

import httpx
import pytest

from trackpulse.channels import open_channel
from trackpulse.channels.base import AlertView
from trackpulse.config import parse_config
from trackpulse.outcomes import Failed, RetryAfter, Sent

SECRET = "SECabcdef0123456789"
WHSEC = "whsec_" + base64.b64encode(b"standard-webhooks-key-32-bytes!!").decode()
TOKEN = "robot-token-0123456789abcdef"

ALERT = AlertView(id="a1b2c3", rule="sla-breach", when="sla_breached", source="acme-jira", project="ABC",
                  item="ABC-12", policy="P1", clock="resolution", value=10.25, target=8.0,
                  at=datetime(2026, 11, 19, 22, 10, tzinfo=UTC), url="https://acme.example/browse/ABC-12",
                  item_label="ABC-12")


def channel_cfg(kind: str, secret: str | None = None, url: str = f"https://svc.example/hook?access_token={TOKEN}"):
    entry = {"name": f"c-{kind}", "kind": kind, "url": url}
    if secret:
        entry["secret"] = secret
    return parse_config({"channels": [entry]}).channels[0]


def dingtalk_receiver(secret: str, seen: list[dict]) -> httpx.MockTransport:
    def handle(request: httpx.Request) -> httpx.Response:
        ts = request.url.params.get("timestamp", "")
        sign = request.url.params.get("sign", "")
        expected = base64.b64encode(hmac.new(secret.encode(), f"{ts}\n{secret}".encode(), hashlib.sha256)
                                    .digest()).decode()
        if sign != expected:
            return httpx.Response(200, json={"errcode": 310000, "errmsg": "sign not match"})
        seen.append(json.loads(request.content))
        return httpx.Response(200, json={"errcode": 0, "errmsg": "ok"})
    return httpx.MockTransport(handle)


def feishu_receiver(secret: str, seen: list[dict]) -> httpx.MockTransport:
    def handle(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        key = f"{body.get('timestamp')}\n{secret}".encode()
        expected = base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()
        if body.get("sign") != expected:
            return httpx.Response(200, json={"code": 19021, "msg": "sign match fail or timestamp is not within "
                                                                   "one hour from current time"})
        seen.append(body)
        return httpx.Response(200, json={"code": 0, "msg": "success", "data": {}})
    return httpx.MockTransport(handle)


def test_dingtalk_request_passes_the_robot_signature_check() -> None:
    seen: list[dict] = []
    ch = open_channel(channel_cfg("dingtalk", SECRET), httpx.Client(transport=dingtalk_receiver(SECRET, seen)))
    outcome = ch.send(ch.render([ALERT], "zh"), delivery_id="d1")
    assert outcome == Sent()
    assert seen[0]["msgtype"] == "markdown" and "ABC-12" in seen[0]["markdown"]["text"]


def test_dingtalk_wrong_secret_is_failed_with_the_errcode_not_retried() -> None:
    ch = open_channel(channel_cfg("dingtalk", "SECwrong"),
                      httpx.Client(transport=dingtalk_receiver(SECRET, [])))
    outcome = ch.send(ch.render([ALERT], "en"), delivery_id="d1")
    assert isinstance(outcome, Failed) and "310000" in outcome.answer


def test_dingtalk_too_fast_is_retried_later() -> None:
    transport = httpx.MockTransport(lambda r: httpx.Response(200, json={"errcode": 130101, "errmsg": "send too fast"}))
    ch = open_channel(channel_cfg("dingtalk"), httpx.Client(transport=transport))
    assert isinstance(ch.send(ch.render([ALERT], "en"), delivery_id="d1"), RetryAfter)


def test_feishu_request_passes_the_bot_signature_check_and_a_wrong_secret_fails() -> None:
    seen: list[dict] = []
    good = open_channel(channel_cfg("feishu", SECRET), httpx.Client(transport=feishu_receiver(SECRET, seen)))
    assert good.send(good.render([ALERT], "zh"), delivery_id="d1") == Sent()
    bad = open_channel(channel_cfg("feishu", "wrong"), httpx.Client(transport=feishu_receiver(SECRET, [])))
    outcome = bad.send(bad.render([ALERT], "zh"), delivery_id="d1")
    assert isinstance(outcome, Failed) and "19021" in outcome.answer


def test_webhook_channel_is_signed_the_standard_webhooks_way_with_a_stable_id() -> None:
    key = base64.b64decode(WHSEC.removeprefix("whsec_"))
    seen: list[tuple[str, dict]] = []

    def handle(request: httpx.Request) -> httpx.Response:
        msg_id, ts = request.headers["webhook-id"], request.headers["webhook-timestamp"]
        expected = base64.b64encode(hmac.new(key, f"{msg_id}.{ts}.".encode() + request.content,
                                             hashlib.sha256).digest()).decode()
        if f"v1,{expected}" not in request.headers["webhook-signature"].split(" "):
            return httpx.Response(401)
        seen.append((msg_id, json.loads(request.content)))
        return httpx.Response(204)

    ch = open_channel(channel_cfg("webhook", WHSEC, url="https://receiver.example/hook"),
                      httpx.Client(transport=httpx.MockTransport(handle)))
    msg = ch.render([ALERT], "en")
    assert ch.send(msg, delivery_id="delivery-7") == Sent()
    assert ch.send(msg, delivery_id="delivery-7") == Sent()
    assert [m for m, _ in seen] == ["delivery-7", "delivery-7"]
    doc = seen[0][1]
    assert doc["schema"] == "trackpulse.alerts/1" and doc["alerts"][0]["id"] == "a1b2c3"


def test_slack_429_waits_the_retry_after_seconds() -> None:
    transport = httpx.MockTransport(lambda r: httpx.Response(429, headers={"Retry-After": "17"},
                                                             text="rate_limited"))
    ch = open_channel(channel_cfg("slack"), httpx.Client(transport=transport))
    outcome = ch.send(ch.render([ALERT], "en"), delivery_id="d1")
    assert isinstance(outcome, RetryAfter) and outcome.seconds == 17


def test_teams_workflows_202_counts_as_sent() -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        assert body["attachments"][0]["contentType"] == "application/vnd.microsoft.card.adaptive"
        return httpx.Response(202)

    ch = open_channel(channel_cfg("teams"), httpx.Client(transport=httpx.MockTransport(handle)))
    assert ch.send(ch.render([ALERT], "en"), delivery_id="d1") == Sent()


@pytest.mark.parametrize("kind", ["dingtalk", "feishu", "wecom", "slack", "teams"])
def test_refusals_never_carry_the_url_token_or_the_secret(kind: str) -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404, text=f"no such hook {request.url}")

    ch = open_channel(channel_cfg(kind, SECRET if kind in ("dingtalk", "feishu") else None),
                      httpx.Client(transport=httpx.MockTransport(handle)))
    outcome = ch.send(ch.render([ALERT], "en"), delivery_id="d1")
    assert isinstance(outcome, Failed)
    assert TOKEN not in outcome.answer and SECRET not in outcome.answer

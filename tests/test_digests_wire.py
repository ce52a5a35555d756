"""A digest to an e-mail and two chat channels over the real wire: the outbox's ready-made
messages reach a DingTalk robot (which checks the signature and the 20000-byte limit the way
DingTalk does) and a WeCom robot (4096-byte markdown) once each; a robot refusing the signature
leaves the chat delivery failed with its errcode while the e-mail still goes out."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from digest_worlds import AS_OF, app_config, mail_channel, many_projects_world
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from trackpulse.digests import build_from_input, send_digest
from trackpulse.outcomes import Failed, Sent
from trackpulse.simulator.runner import serve_in_thread
from trackpulse.simulator.smtp import SmtpReceiver
from trackpulse.store.db import Store
from trackpulse.store.models import Delivery

SECRET = "SECdigest-robot-secret"


def robots(seen: list[tuple[str, dict[str, Any], int]]) -> Starlette:
    async def dingtalk(request: Request) -> JSONResponse:
        raw = await request.body()
        ts, given = request.query_params.get("timestamp", ""), request.query_params.get("sign", "")
        want = base64.b64encode(hmac.new(SECRET.encode(), f"{ts}\n{SECRET}".encode(), hashlib.sha256).digest())
        if not ts or abs(time.time() * 1000 - int(ts)) > 3_600_000 or \
                not hmac.compare_digest(given.encode(), want):
            return JSONResponse({"errcode": 310000, "errmsg": "sign not match"})
        if len(raw) > 20_000:
            return JSONResponse({"errcode": 460101, "errmsg": "message too long, exceed 20000 bytes"})
        seen.append(("dingtalk", json.loads(raw), len(raw)))
        return JSONResponse({"errcode": 0, "errmsg": "ok"})

    async def wecom(request: Request) -> JSONResponse:
        body = json.loads(await request.body())
        content = body["markdown"]["content"].encode("utf-8")
        if len(content) > 4096:
            return JSONResponse({"errcode": 40058, "errmsg": "markdown.content exceed max length 4096"})
        seen.append(("wecom", body, len(content)))
        return JSONResponse({"errcode": 0, "errmsg": "ok"})

    return Starlette(routes=[Route("/robot/send", dingtalk, methods=["POST"]),
                             Route("/cgi-bin/webhook/send", wecom, methods=["POST"])])


@pytest.fixture
def wire() -> Iterator[tuple[str, SmtpReceiver, list[tuple[str, dict[str, Any], int]]]]:
    seen: list[tuple[str, dict[str, Any], int]] = []
    with serve_in_thread(robots(seen)) as url, SmtpReceiver() as smtp:
        yield url, smtp, seen


def _channels(url: str, smtp: SmtpReceiver, secret: str) -> list[dict[str, Any]]:
    return [mail_channel(smtp.port),
            {"name": "ops-dingtalk", "kind": "dingtalk", "url": f"{url}/robot/send?access_token=tok",
             "secret": secret},
            {"name": "ops-wecom", "kind": "wecom", "url": f"{url}/cgi-bin/webhook/send?key=k"}]


def test_digest_reaches_mail_and_both_robots_once_within_their_limits(store: Store, wire: Any) -> None:
    url, smtp, seen = wire
    cfg = app_config(str(store.engine.url.render_as_string(hide_password=False)),
                     channels=_channels(url, smtp, SECRET), language="zh")
    data = build_from_input(many_projects_world(10), cfg.digest("weekly"), as_of=AS_OF)
    result = send_digest(cfg, store, "weekly", scheduled_for=AS_OF, data=data)
    assert all(isinstance(o, Sent) for o in result.outcomes.values()), result.outcomes
    assert not send_digest(cfg, store, "weekly", scheduled_for=AS_OF, data=data).sent
    assert sorted(kind for kind, _, _ in seen) == ["dingtalk", "wecom"] and len(smtp.received) == 1
    ding = next(body for kind, body, _ in seen if kind == "dingtalk")
    assert ding["msgtype"] == "markdown" and "完成事项" in ding["markdown"]["text"]
    assert ding["markdown"]["title"] == "交付摘要 · weekly"


def test_a_robot_refusing_the_signature_fails_for_good_and_the_mail_still_goes(store: Store, wire: Any) -> None:
    url, smtp, _ = wire
    cfg = app_config(str(store.engine.url.render_as_string(hide_password=False)),
                     channels=_channels(url, smtp, "SECwrong"), language="en")
    data = build_from_input(many_projects_world(2), cfg.digest("weekly"), as_of=AS_OF)
    result = send_digest(cfg, store, "weekly", scheduled_for=AS_OF, data=data)
    assert set(result.failed) == {"ops-dingtalk"}
    assert isinstance(result.outcomes["ops-dingtalk"], Failed) and "310000" in result.outcomes["ops-dingtalk"].answer
    assert isinstance(result.outcomes["pmo-mail"], Sent) and isinstance(result.outcomes["ops-wecom"], Sent)
    with store.session() as s:
        rows = {d.target: d for d in s.execute(sa.select(Delivery)).scalars()}
    assert rows["ops-dingtalk"].status == "failed" and "310000" in (rows["ops-dingtalk"].answer or "")
    assert "SECwrong" not in json.dumps({k: [v.answer, v.payload] for k, v in rows.items()}, ensure_ascii=False)

"""Local stand-ins for the chat services' incoming webhooks, on one loopback HTTP server.

Each endpoint checks a request the way the real service does (research/ALERTS_NOTES.md) and
answers with that service's real success and error bodies:

| kind     | path                                          | credential and check                          |
|----------|-----------------------------------------------|-----------------------------------------------|
| dingtalk | `/robot/send?access_token=T&timestamp&sign`   | HMAC-SHA256(secret, f"{ts_ms}\\n{secret}"), base64, in the query; ±1 h |
| feishu   | `/open-apis/bot/v2/hook/T`                    | HMAC-SHA256(key=f"{ts_s}\\n{secret}", msg=b""), base64, in the body; ±1 h |
| wecom    | `/cgi-bin/webhook/send?key=T`                 | the key alone                                 |
| slack    | `/services/T/B/X`                             | the path alone; answers `ok` / status + text  |
| teams    | `/workflows/T/triggers/manual/paths/invoke?sig=S` | the sig alone; answers 202                |
| webhook  | `/hooks/T`                                    | Standard Webhooks: v1 HMAC over `id.ts.body`  |

Service limits are enforced on the receiver's own clock: DingTalk and WeCom 20 messages a
minute (130101, 45009), Feishu 100 a minute (11232), DingTalk 20,000 bytes (460101), WeCom
markdown 4,096 bytes (40058). `mode(kind, ...)` makes an endpoint refuse (its permanent error),
throttle (Slack/Teams 429 + Retry-After, the others their rate errcode), or stall before
answering while still accepting the message (a timeout whose server side succeeded).
Accepted messages are kept in `received[kind]` for tests and the demo.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

Kind = Literal["dingtalk", "feishu", "wecom", "slack", "teams", "webhook"]
KINDS: tuple[Kind, ...] = ("dingtalk", "feishu", "wecom", "slack", "teams", "webhook")
Mode = Literal["ok", "refuse", "throttle", "stall"]

HOUR_MS = 3_600_000
PER_MINUTE = {"dingtalk": 20, "wecom": 20, "feishu": 100}


@dataclass
class Behaviour:
    mode: Mode = "ok"
    seconds: float = 0.0  # throttle: the Retry-After; stall: how long to wait before answering


@dataclass
class ChatReceivers:
    """The six endpoints; `urls(base)` gives each kind's webhook URL with its credential."""

    token: str = "robot-token-0123456789abcdef"
    dingtalk_secret: str = "SEC0123456789abcdef0123456789abcdef"
    feishu_secret: str = "feishu-secret-0123456789"
    webhook_secret: str = "whsec_" + base64.b64encode(b"trackpulse-demo-webhook-key-32b!").decode()
    clock: Callable[[], float] = time.time
    received: dict[str, list[Any]] = field(default_factory=lambda: defaultdict(list))
    refused: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    _behaviour: dict[str, Behaviour] = field(default_factory=dict)
    _sent_at: dict[str, deque[float]] = field(default_factory=lambda: defaultdict(deque))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # ------------------------------------------------------------------ control
    def mode(self, kind: Kind, mode: Mode = "ok", seconds: float = 0.0) -> None:
        self._behaviour[kind] = Behaviour(mode, seconds)

    def urls(self, base: str) -> dict[str, str]:
        base = base.rstrip("/")
        t = self.token
        return {
            "dingtalk": f"{base}/robot/send?access_token={t}",
            "feishu": f"{base}/open-apis/bot/v2/hook/{t}",
            "wecom": f"{base}/cgi-bin/webhook/send?key={t}",
            "slack": f"{base}/services/T000/B000/{t}",
            "teams": f"{base}/workflows/{t}/triggers/manual/paths/invoke?api-version=1&sv=1.0&sig={t}",
            "webhook": f"{base}/hooks/{t}",
        }

    def count(self, kind: str) -> int:
        with self._lock:
            return len(self.received[kind])

    # ------------------------------------------------------------------ helpers
    def _accept(self, kind: str, body: Any) -> None:
        with self._lock:
            self.received[kind].append(body)
            self._sent_at[kind].append(self.clock())

    def _refuse(self, kind: str, why: str) -> None:
        with self._lock:
            self.refused[kind].append(why)

    def _over_limit(self, kind: str) -> bool:
        cap = PER_MINUTE.get(kind)
        if cap is None:
            return False
        with self._lock:
            window = self._sent_at[kind]
            now = self.clock()
            while window and window[0] <= now - 60:
                window.popleft()
            return len(window) >= cap

    async def _stall(self, kind: str) -> Behaviour:
        b = self._behaviour.get(kind, Behaviour())
        if b.mode == "stall":
            await asyncio.sleep(b.seconds)
        return b

    # ------------------------------------------------------------------ services
    async def dingtalk(self, request: Request) -> Response:
        q = request.query_params
        raw = await request.body()
        b = self._behaviour.get("dingtalk", Behaviour())
        if q.get("access_token") != self.token or b.mode == "refuse":
            self._refuse("dingtalk", "token")
            return JSONResponse({"errcode": 300005, "errmsg": "token is not exist"})
        ts = q.get("timestamp", "")
        expected = base64.b64encode(hmac.new(self.dingtalk_secret.encode(), f"{ts}\n{self.dingtalk_secret}".encode(),
                                             hashlib.sha256).digest()).decode()
        if not ts.isdigit() or abs(self.clock() * 1000 - int(ts)) > HOUR_MS:
            self._refuse("dingtalk", "timestamp")
            return JSONResponse({"errcode": 310000, "errmsg": "invalid timestamp"})
        if not hmac.compare_digest(q.get("sign", ""), expected):
            self._refuse("dingtalk", "sign")
            return JSONResponse({"errcode": 310000, "errmsg": "sign not match"})
        if len(raw) > 20000:
            return JSONResponse({"errcode": 460101, "errmsg": "message too long, exceed 20000 bytes"})
        if b.mode == "throttle" or self._over_limit("dingtalk"):
            return JSONResponse({"errcode": 130101, "errmsg": "send too fast, exceed 20 times per minute"})
        self._accept("dingtalk", json.loads(raw))
        await self._stall("dingtalk")
        return JSONResponse({"errcode": 0, "errmsg": "ok"})

    async def feishu(self, request: Request) -> Response:
        raw = await request.body()
        b = self._behaviour.get("feishu", Behaviour())
        if request.path_params["token"] != self.token or b.mode == "refuse":
            self._refuse("feishu", "token")
            return JSONResponse({"code": 19001, "msg": "param invalid: incoming webhook access token invalid",
                                 "data": {}})
        if len(raw) > 20 * 1024:
            return JSONResponse({"code": 9499, "msg": "Bad Request", "data": {}})
        body = json.loads(raw)
        ts = str(body.get("timestamp", ""))
        key = f"{ts}\n{self.feishu_secret}".encode()
        expected = base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()
        if not ts.isdigit() or abs(self.clock() - int(ts)) > 3600 or \
                not hmac.compare_digest(str(body.get("sign", "")), expected):
            self._refuse("feishu", "sign")
            return JSONResponse({"code": 19021, "msg": "sign match fail or timestamp is not within one hour "
                                                       "from current time"})
        if b.mode == "throttle" or self._over_limit("feishu"):
            return JSONResponse({"code": 11232, "msg": "frequency limited psm[lark.oapi.app_platform_runtime]"})
        self._accept("feishu", body)
        await self._stall("feishu")
        return JSONResponse({"StatusCode": 0, "StatusMessage": "success", "code": 0, "data": {}, "msg": "success"})

    async def wecom(self, request: Request) -> Response:
        raw = await request.body()
        b = self._behaviour.get("wecom", Behaviour())
        if request.query_params.get("key") != self.token or b.mode == "refuse":
            self._refuse("wecom", "key")
            return JSONResponse({"errcode": 93000, "errmsg": "invalid webhook url, hint: [1700000000_1_abc], "
                                                             "from ip: 127.0.0.1, more info at "
                                                             "https://open.work.weixin.qq.com/devtool/query?e=93000"})
        body = json.loads(raw)
        content = (body.get("markdown") or {}).get("content", "")
        if len(content.encode("utf-8")) > 4096:
            return JSONResponse({"errcode": 40058, "errmsg": "markdown.content exceed max length 4096"})
        if b.mode == "throttle" or self._over_limit("wecom"):
            return JSONResponse({"errcode": 45009, "errmsg": "api freq out of limit"})
        self._accept("wecom", body)
        await self._stall("wecom")
        return JSONResponse({"errcode": 0, "errmsg": "ok"})

    async def slack(self, request: Request) -> Response:
        raw = await request.body()
        b = self._behaviour.get("slack", Behaviour())
        if request.path_params["token"] != self.token or b.mode == "refuse":
            self._refuse("slack", "no_service")
            return PlainTextResponse("no_service", status_code=404)
        if b.mode == "throttle":
            return PlainTextResponse("rate_limited", status_code=429,
                                     headers={"Retry-After": str(int(b.seconds or 1))})
        try:
            body = json.loads(raw)
        except ValueError:
            return PlainTextResponse("invalid_payload", status_code=400)
        if not body.get("text") and not body.get("blocks"):
            return PlainTextResponse("no_text", status_code=400)
        self._accept("slack", body)
        await self._stall("slack")
        return PlainTextResponse("ok")

    async def teams(self, request: Request) -> Response:
        raw = await request.body()
        b = self._behaviour.get("teams", Behaviour())
        if request.query_params.get("sig") != self.token or request.path_params["token"] != self.token \
                or b.mode == "refuse":
            self._refuse("teams", "sig")
            return JSONResponse({"error": {"code": "DirectApiAuthorizationRequired",
                                           "message": "The request must be authenticated."}}, status_code=401)
        if b.mode == "throttle":
            return JSONResponse({"error": {"code": "TooManyRequests"}}, status_code=429,
                                headers={"Retry-After": str(int(b.seconds or 1))})
        if len(raw) > 28 * 1024:
            return JSONResponse({"error": {"code": "RequestEntityTooLarge"}}, status_code=413)
        body = json.loads(raw)
        attachments = body.get("attachments") or []
        if not attachments or attachments[0].get("contentType") != "application/vnd.microsoft.card.adaptive":
            return JSONResponse({"error": {"code": "InvalidRequestContent"}}, status_code=400)
        self._accept("teams", body)
        await self._stall("teams")
        return Response(status_code=202)

    async def webhook(self, request: Request) -> Response:
        raw = await request.body()
        b = self._behaviour.get("webhook", Behaviour())
        if request.path_params["token"] != self.token or b.mode == "refuse":
            self._refuse("webhook", "path")
            return PlainTextResponse("not found", status_code=404)
        msg_id = request.headers.get("webhook-id", "")
        ts = request.headers.get("webhook-timestamp", "")
        key = base64.b64decode(self.webhook_secret.removeprefix("whsec_"))
        expected = base64.b64encode(hmac.new(key, f"{msg_id}.{ts}.".encode() + raw, hashlib.sha256).digest()).decode()
        given = request.headers.get("webhook-signature", "").split(" ")
        if not ts.isdigit() or abs(self.clock() - int(ts)) > 300 or f"v1,{expected}" not in given:
            self._refuse("webhook", "signature")
            return PlainTextResponse("invalid signature", status_code=401)
        if b.mode == "throttle":
            return PlainTextResponse("slow down", status_code=429, headers={"Retry-After": str(int(b.seconds or 1))})
        self._accept("webhook", {"id": msg_id, **json.loads(raw)})
        await self._stall("webhook")
        return Response(status_code=204)

    def app(self) -> Starlette:
        return Starlette(routes=[
            Route("/robot/send", self.dingtalk, methods=["POST"]),
            Route("/open-apis/bot/v2/hook/{token}", self.feishu, methods=["POST"]),
            Route("/cgi-bin/webhook/send", self.wecom, methods=["POST"]),
            Route("/services/{team}/{bot}/{token}", self.slack, methods=["POST"]),
            Route("/workflows/{token}/triggers/manual/paths/invoke", self.teams, methods=["POST"]),
            Route("/hooks/{token}", self.webhook, methods=["POST"]),
        ])

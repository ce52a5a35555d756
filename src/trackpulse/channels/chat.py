"""What every incoming-webhook channel shares: one JSON POST through the client it was given,
and the mapping of transport failures and HTTP statuses to Outcomes.

A service module (dingtalk, feishu, wecom, slack, teams, webhook) subclasses `WebhookChannel`:
it renders its own payload, may sign the request (`_sign`), and judges a 2xx answer
(`_judge`), because DingTalk, Feishu and WeCom refuse in the body of an HTTP 200. Statuses
mean the same everywhere: 429 and 5xx and a dropped connection are "retry later", any other
4xx is "failed for good" with the service's words. One attempt per `send`; never a sleep.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, ClassVar

import httpx

from trackpulse.channels.base import AlertView, Message
from trackpulse.channels.redact import Redactor, url_secrets
from trackpulse.http import parse_retry_after
from trackpulse.i18n import Lang
from trackpulse.outcomes import Failed, Outcome, RetryAfter, Sent

# Without a Retry-After, wait this long after a 429 / 5xx / network failure before the next try;
# the dispatcher's backoff grows it from there.
DEFAULT_RETRY_SECONDS = 30.0
_ANSWER_CHARS = 300


def dumps(body: Any) -> bytes:
    """The bytes we send and count against the service's limit: compact UTF-8 JSON."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def markdown_link(label: str, url: str | None) -> str:
    return f"[{label}]({url})" if url else label


def cut_to_fit(head: str, body: str, limit: int, lang: Lang, size_of: Any) -> str:
    """`body` shortened line by line (with a note saying so) until `size_of(head, text)` fits."""
    from trackpulse.channels.wording import more

    if size_of(head, body) <= limit:
        return body
    lines = body.splitlines()
    dropped = 0
    while lines:
        lines.pop()
        dropped += 1
        candidate = "\n".join([*lines, "", more(dropped, lang)])
        if size_of(head, candidate) <= limit:
            return candidate
    return more(dropped, lang)


class WebhookChannel:
    """Base of the HTTP channels: configuration, client, redaction, one POST, status mapping."""

    kind: ClassVar[str]
    max_message_bytes: ClassVar[int]
    min_interval: ClassVar[float]
    per_minute: ClassVar[int | None] = None

    def __init__(self, cfg: Any, client: httpx.Client | None = None) -> None:
        self.cfg = cfg
        self.name: str = cfg.name
        self.language: Lang = cfg.language
        self.mention: list[str] = list(cfg.mention)
        self._url: str = cfg.url.get_secret_value()
        secret = getattr(cfg, "secret", None)
        self._secret: str | None = secret.get_secret_value() if secret is not None else None
        self.redact = Redactor([*url_secrets(self._url), self._secret])
        self.redact.guard_logs()
        self._own_client = client is None
        self._client = client if client is not None else httpx.Client(timeout=cfg.timeout_seconds)
        self._timeout = float(cfg.timeout_seconds)

    # -- to be provided by each service
    def render(self, alerts: Sequence[AlertView], lang: Lang) -> Message:  # pragma: no cover - abstract
        raise NotImplementedError

    def render_markdown(self, title: str, markdown: str, lang: Lang) -> Message:  # pragma: no cover
        raise NotImplementedError

    def _judge(self, response: httpx.Response) -> Outcome:
        """A 2xx answer's meaning (default: delivered)."""
        return Sent()

    def _sign(self, body: Any, delivery_id: str) -> tuple[dict[str, str], dict[str, str], bytes]:
        """(query params, headers, body bytes) to send; the default signs nothing."""
        return {}, {}, dumps(body)

    # -- shared
    def _message(self, body: Any, *, text: str, alert_ids: Sequence[str] = ()) -> Message:
        return Message(body=body, size=len(dumps(body)), alert_ids=tuple(alert_ids), text=text)

    def answer(self, response: httpx.Response) -> str:
        """The service's words: status and (cut) body, secrets removed."""
        body = response.text.strip().replace("\n", " ")
        if len(body) > _ANSWER_CHARS:
            body = body[:_ANSWER_CHARS] + "…"
        return self.redact(f"HTTP {response.status_code}" + (f" {body}" if body else ""))

    def send(self, message: Message, *, delivery_id: str) -> Outcome:
        params, headers, raw = self._sign(message.body, delivery_id)
        headers = {"Content-Type": "application/json; charset=utf-8", **headers}
        try:
            # Query values are encoded once, here (DingTalk's sign must be encoded exactly once), and
            # merged with the URL's own: httpx's `params=` REPLACES the query, which would drop
            # DingTalk's access_token (the local receiver caught that; a MockTransport did not).
            url = httpx.URL(self._url).copy_merge_params(params) if params else self._url
            response = self._client.post(url, content=raw, headers=headers, timeout=self._timeout)
        except httpx.TimeoutException as exc:
            return RetryAfter(DEFAULT_RETRY_SECONDS,
                              self.redact(f"no answer within {self._timeout:g} s ({type(exc).__name__})"))
        except httpx.TransportError as exc:
            return RetryAfter(DEFAULT_RETRY_SECONDS,
                              self.redact(f"unreachable: {type(exc).__name__}: {exc}"))
        status = response.status_code
        if status == 429 or status in (408, 425) or status >= 500:
            wait = parse_retry_after(response.headers.get("Retry-After"))
            return RetryAfter(wait if wait is not None else DEFAULT_RETRY_SECONDS, self.answer(response))
        if not 200 <= status < 300:
            return Failed(self.answer(response), status)
        return self._judge(response)

    def _json(self, response: httpx.Response) -> dict[str, Any] | None:
        try:
            data = response.json()
        except ValueError:
            return None
        return data if isinstance(data, dict) else None

    def close(self) -> None:
        if self._own_client:
            self._client.close()

"""The answer of one attempt to deliver something outside: sent, retry later, or failed for good.

Channels (chat, e-mail, webhook) and post-back to trackers return one of these from a single
attempt; retries, backoff and pacing belong to the dispatcher and the outbox row, never to a
channel's own `sleep` (Alertmanager's notifier contract, with typed data instead of a bool).
`answer` is the service's own words (status line, errcode and errmsg), already redacted of
secrets, because `trackpulse alerts history` shows it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Sent:
    """Delivered. `remote_id` is what the service called it (Slack ts, Jira comment id), if anything."""

    remote_id: str | None = None


@dataclass(frozen=True)
class RetryAfter:
    """Not delivered, worth trying again after `seconds` (429 Retry-After, 5xx, errcode 130101, timeouts)."""

    seconds: float
    answer: str


@dataclass(frozen=True)
class Failed:
    """Refused for good (401/403/404, a signature or keyword refusal): never retried automatically."""

    answer: str
    status: int | None = None


Outcome = Sent | RetryAfter | Failed

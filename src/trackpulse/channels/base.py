"""The channel contract: render alerts into a message (pure), send it once, answer with an Outcome.

Every service module (slack, teams, dingtalk, feishu, wecom, email, webhook) implements
`Channel`. A channel never sleeps and never retries: it makes ONE attempt and says what
happened (`trackpulse.outcomes`); the dispatcher owns retries, backoff and pacing, using the
limits each channel declares as data (`max_message_bytes`, `min_interval`, `per_minute`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Protocol

from trackpulse.i18n import Lang
from trackpulse.outcomes import Outcome


@dataclass(frozen=True)
class AlertView:
    """One alert as every channel sees it: the fields of the `webhook` channel's JSON (ACTIONS.md)."""

    id: str  # stable: the same alert always has the same id
    rule: str
    when: str
    source: str
    project: str | None
    item: str | None  # Jira key / Trello card id; None for project, board and source subjects
    policy: str | None
    clock: str | None
    value: float | None  # the figure, in its unit (hours for SLA clocks, days for WIP age)
    target: float | None  # its threshold, same unit
    at: datetime  # when the condition started to hold (breached_at for SLA breaches)
    url: str | None  # the item's browse / card URL
    item_label: str | None = None  # what people call the item (Jira key, Trello shortLink or name)

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "rule": self.rule, "when": self.when, "source": self.source,
                "project": self.project, "item": self.item, "policy": self.policy, "clock": self.clock,
                "value": self.value, "target": self.target,
                "at": self.at.strftime("%Y-%m-%dT%H:%M:%SZ"), "url": self.url}


@dataclass(frozen=True)
class Message:
    """A rendered message, ready to send: the service's body plus what the dispatcher needs."""

    body: Any  # the JSON document (chat kinds) or an email.message.EmailMessage (email)
    size: int  # bytes of the serialised body, checked against max_message_bytes
    alert_ids: tuple[str, ...] = ()  # the alerts this message carries
    text: str = ""  # a plain-text rendering, for logs of the demo and `--dry-run`
    extra: dict[str, Any] = field(default_factory=dict)


class Channel(Protocol):
    kind: ClassVar[str]  # the config discriminator
    max_message_bytes: ClassVar[int]  # grouping packs alerts under it
    min_interval: ClassVar[float]  # seconds between two messages on one channel
    per_minute: ClassVar[int | None]  # the service's documented cap per minute, if any

    def render(self, alerts: Sequence[AlertView], lang: Lang) -> Message:
        """The message for these alerts in `lang`; pure (no I/O), testable without HTTP."""
        ...

    def render_markdown(self, title: str, markdown: str, lang: Lang) -> Message:
        """A free-form message (digest summaries, `channels test`) in the service's Markdown or
        card format, cut under `max_message_bytes` with a note when it would not fit; pure.
        The email kind renders it as a text part plus a simple HTML part."""
        ...

    def send(self, message: Message, *, delivery_id: str) -> Outcome:
        """One attempt. Raises only on bugs; every answer of the service is an Outcome.
        `delivery_id` is stable across retries (the webhook kind's `webhook-id`)."""
        ...

    def close(self) -> None: ...

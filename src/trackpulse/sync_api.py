"""The contract between the sync job, the connectors, the webhook queue and the CLI/server.

A connector package (`trackpulse.connectors.jira`, `trackpulse.connectors.trello`) is listed
once in `trackpulse.connectors.registry.CONNECTORS` as a `ConnectorKind`:

- `open(source_cfg, *, client: httpx.Client | None = None) -> Connector` builds a connector
  (its own authenticated `httpx.Client` when none is given; a client handed in stays the
  caller's and is not closed by `Connector.close`);
- `apply_webhook(store, source_cfg, body, headers) -> WebhookResult` normalises one verified
  delivery through the same mapping as a sync and writes it with `trackpulse.store.writer`.
  It needs no HTTP client of its own, so the webhook queue calls it without opening a
  connector. It raises `WebhookRejected` for a body that can never apply;
- optionally `apply_webhooks(store, source_cfg, deliveries, *, session=None)`, the batch path
  (`ApplyWebhooks` below): many deliveries in one transaction, or inside the caller's
  `session` when given (the webhook queue applies new deliveries in the transaction that
  stores them);
- `describe_cursor(entity, value) -> CursorView` says what one of its `sync_cursor` rows
  means, so `status` never guesses a connector's cursor format.

A `Connector` (the `Protocol` below) is used in a with-block: `check()`, `sync()`,
`apply_webhook()`, then `close()`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, Protocol, Self

from trackpulse.http import TrackerHttp

if TYPE_CHECKING:  # the store sits beside this module in the layers; only its type is named here
    from trackpulse.store.db import Store


class Progress(Protocol):
    """What a connector reports while it works (the CLI draws rich progress bars)."""

    def begin(self, source: str, entity: str, total: int | None = None) -> None: ...

    def advance(self, source: str, entity: str, n: int = 1) -> None: ...

    def end(self, source: str, entity: str) -> None: ...


class NoProgress:
    def begin(self, source: str, entity: str, total: int | None = None) -> None:
        pass

    def advance(self, source: str, entity: str, n: int = 1) -> None:
        pass

    def end(self, source: str, entity: str) -> None:
        pass


@dataclass
class SyncResult:
    source: str
    kind: str
    full: bool
    items: int = 0  # items written (created or updated)
    histories: int = 0
    worklogs: int = 0
    comments: int = 0
    deleted: int = 0
    requests: int = 0
    seconds: float = 0.0
    cursor: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def requests_per_item(self) -> float | None:
        return self.requests / self.items if self.items else None


@dataclass
class CheckResult:
    source: str
    ok: bool
    deployment: str  # "Cloud", "Server", "Trello"
    user: str | None = None
    details: list[str] = field(default_factory=list)


WebhookOutcome = Literal["applied", "deleted", "duplicate", "ignored"]


@dataclass(frozen=True)
class WebhookResult:
    """What applying one delivery did: for the delivery log, telemetry and tests."""

    outcome: WebhookOutcome
    event: str  # the tracker's event or action type
    subject: str | None = None  # the item key or id, comment, worklog or sprint id it was about
    detail: str = ""  # why it was ignored, or a note ("older than the stored card")
    # The store item ids whose figures it may have changed, for alerts that re-evaluate only
    # those (`evaluate_and_dispatch(scope=...)`); None: it may change figures of items it does not name
    # (a sprint, a version, a deletion by comment or worklog id), so everything is evaluated.
    items: tuple[str, ...] | None = None

    def __str__(self) -> str:
        text = f"{self.outcome} {self.event}" + (f" {self.subject}" if self.subject else "")
        return text + (f": {self.detail}" if self.detail else "")


@dataclass(frozen=True)
class CursorView:
    """One `sync_cursor` row as a person reads it, described by the connector that owns it."""

    entity: str
    at: datetime | None  # the tracker instant the cursor stands at, when it has one
    text: str  # a short reading for `status` (the instant, or the raw value shortened)


class Connector(Protocol):
    """One tracker source, open for work; close it when done (it owns HTTP connections)."""

    kind: str
    http: TrackerHttp  # what it sends through (request counts for the run record)

    def check(self) -> CheckResult: ...

    def sync(self, store: Store, *, full: bool = False, progress: Progress | None = None) -> SyncResult: ...

    def apply_webhook(self, store: Store, body: dict[str, Any], headers: Mapping[str, str]) -> WebhookResult: ...

    def close(self) -> None: ...

    def __enter__(self) -> Self: ...

    def __exit__(self, *exc: object) -> None: ...


ApplyWebhook = Callable[[Any, Any, dict[str, Any], Mapping[str, str]], WebhookResult]


class ApplyWebhooks(Protocol):
    """Many deliveries of one source in one transaction: per delivery its result or the
    rejection (`WebhookRejected`, which writes nothing). A store error is raised. With
    `session` (a `sqlalchemy.orm.Session` inside a transaction) it writes there and neither
    begins nor commits; without, it opens and commits a transaction of its own on `store`."""

    def __call__(self, store: Any, source_cfg: Any, deliveries: Sequence[tuple[dict[str, Any], Mapping[str, str]]],
                 *, session: Any = None) -> list[Any]: ...


@dataclass(frozen=True)
class ConnectorKind:
    """A registry entry: how to open a connector of this kind and what it does without one."""

    kind: str
    open: Callable[..., Connector]
    apply_webhook: ApplyWebhook
    describe_cursor: Callable[[str, str], CursorView]
    apply_webhooks: ApplyWebhooks | None = None  # a batch path, when the connector has one

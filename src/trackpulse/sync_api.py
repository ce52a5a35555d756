"""The contract between the sync job, the connectors and the CLI/server.

A connector module (`trackpulse.connectors.jira`, `trackpulse.connectors.trello`) exposes:

- `open_connector(source_cfg, *, client: httpx.Client | None = None) -> Connector`
  (builds its own authenticated `httpx.Client` when none is given);
- `Connector.check() -> CheckResult` (reach the tracker, verify credentials/permissions);
- `Connector.sync(store, *, full: bool, progress: Progress) -> SyncResult`;
- `Connector.http`: the `trackpulse.http.TrackerHttp` it sends through (request counts);
- `apply_webhook(store, source_cfg, body: dict, headers: Mapping[str, str]) -> str`, a
  module-level function that normalises one verified delivery through the same mapping
  as a sync and writes it with `trackpulse.store.writer` (returns a short outcome text).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


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

"""The store's tables: the normalised model of METRICS.md §1 plus sync bookkeeping.

Every row is keyed by (source, the tracker's stable id), so every write can be an
idempotent upsert. Raw payloads (`Item.raw`, `History.raw`) are kept so derived rows
can be re-derived when a mapping changes. Secrets are never stored here.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in, timezone-aware UTC out, on SQLite and PostgreSQL alike."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r} given to the store; use UTC-aware datetimes")
        value = value.astimezone(UTC)
        # SQLite has no time zones: store naive UTC text that sorts correctly.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def _ts(nullable: bool = True, index: bool = False) -> Any:
    return Field(default=None, sa_column=sa.Column(UtcDateTime(), nullable=nullable, index=index))


def _json(nullable: bool = True) -> Any:
    return Field(default=None, sa_column=sa.Column(sa.JSON(), nullable=nullable))


class SourceState(SQLModel, table=True):
    """Per source: what kind of tracker it is and how its last runs went."""

    __tablename__ = "source_state"
    name: str = Field(primary_key=True)
    kind: str
    base_url: str = ""
    deployment: str | None = None  # Cloud | Server (Jira), Trello
    last_run_started: datetime | None = _ts()
    last_run_finished: datetime | None = _ts()
    last_success: datetime | None = _ts()
    last_error: str | None = None
    last_run_requests: int | None = None
    mapping_hash: str | None = None  # config that shapes derived rows; a change triggers re-derivation


class SyncCursor(SQLModel, table=True):
    """Where the next incremental run starts, per (source, entity). Tracker clock only."""

    __tablename__ = "sync_cursor"
    source: str = Field(primary_key=True)
    entity: str = Field(primary_key=True)
    value: str
    updated_at: datetime | None = _ts()


class Project(SQLModel, table=True):
    __tablename__ = "project"
    source: str = Field(primary_key=True)
    key: str = Field(primary_key=True)
    project_id: str = ""
    name: str = ""


class StatusDef(SQLModel, table=True):
    """Status catalogue (Jira statuses; Trello lists) with the category metrics use."""

    __tablename__ = "status_def"
    source: str = Field(primary_key=True)
    status_id: str = Field(primary_key=True)
    name: str
    category: str  # todo | in_progress | done


class Item(SQLModel, table=True):
    __tablename__ = "item"
    __table_args__ = (sa.Index("ix_item_source_project", "source", "project"),)
    source: str = Field(primary_key=True)
    item_id: str = Field(primary_key=True)
    key: str = Field(index=True)
    project: str
    summary: str = ""
    type: str
    priority: str | None = None
    is_defect: bool = False
    status_id: str
    status_name: str
    status_category: str
    points: float | None = None
    sprint_ids: list[str] | None = _json()
    created: datetime = _ts(nullable=False)
    updated: datetime = _ts(nullable=False, index=True)  # the dashboard's change probe (revision 0011)
    resolved_at: datetime | None = _ts()
    reporter: str | None = None
    reporter_name: str | None = None
    assignee: str | None = None
    archived: bool = False
    deleted: bool = False
    deleted_at: datetime | None = _ts()
    raw: dict[str, Any] | None = _json()
    # Revision 0007 (METRICS.md §9, §13): current assignee display names, fix version ids, epic key.
    assignees: list[str] | None = _json()
    fix_versions: list[str] | None = _json()
    epic: str | None = None
    is_epic: bool = Field(default=False, sa_column_kwargs={"server_default": sa.false()})


class History(SQLModel, table=True):
    """Raw history entries (Jira changelog histories, Trello actions): append-only."""

    __tablename__ = "history"
    source: str = Field(primary_key=True)
    item_id: str = Field(primary_key=True)
    history_id: str = Field(primary_key=True)
    at: datetime = _ts(nullable=False)
    author: str | None = None
    raw: dict[str, Any] | None = _json()


class Transition(SQLModel, table=True):
    __tablename__ = "transition"
    source: str = Field(primary_key=True)
    item_id: str = Field(primary_key=True)
    history_id: str = Field(primary_key=True)
    seq: int = Field(primary_key=True)
    at: datetime = _ts(nullable=False)
    from_status_id: str | None = None
    to_status_id: str
    from_name: str | None = None
    to_name: str | None = None


class SprintChange(SQLModel, table=True):
    __tablename__ = "sprint_change"
    source: str = Field(primary_key=True)
    item_id: str = Field(primary_key=True)
    history_id: str = Field(primary_key=True)
    seq: int = Field(primary_key=True)
    at: datetime = _ts(nullable=False)
    from_sprint_ids: list[str] | None = _json()
    to_sprint_ids: list[str] | None = _json()


class EstimateChange(SQLModel, table=True):
    __tablename__ = "estimate_change"
    source: str = Field(primary_key=True)
    item_id: str = Field(primary_key=True)
    history_id: str = Field(primary_key=True)
    seq: int = Field(primary_key=True)
    at: datetime = _ts(nullable=False)
    from_points: float | None = None
    to_points: float | None = None


class AssigneeChange(SQLModel, table=True):
    """A change of an item's assignee set as a delta of display names (revision 0007)."""

    __tablename__ = "assignee_change"
    source: str = Field(primary_key=True)
    item_id: str = Field(primary_key=True)
    history_id: str = Field(primary_key=True)
    seq: int = Field(primary_key=True)
    at: datetime = _ts(nullable=False)
    added: list[str] | None = _json()
    removed: list[str] | None = _json()


class Version(SQLModel, table=True):
    """A Jira project version (revision 0007), with its raw JSON; dates are "YYYY-MM-DD" days."""

    __tablename__ = "version"
    source: str = Field(primary_key=True)
    version_id: str = Field(primary_key=True)
    project: str
    name: str
    start: str | None = None
    release_date: str | None = None
    released: bool = False
    archived: bool = False
    deleted: bool = False
    raw: dict[str, Any] | None = _json()


class Worklog(SQLModel, table=True):
    __tablename__ = "worklog"
    source: str = Field(primary_key=True)
    worklog_id: str = Field(primary_key=True)
    item_id: str = Field(index=True)
    author: str
    author_id: str | None = None
    started: datetime = _ts(nullable=False)
    seconds: int
    updated: datetime = _ts(nullable=False)
    deleted: bool = False


class Comment(SQLModel, table=True):
    """Comment metadata: who and when. Bodies are never stored."""

    __tablename__ = "comment"
    source: str = Field(primary_key=True)
    comment_id: str = Field(primary_key=True)
    item_id: str = Field(index=True)
    author: str | None = None
    author_name: str | None = None
    created: datetime = _ts(nullable=False)
    updated: datetime | None = _ts()
    deleted: bool = False


class Board(SQLModel, table=True):
    __tablename__ = "board"
    source: str = Field(primary_key=True)
    board_id: str = Field(primary_key=True)
    name: str
    type: str = ""
    project: str | None = None


class Sprint(SQLModel, table=True):
    __tablename__ = "sprint"
    source: str = Field(primary_key=True)
    sprint_id: str = Field(primary_key=True)
    board_id: str | None = None
    name: str
    state: str
    start: datetime | None = _ts()
    end: datetime | None = _ts()
    complete: datetime | None = _ts()
    goal: str | None = None


class WebhookDelivery(SQLModel, table=True):
    """Every accepted webhook delivery, stored before it is processed (never lost) and
    keyed by the tracker's delivery id (duplicates are recognised)."""

    __tablename__ = "webhook_delivery"
    source: str = Field(primary_key=True)
    delivery_id: str = Field(primary_key=True)
    received_at: datetime = _ts(nullable=False)
    event: str = ""
    body: dict[str, Any] | None = _json()
    processed_at: datetime | None = _ts(index=True)  # applied (or nothing to do) at; indexed in 0011
    error: str | None = None  # the last failure, in one line
    # Failure bookkeeping (revision 0002). Pending = neither processed nor failed; a transient
    # failure sets `retry_at` (backoff), a permanent one (or the last allowed try) `failed_at`.
    attempts: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    failure: str | None = None  # "transient" | "permanent": the class of the last failure
    retry_at: datetime | None = _ts()
    failed_at: datetime | None = _ts()


class DigestFiring(SQLModel, table=True):
    """One digest firing, keyed by (digest, scheduled LOCAL wall time): the key `insert_once`
    claims before anything is sent, so a restart, a daylight-saving repeat of the same local
    time or a second `serve` instance never sends the same firing twice."""

    __tablename__ = "digest_firing"
    digest: str = Field(primary_key=True)
    scheduled_local: str = Field(primary_key=True)  # "2026-11-23T09:00" in the digest's timezone
    timezone: str = ""
    scheduled_utc: datetime = _ts(nullable=False)
    as_of: datetime = _ts(nullable=False)
    claimed_at: datetime = _ts(nullable=False)
    finished_at: datetime | None = _ts()
    outcome: str | None = None  # per channel: "pmo-mail=sent; ops-dingtalk=failed: …"


class JobRun(SQLModel, table=True):
    """One firing of a scheduled job, claimed once across every `serve` instance.

    The key is (job, firing): `firing` is the scheduled LOCAL wall time for cron jobs
    (`2026-10-25T02:30`, so a daylight-saving repeat is the same firing) and the slot's start
    instant for interval jobs. The first instance to insert the row runs it (`insert_once`);
    `lease_until` (the database's clock) says how long its holder is trusted without a renewal.
    """

    __tablename__ = "job_run"
    job: str = Field(primary_key=True)  # "sync:acme-jira", "full-sync:acme-jira", "digest:weekly-pmo"
    firing: str = Field(primary_key=True)
    kind: str  # sync | full_sync | digest | alerts
    scheduled_at: datetime = _ts(nullable=False, index=True)  # the firing's instant, UTC
    status: str = "pending"  # pending | running | released | done | failed | skipped
    holder: str | None = None  # instance id "host:pid:random" of the process running it
    lease_until: datetime | None = _ts()
    claimed_at: datetime | None = _ts()
    started_at: datetime | None = _ts()
    finished_at: datetime | None = _ts()
    attempts: int = 0
    takeovers: int = 0
    error: str | None = None
    note: str | None = None


class JobLease(SQLModel, table=True):
    """The lease on a resource two runs must never work on at once (a source's cursors).

    One row per lock name; a run holds it until `lease_until` (the database's clock) and
    renews it while it works. A holder that stops renewing loses it to the next taker.
    """

    __tablename__ = "job_lease"
    lock: str = Field(primary_key=True)  # "sync:acme-jira" for both the incremental and the full sync
    holder: str
    job: str
    firing: str
    lease_until: datetime = _ts(nullable=False)


ALL_TABLES = [
    SourceState, SyncCursor, Project, StatusDef, Item, History, Transition, SprintChange,
    EstimateChange, AssigneeChange, Version, Worklog, Comment, Board, Sprint, WebhookDelivery, DigestFiring, JobRun, JobLease,
]


# --------------------------------------------------------------------------- alerts (ACTIONS.md)


class Alert(SQLModel, table=True):
    """The alert ledger: one row per episode of a rule's condition on one subject.

    `id` is derived from (rule, subject, episode), so "open this episode" is one
    `insert_once` and two evaluators racing on it cannot both win. `closed_at` is set when a
    figure rule's condition stops holding (the rule re-arms: the next episode is a new row).
    The row keeps what channels show (AlertView), frozen as it was when the episode opened.
    """

    __tablename__ = "alert"
    __table_args__ = (sa.UniqueConstraint("rule", "subject", "episode", name="uq_alert_episode"),
                      sa.Index("ix_alert_rule_subject", "rule", "subject"))
    id: str = Field(primary_key=True)
    rule: str
    when: str
    subject: str
    episode: int
    source: str
    project: str | None = None
    item: str | None = None  # what people call the item (Jira key, Trello shortLink)
    item_id: str | None = None  # the tracker's id (Trello card id), for post-back
    policy: str | None = None
    clock: str | None = None
    value: float | None = None
    target: float | None = None
    at: datetime = _ts(nullable=False)
    url: str | None = None
    opened_at: datetime = _ts(nullable=False, index=True)
    closed_at: datetime | None = _ts()


class Delivery(SQLModel, table=True):
    """The outbox: one row per (alert, channel) and per (alert, post-back action), written in
    the alert's transaction. The dispatcher claims due rows (`claimed_until` is its lease),
    records each attempt before it is made (`attempts`) and its outcome after. `answer` is the
    service's words, redacted; no secret is ever stored here."""

    __tablename__ = "delivery"
    __table_args__ = (sa.Index("ix_delivery_due", "status", "not_before"),
                      sa.Index("ix_delivery_target", "target_kind", "target", "status"))
    id: str = Field(primary_key=True)
    alert_id: str = Field(index=True)
    target_kind: str  # channel | comment | label
    target: str  # the channel name, or the source name for post-back
    status: str = "pending"  # pending | sent | failed
    attempts: int = 0
    not_before: datetime = _ts(nullable=False)
    claimed_by: str | None = None
    claimed_until: datetime | None = _ts()
    message_id: str | None = None  # the grouped message this delivery went out in
    payload: dict[str, Any] | None = _json()  # comment text segments / label name (no secrets)
    answer: str | None = None
    remote_id: str | None = None
    created_at: datetime = _ts(nullable=False)
    sent_at: datetime | None = _ts(index=True)
    updated_at: datetime | None = _ts()


ALL_TABLES += [Alert, Delivery]

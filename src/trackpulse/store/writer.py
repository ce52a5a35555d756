"""Every write into the store: idempotent upserts of normalised records.

Sync pages and webhook deliveries both end here (`apply_bundles`). Rules:
- an item is only overwritten by data at least as new (`updated`), so an older webhook
  arriving late never undoes a newer sync;
- histories are append-only (insert or ignore), keyed by the tracker's history id;
- a complete child list (worklogs, comments) marks rows absent from it deleted;
- a deletion is a tombstone that newer data for the same id can lift (Jira restores).
The caller owns the transaction: a page and its cursor commit together.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, fields
from datetime import UTC, datetime
from operator import itemgetter
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session
from sqlmodel import SQLModel, col

from trackpulse.records import (
    BoardRecord,
    ItemBundle,
    ProjectRecord,
    SprintRecord,
    StatusRecord,
    VersionRecord,
)
from trackpulse.store.models import (
    AssigneeChange,
    Board,
    Comment,
    EstimateChange,
    History,
    Item,
    Project,
    SourceState,
    Sprint,
    SprintChange,
    StatusDef,
    SyncCursor,
    Transition,
    UtcDateTime,
    Version,
    Worklog,
)


def _insert(session: Session, model: type[SQLModel]) -> Any:
    table = model.__table__  # type: ignore[attr-defined]
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def upsert(
    session: Session,
    model: type[SQLModel],
    rows: Sequence[dict[str, Any]],
    *,
    update: Sequence[str] | None = None,
    newer_than: str | None = None,
    keep_known: Sequence[str] = (),
) -> None:
    """Insert rows; on key conflict update `update` columns (all non-key by default),
    or do nothing when `update` is empty. With `newer_than`, only replace a stored row
    whose column of that name is not newer than the incoming one. `keep_known` columns
    keep their stored value when the incoming one is None."""
    if not rows:
        return
    table = model.__table__  # type: ignore[attr-defined]
    keys = [c.name for c in table.primary_key.columns]
    cols = list(rows[0].keys())
    if update is None:
        update = [c for c in cols if c not in keys]
    # One statement executed with a list of rows: SQLAlchemy batches it ("insertmanyvalues")
    # without compiling a fresh giant VALUES clause per page, which dominated sync time.
    # Rows run in their order, one after another (executemany without RETURNING), so two rows
    # of one key in one call end as if written by two calls; webhook batches rely on it.
    dialect = session.get_bind().dialect.name
    shape = (dialect, model, tuple(cols), tuple(update), newer_than, tuple(keep_known))
    stmt = _UPSERTS.get(shape)
    if stmt is None:
        stmt = _UPSERTS[shape] = _upsert_statement(session, model, keys, update, newer_than, keep_known)
    _execute_many(session, stmt, rows, cols)


# Built statements by their shape: building `excluded` column proxies cost more than running
# a small webhook batch's statement (bench/bench_webhook_intake.py). Statements are immutable.
_UPSERTS: dict[tuple[Any, ...], Any] = {}


def _upsert_statement(session: Session, model: type[SQLModel], keys: list[str], update: Sequence[str],
                      newer_than: str | None, keep_known: Sequence[str]) -> Any:
    table = model.__table__  # type: ignore[attr-defined]
    stmt = _insert(session, model)
    if not update:
        return stmt.on_conflict_do_nothing(index_elements=keys)
    where = None
    if newer_than:
        where = table.c[newer_than] <= stmt.excluded[newer_than]
    set_ = {c: stmt.excluded[c] for c in update}
    for c in keep_known:
        # An incoming unknown (None) never erases what another path already learned.
        set_[c] = sa.func.coalesce(stmt.excluded[c], table.c[c])
    return stmt.on_conflict_do_update(index_elements=keys, set_=set_, where=where)


# Below this many rows the generic path's overhead does not matter.
FAST_MANY_MIN_ROWS = 64


def _execute_many(session: Session, stmt: Any, rows: Sequence[dict[str, Any]], cols: list[str]) -> None:
    """`session.execute(stmt, rows)`, on SQLite for big batches without SQLAlchemy's per-row
    parameter handling: the statement is compiled once, each column's bind processor (UTC
    datetimes to text, JSON to text) is applied here in one pass, and the tuples go to the
    driver's `executemany`. Same SQL, same stored values; a sync page spent a third of its
    writing time building parameter dictionaries (bench/bench_peers.py)."""
    conn = session.connection()
    if conn.dialect.name != "sqlite" or len(rows) < FAST_MANY_MIN_ROWS:
        session.execute(stmt, list(rows))
        return
    compiled = stmt.compile(dialect=conn.dialect, column_keys=cols)
    names = list(compiled.positiontup or ())
    if not names or not set(names) <= set(cols):  # a bind that is not a column value: the generic path
        session.execute(stmt, list(rows))
        return
    procs = compiled._bind_processors
    table = stmt.table
    # Column by column: itemgetter and zip run in C, only columns with a processor loop in Python.
    columns: list[Sequence[Any]] = (list(zip(*map(itemgetter(*names), rows))) if len(names) > 1
                                    else [tuple(r[names[0]] for r in rows)])
    for i, name in enumerate(names):
        if name in table.c and isinstance(table.c[name].type, UtcDateTime):
            columns[i] = list(map(_sqlite_instant, columns[i]))
        elif (proc := procs.get(name)) is not None:
            columns[i] = list(map(proc, columns[i]))
    conn.exec_driver_sql(compiled.string, list(zip(*columns)))


def _sqlite_instant(value: datetime | None) -> str | None:
    """What `UtcDateTime` and SQLAlchemy's SQLite DATETIME make of an instant, in one step:
    naive UTC text, "YYYY-MM-DD HH:MM:SS.ffffff"."""
    if value is None:
        return None
    tz = value.tzinfo
    if tz is None:
        raise ValueError(f"naive datetime {value!r} given to the store; use UTC-aware datetimes")
    if tz is not UTC:
        value = value.astimezone(UTC)
    return value.isoformat(" ", "microseconds")[:26]  # without the "+00:00" (years are four digits)


def insert_once(session: Session, model: type[SQLModel], row: dict[str, Any]) -> bool:
    """Insert `row` unless a row with the same primary key exists; True when this call wrote it.

    The one "first writer wins" primitive: `INSERT … ON CONFLICT DO NOTHING` decided by the
    database, so two processes racing on one key cannot both win. Webhook intake, the alert
    ledger, the outbox, digest firings and scheduler claims all build their exactly-once
    promise on it. The caller owns the transaction; the row is only durable once it commits.
    """
    table = model.__table__  # type: ignore[attr-defined]
    keys = [c.name for c in table.primary_key.columns]
    # RETURNING, not rowcount: psycopg reports -1 for some conflict-skipped inserts.
    stmt = (_insert(session, model).values(row).on_conflict_do_nothing(index_elements=keys)
            .returning(table.c[keys[0]]))
    return session.execute(stmt).first() is not None


def insert_new(session: Session, model: type[SQLModel], rows: Sequence[dict[str, Any]]) -> set[tuple[Any, ...]]:
    """`insert_once` for many rows in one statement: the primary keys this call wrote. Rows must
    have distinct keys (the caller keeps the first of a repeat)."""
    if not rows:
        return set()
    table = model.__table__  # type: ignore[attr-defined]
    keys = [c.name for c in table.primary_key.columns]
    # executemany with RETURNING: SQLAlchemy batches it into multi-row INSERTs ("insertmanyvalues")
    # from one cached compilation, instead of compiling a VALUES clause of this batch's size.
    stmt = (_insert(session, model).on_conflict_do_nothing(index_elements=keys)
            .returning(*[table.c[k] for k in keys]))
    return {tuple(r) for r in session.execute(stmt, list(rows))}


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def _row(record: Any, **extra: Any) -> dict[str, Any]:
    """A record's fields as a row. Shallow on purpose: `dataclasses.asdict` deep-copies the raw
    payloads, which made it the single largest cost of a sync page."""
    names = _FIELD_NAMES.get(type(record))
    if names is None:
        names = _FIELD_NAMES[type(record)] = tuple(f.name for f in fields(record))
    row = {n: getattr(record, n) for n in names}
    row.update(extra)
    return row


def _item_row(source: str, bundle: ItemBundle) -> dict[str, Any]:
    item = bundle.item
    assert item is not None
    return _row(item, sprint_ids=list(item.sprint_ids), assignees=list(item.assignees),
                fix_versions=list(item.fix_versions), source=source, deleted=False, deleted_at=None)


def apply_bundles(session: Session, source: str, bundles: Sequence[ItemBundle]) -> None:
    """Write items with their histories, worklogs and comments (the one write path)."""
    items = [_item_row(source, b) for b in bundles if b.item is not None]
    # Trello cards carry no creator: the connector fills `reporter` from creation actions.
    upsert(session, Item, items, newer_than="updated", keep_known=("reporter", "reporter_name"))

    histories: list[dict[str, Any]] = []
    transitions: list[dict[str, Any]] = []
    sprint_changes: list[dict[str, Any]] = []
    estimates: list[dict[str, Any]] = []
    assignee_changes: list[dict[str, Any]] = []
    for b in bundles:
        for h in b.histories or ():
            base = {"source": source, "item_id": h.item_id, "history_id": h.history_id}
            histories.append({**base, "at": h.at, "author": h.author, "raw": h.raw})
            transitions += [_row(t, **base) for t in h.transitions]
            sprint_changes += [
                {**base, "seq": s.seq, "at": s.at, "from_sprint_ids": list(s.from_sprint_ids),
                 "to_sprint_ids": list(s.to_sprint_ids)} for s in h.sprint_changes
            ]
            estimates += [_row(e, **base) for e in h.estimate_changes]
            assignee_changes += [
                {**base, "seq": a.seq, "at": a.at, "added": list(a.added), "removed": list(a.removed)}
                for a in h.assignee_changes
            ]
    upsert(session, History, histories, update=[])
    upsert(session, AssigneeChange, assignee_changes, update=[])
    upsert(session, Transition, transitions, update=[])
    upsert(session, SprintChange, sprint_changes, update=[])
    upsert(session, EstimateChange, estimates, update=[])

    worklogs = [_row(w, source=source, deleted=False)
                for b in bundles for w in (b.worklogs or []) + b.partial_worklogs]
    comments = [_row(c, source=source, deleted=False)
                for b in bundles for c in (b.comments or []) + b.partial_comments]
    _delete_missing_children(session, Worklog, source, "worklog_id",
                             {b.item_id: {w.worklog_id for w in b.worklogs} for b in bundles if b.worklogs is not None})
    _delete_missing_children(session, Comment, source, "comment_id",
                             {b.item_id: {c.comment_id for c in b.comments} for b in bundles if b.comments is not None})
    upsert(session, Worklog, worklogs, newer_than="updated")
    upsert(session, Comment, comments)


def _delete_missing_children(session: Session, model: Any, source: str, id_column: str,
                             complete: dict[str, set[str]]) -> None:
    """Mark deleted the stored children (worklogs, comments) of items whose complete list we
    hold and which that list no longer has: one read and one update per page, not per item."""
    if not complete:
        return
    item_ids = list(complete)
    gone: list[str] = []
    for i in range(0, len(item_ids), 5000):
        rows = session.execute(
            sa.select(col(model.item_id), col(getattr(model, id_column))).where(
                col(model.source) == source, col(model.item_id).in_(item_ids[i:i + 5000]),
                col(model.deleted).is_(False),
            )
        )
        gone += [child for item_id, child in rows if child not in complete[item_id]]
    for i in range(0, len(gone), 5000):
        session.execute(
            sa.update(model).where(col(model.source) == source, col(getattr(model, id_column)).in_(gone[i:i + 5000]))
            .values(deleted=True)
        )


def _delete_worklogs_of_items(session: Session, source: str, item_ids: Sequence[str]) -> None:
    """A deleted issue takes its worklogs with it (as Jira does): the one place that says so."""
    for i in range(0, len(item_ids), 5000):
        session.execute(
            sa.update(Worklog).where(col(Worklog.source) == source, col(Worklog.item_id).in_(item_ids[i:i + 5000]))
            .values(deleted=True)
        )


def mark_items_deleted(session: Session, source: str, item_ids: Iterable[str], at: datetime, *,
                       with_worklogs: bool = False) -> int:
    """Tombstone items. `updated` moves to `at` so an older update cannot resurrect them.
    `with_worklogs`: their worklogs are deleted too (Jira issues)."""
    ids = list(item_ids)
    if with_worklogs:
        _delete_worklogs_of_items(session, source, ids)
    n = 0
    for i in range(0, len(ids), 5000):
        res = cast("CursorResult[Any]", session.execute(  # an UPDATE yields a CursorResult
            sa.update(Item).where(
                col(Item.source) == source, col(Item.item_id).in_(ids[i:i + 5000]),
                col(Item.deleted).is_(False), col(Item.updated) <= at,
            ).values(deleted=True, deleted_at=at, updated=at)
        ))
        n += res.rowcount or 0
    return n


def reconcile_deleted_items(session: Session, source: str, alive_ids: set[str], at: datetime, *,
                            with_worklogs: bool = False) -> int:
    """After a full sweep: every stored live item the tracker no longer lists is deleted
    (`with_worklogs`: with its worklogs, as `mark_items_deleted`)."""
    stored = session.execute(
        sa.select(col(Item.item_id)).where(col(Item.source) == source, col(Item.deleted).is_(False))
    ).scalars()
    gone = [i for i in stored if i not in alive_ids]
    if not gone:
        return 0
    ids = gone
    if with_worklogs:
        _delete_worklogs_of_items(session, source, ids)
    for i in range(0, len(ids), 5000):
        session.execute(
            sa.update(Item).where(col(Item.source) == source, col(Item.item_id).in_(ids[i:i + 5000]))
            .values(deleted=True, deleted_at=at)
        )
    return len(gone)


def delete_worklogs(session: Session, source: str, worklog_ids: Iterable[str]) -> None:
    ids = list(worklog_ids)
    for i in range(0, len(ids), 5000):
        session.execute(
            sa.update(Worklog).where(col(Worklog.source) == source, col(Worklog.worklog_id).in_(ids[i:i + 5000]))
            .values(deleted=True)
        )


def delete_comments(session: Session, source: str, comment_ids: Iterable[str]) -> None:
    ids = list(comment_ids)
    session.execute(
        sa.update(Comment).where(col(Comment.source) == source, col(Comment.comment_id).in_(ids))
        .values(deleted=True)
    )


def upsert_statuses(session: Session, source: str, statuses: Sequence[StatusRecord]) -> None:
    upsert(session, StatusDef, [{**asdict(s), "source": source} for s in statuses])


def upsert_projects(session: Session, source: str, projects: Sequence[ProjectRecord]) -> None:
    upsert(session, Project, [{**asdict(p), "source": source} for p in projects])


def upsert_boards(session: Session, source: str, boards: Sequence[BoardRecord]) -> None:
    upsert(session, Board, [{**asdict(b), "source": source} for b in boards])


def upsert_sprints(session: Session, source: str, sprints: Sequence[SprintRecord]) -> None:
    upsert(session, Sprint, [{**asdict(s), "source": source} for s in sprints])


def upsert_versions(session: Session, source: str, versions: Sequence[VersionRecord]) -> None:
    """Versions as the tracker lists them now (a listed version is live again)."""
    upsert(session, Version, [{**_row(v), "source": source, "deleted": False} for v in versions])


def delete_versions(session: Session, source: str, version_ids: Iterable[str]) -> None:
    ids = list(version_ids)
    if ids:
        session.execute(sa.update(Version).where(col(Version.source) == source, col(Version.version_id).in_(ids))
                        .values(deleted=True))


def reconcile_versions(session: Session, source: str, project: str, alive_ids: set[str]) -> None:
    """After a project's complete version list: its stored versions not in it are deleted."""
    stored = session.execute(sa.select(col(Version.version_id)).where(
        col(Version.source) == source, col(Version.project) == project, col(Version.deleted).is_(False))).scalars()
    delete_versions(session, source, [v for v in stored if v not in alive_ids])


def delete_sprints(session: Session, source: str, sprint_ids: Iterable[str]) -> None:
    session.execute(sa.delete(Sprint).where(
        col(Sprint.source) == source, col(Sprint.sprint_id).in_(list(sprint_ids))))


def get_cursor(session: Session, source: str, entity: str) -> str | None:
    row = session.get(SyncCursor, (source, entity))
    return row.value if row else None


def set_cursor(session: Session, source: str, entity: str, value: str) -> None:
    upsert(session, SyncCursor, [{"source": source, "entity": entity, "value": value,
                                  "updated_at": datetime.now(UTC)}])


def clear_cursor(session: Session, source: str, entity: str) -> None:
    session.execute(sa.delete(SyncCursor).where(
        col(SyncCursor.source) == source, col(SyncCursor.entity) == entity))


def record_run(session: Session, name: str, kind: str, **values: Any) -> None:
    """Create or update the source's bookkeeping row with the given columns."""
    state = session.get(SourceState, name)
    if state is None:
        # First writer wins: two instances' first runs of one source race to create the row
        # (a plain INSERT made the slower one fail on the primary key).
        insert_once(session, SourceState, {"name": name, "kind": kind})
        state = session.get(SourceState, name, populate_existing=True)
        assert state is not None
    for k, v in values.items():
        setattr(state, k, v)

"""The store's write rules, on SQLite and PostgreSQL: idempotent, ordered, all-or-nothing."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from trackpulse.records import (
    CommentRecord,
    HistoryRecord,
    ItemBundle,
    ItemRecord,
    TransitionRecord,
    WorklogRecord,
)
from trackpulse.store import writer
from trackpulse.store.db import Store, open_store
from trackpulse.store.models import Comment, History, Item, Transition, Worklog

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _postgres_url() -> str | None:
    """A fresh database on the local PostgreSQL, or None when it does not answer."""
    import socket
    import uuid

    try:
        socket.create_connection(("127.0.0.1", 5432), timeout=1).close()
    except OSError:
        return None
    name = f"tp_store_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine("postgresql+psycopg://postgres@127.0.0.1:5432/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"


def _drop_postgres(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    admin = sa.create_engine("postgresql+psycopg://postgres@127.0.0.1:5432/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def any_store(request: pytest.FixtureRequest, tmp_path):  # type: ignore[no-untyped-def]
    if request.param == "sqlite":
        store = open_store(f"sqlite:///{tmp_path}/store.db")
        yield store
        store.dispose()
        return
    url = _postgres_url()
    if url is None:
        pytest.skip("PostgreSQL does not answer at 127.0.0.1:5432")
    store = open_store(url)
    yield store
    store.dispose()
    _drop_postgres(url)


def _item(updated: datetime = T0, **kw: object) -> ItemRecord:
    base = ItemRecord(source="s", item_id="10001", key="ABC-1", project="ABC", type="Bug", status_id="1",
                      status_name="To Do", status_category="todo", created=T0, updated=updated, raw={"id": "10001"})
    return dataclasses.replace(base, **kw)  # type: ignore[arg-type]


def _bundle(item: ItemRecord, **kw: object) -> ItemBundle:
    return ItemBundle(item=item, item_id=item.item_id, **kw)  # type: ignore[arg-type]


def _history(hid: str, at: datetime) -> HistoryRecord:
    return HistoryRecord(item_id="10001", history_id=hid, at=at, author="u1", raw={"id": hid},
                         transitions=[TransitionRecord(at=at, seq=0, from_status_id="1", to_status_id="3")])


def _count(store: Store, model: type) -> int:
    with store.session() as s:
        return s.execute(sa.select(sa.func.count()).select_from(model)).scalar_one()


def _one(store: Store, model: type) -> object:
    with store.session() as s:
        return s.execute(sa.select(model)).scalar_one()


def test_applying_the_same_page_twice_changes_nothing(any_store: Store) -> None:
    bundle = _bundle(_item(), histories=[_history("h1", T0 + timedelta(hours=1))],
                     worklogs=[WorklogRecord("w1", "10001", "Ada Li", "u1", T0, 3600, T0)],
                     comments=[CommentRecord("c1", "10001", "u2", "Bo", T0)])
    for _ in range(2):
        with any_store.transaction() as s:
            writer.apply_bundles(s, "s", [bundle])
    assert [_count(any_store, m) for m in (Item, History, Transition, Worklog, Comment)] == [1, 1, 1, 1, 1]


def test_older_update_never_overwrites_newer_data(any_store: Store) -> None:
    with any_store.transaction() as s:
        writer.apply_bundles(s, "s", [_bundle(_item(updated=T0 + timedelta(hours=2), status_name="Done"))])
    with any_store.transaction() as s:
        writer.apply_bundles(s, "s", [_bundle(_item(updated=T0 + timedelta(hours=1), status_name="Late"))])
    assert _one(any_store, Item).status_name == "Done"  # type: ignore[attr-defined]


def test_deleted_item_is_not_resurrected_by_an_older_update(any_store: Store) -> None:
    with any_store.transaction() as s:
        writer.apply_bundles(s, "s", [_bundle(_item())])
        writer.mark_items_deleted(s, "s", ["10001"], T0 + timedelta(hours=3))
    with any_store.transaction() as s:
        writer.apply_bundles(s, "s", [_bundle(_item(updated=T0 + timedelta(hours=1)))])
    item = _one(any_store, Item)
    assert item.deleted is True and item.updated == T0 + timedelta(hours=3)  # type: ignore[attr-defined]


def test_complete_worklog_list_marks_missing_worklogs_deleted(any_store: Store) -> None:
    w1 = WorklogRecord("w1", "10001", "Ada Li", "u1", T0, 3600, T0)
    w2 = WorklogRecord("w2", "10001", "Ada Li", "u1", T0, 1800, T0)
    with any_store.transaction() as s:
        writer.apply_bundles(s, "s", [_bundle(_item(), worklogs=[w1, w2])])
    with any_store.transaction() as s:
        writer.apply_bundles(s, "s", [_bundle(_item(), worklogs=[w1])])
    with any_store.session() as s:
        rows = dict(s.execute(sa.select(Worklog.worklog_id, Worklog.deleted)).all())
    assert rows == {"w1": False, "w2": True}


def test_failed_transaction_leaves_page_and_cursor_as_they_were(any_store: Store) -> None:
    with pytest.raises(RuntimeError), any_store.transaction() as s:
        writer.apply_bundles(s, "s", [_bundle(_item())])
        writer.set_cursor(s, "s", "issues", "123")
        raise RuntimeError("killed mid-page")
    with any_store.session() as s:
        assert writer.get_cursor(s, "s", "issues") is None
    assert _count(any_store, Item) == 0


def test_instants_come_back_as_utc_aware(any_store: Store) -> None:
    shanghai = timezone(timedelta(hours=8))
    with any_store.transaction() as s:
        writer.apply_bundles(s, "s", [_bundle(_item(created=datetime(2026, 3, 2, 17, 0, tzinfo=shanghai)))])
    assert _one(any_store, Item).created == T0  # type: ignore[attr-defined]


def test_naive_datetimes_are_refused(any_store: Store) -> None:
    with pytest.raises(sa.exc.StatementError, match="naive datetime"), any_store.transaction() as s:
        writer.apply_bundles(s, "s", [_bundle(_item(created=datetime(2026, 3, 2, 9, 0)))])


def test_opening_twice_runs_migrations_once(any_store: Store) -> None:
    url = any_store.engine.url.render_as_string(hide_password=False)
    again = open_store(url)
    from alembic.script import ScriptDirectory

    from trackpulse.store.db import MIGRATIONS_DIR

    head = ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head()
    with again.session() as s:
        assert s.execute(sa.text("select version_num from alembic_version")).scalar_one() == head
    again.dispose()


def test_missing_store_folder_is_a_clear_error(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from trackpulse.errors import StoreError

    with pytest.raises(StoreError, match="does not exist"):
        open_store(f"sqlite:///{tmp_path}/nope/x.db")


def test_a_snapshot_sees_one_state_while_other_commits_land(any_store: Store) -> None:
    """`Store.snapshot()` (what the metrics read through): a page committed after its first
    query is seen by none of its later queries, of any table, and by the next snapshot."""
    with any_store.transaction() as s:
        writer.apply_bundles(s, "src", [_bundle(_item(), histories=[_history("h1", T0)])])
    with any_store.snapshot() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(Item)).scalar_one() == 1
        with any_store.transaction() as s:  # another writer commits meanwhile
            writer.apply_bundles(s, "src", [_bundle(_item(item_id="2", key="ABC-2"),
                                                    histories=[_history("h2", T0)])])
        assert conn.execute(sa.select(sa.func.count()).select_from(Item)).scalar_one() == 1
        assert conn.execute(sa.select(sa.func.count()).select_from(History)).scalar_one() == 1
    with any_store.snapshot() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(History)).scalar_one() == 2

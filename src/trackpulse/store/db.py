"""Opening the store: engine set-up (SQLite WAL + busy timeout, PostgreSQL) and migrations.

`open_store(url)` returns a ready `Store`: the schema is brought to the newest Alembic
revision on open, so a user never runs migrations by hand.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from trackpulse import jsonio
from trackpulse.errors import StoreError

log = logging.getLogger("trackpulse.store")

MIGRATIONS_DIR = Path(__file__).with_name("migrations")


def of_items(table: Any, items: Mapping[str, Collection[str]] | None) -> Any:
    """WHERE clause: `table`'s rows of the given items only (source -> store item ids; None:
    every item), for any table keyed by (`source`, `item_id`): item rows and their children,
    alerts."""
    if items is None:
        return sa.true()
    return sa.or_(sa.false(), *[sa.and_(table.source == source, table.item_id.in_(sorted(ids)))
                                for source, ids in items.items() if ids])


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cur = dbapi_connection.cursor()
    # WAL lets `serve` read while `sync` writes; the busy timeout waits for a writer
    # instead of failing with "database is locked".
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def make_engine(url: str) -> Engine:
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    try:
        if url.startswith("sqlite"):
            engine = sa.create_engine(url, connect_args={"timeout": 30, "check_same_thread": False},
                                      json_serializer=jsonio.dumps, json_deserializer=jsonio.loads)
            sa.event.listen(engine, "connect", _sqlite_pragmas)
        else:
            engine = sa.create_engine(url, pool_pre_ping=True, json_serializer=jsonio.dumps,
                                      json_deserializer=jsonio.loads)
    except Exception as exc:
        raise StoreError(f"store url {url!r} is not usable: {exc}") from exc
    return engine


def _alembic_config(engine: Engine) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["engine"] = engine
    return cfg


# pg_advisory_xact_lock key for migrations: any fixed 64-bit number our other locks never use.
MIGRATION_LOCK_KEY = 0x7472_6B70_6D69_67  # "trkpmig"


def _revision(connection: sa.Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()


def migrate(engine: Engine) -> bool:
    """Bring the schema to the newest revision (idempotent); True when this call changed it.

    Several `serve` processes may start at once on one store, so the upgrade runs under a
    lock. PostgreSQL: a transaction-level advisory lock (`pg_advisory_xact_lock`) taken in the
    same transaction as the DDL: it ends with the commit or rollback and, unlike a session
    lock, can never be left behind on a pooled connection. The second process waits, then
    finds the schema at head. SQLite: an exclusive file lock beside the database file.
    """
    where = engine.url.render_as_string(hide_password=True)
    try:
        if engine.dialect.name == "postgresql":
            with engine.begin() as conn:
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK_KEY})
                return _upgrade_on(engine, conn)
        with _sqlite_file_lock(engine), engine.begin() as conn:
            return _upgrade_on(engine, conn)
    except sa.exc.OperationalError as exc:
        raise StoreError(f"store at {where} cannot be opened: {exc.orig}") from exc


def _upgrade_on(engine: Engine, conn: sa.Connection) -> bool:
    before = _revision(conn)
    cfg = _alembic_config(engine)
    cfg.attributes["connection"] = conn
    command.upgrade(cfg, "head")
    return _revision(conn) != before


@contextmanager
def _sqlite_file_lock(engine: Engine) -> Iterator[None]:
    database = engine.url.database
    if not database or database == ":memory:":
        yield
        return
    import fcntl

    with open(f"{database}.migrate-lock", "a+b") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


@dataclass
class Store:
    engine: Engine

    def __post_init__(self) -> None:
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """One unit of work: everything inside commits together or not at all."""
        with self._sessions() as session, session.begin():
            yield session

    def session(self) -> Session:
        return self._sessions()

    @contextmanager
    def snapshot(self) -> Iterator[sa.Connection]:
        """A read-only connection whose queries all see one committed state of the store, however
        many commits land meanwhile (a sync's pages, webhook batches). The metrics read a dozen
        tables one query each; read apart, a digest saw a board's sprints without its items and
        items without their histories. PostgreSQL: REPEATABLE READ. SQLite: an explicit BEGIN,
        since the driver starts no transaction for reads; WAL keeps its snapshot."""
        with self.engine.connect() as conn:
            if conn.dialect.name == "postgresql":
                conn = conn.execution_options(isolation_level="REPEATABLE READ")
            else:
                conn.exec_driver_sql("BEGIN")
            try:
                yield conn
            finally:
                conn.rollback()

    def dispose(self) -> None:
        self.engine.dispose()


def open_store(url: str, *, migrate_schema: bool = True) -> Store:
    """The store at `url`, its schema migrated to head (under the migration lock)."""
    if url.startswith("sqlite:///") and not url.startswith("sqlite:///:memory:"):
        parent = Path(url[len("sqlite:///"):]).expanduser().parent
        if not parent.exists():
            raise StoreError(f"store url {url!r}: folder {parent} does not exist")
    engine = make_engine(url)
    if migrate_schema and migrate(engine):
        log.info("store %s migrated to the newest schema", engine.url.render_as_string(hide_password=True))
    return Store(engine)

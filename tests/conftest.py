"""Shared test fixtures: stores on SQLite and PostgreSQL, and the Jira simulator over real HTTP.

`store` is parametrised over SQLite (a file in tmp_path) and PostgreSQL (127.0.0.1:5432, user
postgres, trust auth). PostgreSQL databases are created once per test session, named
`trackpulse_test_<random>_<n>`, emptied before each test and dropped at the end; PostgreSQL
cases skip with a clear reason when nothing answers on 5432. `store_factory` hands out further
empty stores of the same kind (a test comparing an incremental store with a fresh full sync
needs two).

`jira_sim` starts the Jira simulator (Cloud or Data Center profile) on a free loopback port;
connectors talk to it over HTTP exactly as they would to Jira.
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from trackpulse.store.db import Store, open_store

PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def _postgres_answers() -> bool:
    try:
        socket.create_connection(("127.0.0.1", 5432), timeout=1).close()
        return True
    except OSError:
        return False


class PostgresDatabases:
    """Databases created lazily for this session, reused (emptied) by every test."""

    def __init__(self) -> None:
        self.prefix = f"trackpulse_test_{uuid.uuid4().hex[:8]}"
        self.urls: list[str] = []
        self.stores: list[Store] = []

    def get(self, n: int) -> Store:
        while len(self.urls) <= n:
            name = f"{self.prefix}_{len(self.urls)}"
            admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
            with admin.connect() as c:
                c.execute(sa.text(f'CREATE DATABASE "{name}"'))
            admin.dispose()
            url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
            self.urls.append(url)
            self.stores.append(open_store(url))
        store = self.stores[n]
        # Every table the migrations made (alembic's own excepted), so new tables need no edit here.
        names = sa.inspect(store.engine).get_table_names()
        tables = ", ".join(f'"{t}"' for t in names if t != "alembic_version")
        with store.engine.begin() as c:
            c.execute(sa.text(f"TRUNCATE {tables}"))
        return store

    def drop_all(self) -> None:
        for s in self.stores:
            s.dispose()
        admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
        with admin.connect() as c:
            for url in self.urls:
                c.execute(sa.text(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def postgres_databases() -> Iterator[PostgresDatabases | None]:
    if not _postgres_answers():
        yield None
        return
    dbs = PostgresDatabases()
    yield dbs
    dbs.drop_all()


StoreFactory = Callable[[], Store]


@pytest.fixture(params=["sqlite", "postgresql"])
def store_factory(
    request: pytest.FixtureRequest, tmp_path: Path, postgres_databases: PostgresDatabases | None
) -> Iterator[StoreFactory]:
    """Each call returns another empty store of the parametrised kind."""
    made: list[Store] = []
    if request.param == "postgresql" and postgres_databases is None:
        pytest.skip("PostgreSQL does not answer at 127.0.0.1:5432 (start it to run the PostgreSQL cases)")

    def make() -> Store:
        n = len(made)
        if request.param == "sqlite":
            store = open_store(f"sqlite:///{tmp_path}/store{n}.db")
        else:
            assert postgres_databases is not None
            store = postgres_databases.get(n)
        made.append(store)
        return store

    yield make
    if request.param == "sqlite":
        for s in made:
            s.dispose()


@pytest.fixture
def store(store_factory: StoreFactory) -> Store:
    return store_factory()


# ----------------------------------------------------------------------------- Jira simulator


@dataclass
class JiraSim:
    """A running simulator: its URL, app state (stats, faults, limiter), world and profile."""

    base_url: str
    app: Any
    profile: str

    @property
    def world(self) -> Any:
        return self.app.state.world

    @property
    def stats(self) -> Any:
        return self.app.state.stats

    @property
    def faults(self) -> Any:
        return self.app.state.faults

    def source(self, name: str | None = None, **overrides: Any) -> Any:
        """A JiraSourceConfig for this simulator: Basic email:token on Cloud, Bearer PAT on DC."""
        from trackpulse.config import JiraSourceConfig

        cfg: dict[str, Any] = {
            "name": name or f"jira-{self.profile}",
            "kind": "jira",
            "url": self.base_url,
            "token": "sim-token",
            "projects": sorted(self.world.projects),
            "max_retries": 3,
            "overlap_minutes": 5,
        }
        if self.profile == "cloud":
            cfg["email"] = "sim@example.com"
        cfg.update(overrides)
        return JiraSourceConfig(**cfg)


JiraSimFactory = Callable[..., JiraSim]


@pytest.fixture
def jira_sim() -> Iterator[JiraSimFactory]:
    """`jira_sim(profile="cloud"|"dc", world=None, seed=1, latency_ms=0, rate_limit=None, **generate)`."""
    from trackpulse.simulator.jira_app import create_jira_app
    from trackpulse.simulator.jira_world import JiraWorld
    from trackpulse.simulator.runner import serve_in_thread

    with ExitStack() as stack:

        def start(
            profile: str = "cloud",
            world: Any = None,
            *,
            seed: int = 1,
            latency_ms: float = 0,
            rate_limit: Any = None,
            **generate: Any,
        ) -> JiraSim:
            w = world if world is not None else JiraWorld.generate(seed, **generate)
            app = create_jira_app(
                w,
                profile=profile,
                latency_ms=latency_ms,  # type: ignore[arg-type]
                rate_limit=rate_limit,
            )
            url = stack.enter_context(serve_in_thread(app))
            return JiraSim(url, app, profile)

        yield start


# ----------------------------------------------------------------------------- store contents


def store_rows(
    store: Store, source: str, *, with_raw: bool = True, exclude_items: set[str] = frozenset()
) -> dict[str, list[tuple[Any, ...]]]:  # type: ignore[assignment]
    """A source's synced data as comparable rows: live items and their live children, the
    catalogue; bookkeeping (cursors, run state, tombstone times) left out. `exclude_items`
    leaves some items and their children out."""
    from trackpulse.store.models import (
        Board,
        Comment,
        EstimateChange,
        History,
        Item,
        Project,
        Sprint,
        SprintChange,
        StatusDef,
        Transition,
        Worklog,
    )

    out: dict[str, list[tuple[Any, ...]]] = {}
    with store.session() as s:
        live = set(
            s.execute(sa.select(Item.item_id).where(Item.source == source, Item.deleted.is_(False))).scalars()
        )
        live -= set(exclude_items)

        def rows(
            model: Any, *, skip: tuple[str, ...] = (), live_only: bool = False, by_item: bool = False
        ) -> list[tuple[Any, ...]]:
            cols = [c for c in model.__table__.columns if c.name not in ("source", *skip)]
            q = sa.select(*cols).where(model.source == source)
            if live_only:
                q = q.where(model.deleted.is_(False))
            result = []
            for r in s.execute(q).all():
                if (by_item or model is Item) and r._mapping["item_id"] not in live:
                    continue
                result.append(tuple(_norm(v) for v in r))
            return sorted(result, key=repr)

        raw = () if with_raw else ("raw",)
        out["item"] = rows(Item, skip=("deleted_at", *raw), live_only=True)
        out["history"] = rows(History, skip=raw, by_item=True)
        out["transition"] = rows(Transition, by_item=True)
        out["sprint_change"] = rows(SprintChange, by_item=True)
        out["estimate_change"] = rows(EstimateChange, by_item=True)
        out["worklog"] = rows(Worklog, live_only=True, by_item=True)
        out["comment"] = rows(Comment, live_only=True, by_item=True)
        out["sprint"] = rows(Sprint)
        out["board"] = rows(Board)
        out["project"] = rows(Project)
        out["status_def"] = rows(StatusDef)
    return out


def _norm(v: Any) -> Any:
    import json as _json

    if isinstance(v, (dict, list)):
        return _json.dumps(v, sort_keys=True, ensure_ascii=False)
    return v


def assert_same_rows(a: dict[str, list[tuple[Any, ...]]], b: dict[str, list[tuple[Any, ...]]]) -> None:
    for table, rows in a.items():
        sa_, sb = set(rows), set(b[table])
        assert sa_ == sb, (
            f"{table}: {len(sa_ - sb)} rows only in the first store, {len(sb - sa_)} only in the "
            f"second; e.g. {sorted(sa_ - sb, key=repr)[:2]} vs {sorted(sb - sa_, key=repr)[:2]}"
        )

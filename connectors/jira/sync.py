"""The Jira connector: what a sync fetches, in which order, and how it commits.

A run (`JiraConnector.sync`):
1. `serverInfo`: Cloud or Data Center, and the tracker's clock at the START of the run (the
   next watermark; the host's clock is never used for cursors).
2. Catalogue: fields (story points and Sprint field ids), statuses with categories, projects,
   boards, their estimation settings and sprints. The discovered mapping is persisted as the
   cursor `meta.fields` so webhooks and `rederive` use what the sync used; when the
   derivation-relevant part changed, stored rows are re-derived from their raw JSON.
3. Issues in pages ordered by id (`ORDER BY id ASC`, continuing with `id > last`: stable while
   issues change under us, no 10,000-result window on Data Center). Each page, with its
   histories, worklogs and comments, commits together with the progress point `issues.progress`
   in ONE transaction; a killed run resumes after the last committed page.
4. Cloud incremental runs: the worklog feeds (`worklog/updated` + `worklog/list`,
   `worklog/deleted`), each page committed with its own cursor.
5. Full runs: issues the tracker no longer lists are tombstoned (`reconcile_deleted_items`).
6. Only now does the watermark (`issues`) move to the run's start, and the progress point go.

Requests per issue (see docs/architecture.md): Cloud ≈ 1/5000 (ids page) + 1/100 (bulkfetch)
+ 1/1000 (changelog bulkfetch) + per-issue calls only for issues with >20 worklogs or comments;
Data Center ≈ 1/page_size (search with the changelog expanded) + the same per-issue extras.
"""

from __future__ import annotations

import email.utils
import hashlib
import json
import math
import queue
import threading
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Self

import httpx
import sqlalchemy as sa
from sqlmodel import col
from trackpulse.connectors.jira import mapping as jm
from trackpulse.connectors.jira.client import (
    BULKFETCH_MAX,
    CHANGELOG_BULK_MAX,
    WORKLOG_LIST_MAX,
    JiraClient,
    auth_header,
    rate_window_reset,
)
from trackpulse.connectors.jira.rederive import META_FIELDS, rederive_in_session

from trackpulse.config import JiraSourceConfig
from trackpulse.errors import RequestFailed
from trackpulse.gcpolicy import sparse_collections
from trackpulse.http import TrackerHttp
from trackpulse.records import CommentRecord, ItemBundle, WorklogRecord
from trackpulse.store.db import Store
from trackpulse.store.models import Item, SourceState, Sprint
from trackpulse.store.writer import (
    apply_bundles,
    clear_cursor,
    delete_worklogs,
    get_cursor,
    reconcile_deleted_items,
    reconcile_versions,
    record_run,
    set_cursor,
    upsert,
    upsert_boards,
    upsert_projects,
    upsert_sprints,
    upsert_statuses,
    upsert_versions,
)
from trackpulse.sync_api import CheckResult, NoProgress, Progress, SyncResult, WebhookResult

# Cursor entities (sync_cursor.entity) this connector owns.
WATERMARK = "issues"  # {"at": server ms at the start of the last complete run, "scope": hash}
PROGRESS = "issues.progress"  # the run in flight: where it resumes after a crash
WORKLOGS_UPDATED = "worklogs.updated"  # Cloud worklog feeds: the `until` of the last page applied
WORKLOGS_DELETED = "worklogs.deleted"
# META_FIELDS ("meta.fields", from rederive.py): the JiraMapping in force (webhooks, rederive).
META_CATALOGUE = "meta.catalogue"  # boards and when fields/statuses/boards were last read
CATALOGUE_MAX_AGE_MS = 24 * 3600 * 1000

# What we ask for, never `*all`: the mapped fields plus what a reader of raw JSON expects.
BASE_FIELDS = (
    "summary",
    "status",
    "issuetype",
    "priority",
    "project",
    "created",
    "updated",
    "resolutiondate",
    "reporter",
    "assignee",
    "parent",
    "labels",
    "fixVersions",
)
CHILD_FIELDS = ("worklog", "comment")
# Data Center: a fresh run is read in parallel id slices only when each slice gets at least this
# many pages; a slice costs one partial last page, so slicing adds at most a quarter more searches.
DC_SLICE_MIN_PAGES = 4


@dataclass
class IdSlice:
    """One contiguous id range `lo < id <= hi` of a Data Center run, read page after page beside
    the others (`hi` None: no upper bound, so issues created during the run are read too).
    `last` is where its committed pages end; `done` once its last page has committed."""

    lo: int
    hi: int | None
    last: int
    done: bool = False

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> IdSlice:
        hi = d.get("hi")
        return cls(lo=int(d["lo"]), hi=None if hi is None else int(hi), last=int(d["last"]),
                   done=bool(d.get("done")))


@dataclass
class RunPlan:
    """The run in flight, persisted with every page as `issues.progress`."""

    full: bool
    since_ms: int | None  # JQL lower bound on `updated` (watermark minus overlap); None = everything
    last_id: int  # every issue up to this id is committed (pages read in id order)
    started_ms: int  # tracker clock at the start: the watermark once the run completes
    scope: str
    # Data Center runs read in parallel: the id ranges above `last_id`, each with its own
    # progress point. None: one sequence of pages continuing after `last_id`.
    slices: list[IdSlice] | None = None

    def to_json(self) -> str:
        d = asdict(self)
        if self.slices is None:
            del d["slices"]  # the sequential plan keeps its original shape
        return json.dumps(d, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> RunPlan:
        d = json.loads(text)
        slices = d.get("slices")
        return cls(
            full=bool(d["full"]),
            since_ms=d.get("since_ms"),
            last_id=int(d.get("last_id") or 0),
            started_ms=int(d["started_ms"]),
            scope=str(d.get("scope") or ""),
            slices=None if slices is None else [IdSlice.from_json(x) for x in slices],
        )

    def committed_prefix(self) -> int:
        """The id up to which everything is committed: `last_id`, extended over the slices that
        are done, up to the first one still being read."""
        end = self.last_id
        for sl in self.slices or ():
            if not sl.done:
                return max(end, sl.last)
            if sl.hi is None:
                return max(end, sl.last)
            end = max(end, sl.hi)
        return end


@dataclass
class _SlicePage:
    """A page one slice reader fetched, queued for the committing thread."""

    slice: int
    last: int  # the slice's progress point once this page commits
    done: bool  # the slice's last page
    bundles: list[ItemBundle]


def _offer(q: queue.Queue[Any], item: Any, stop: threading.Event) -> bool:
    """Put `item` on the bounded queue unless the run stops first (then the item is dropped)."""
    while not stop.is_set():
        try:
            q.put(item, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False


def _never(_iid: str) -> bool:
    return False


def _embedded_histories(issues: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]] | None]:
    """Each issue's embedded changelog, or None where the page truncated it."""
    out: dict[str, list[dict[str, Any]] | None] = {}
    for issue in issues:
        hist, complete = jm.changelog_page(issue)
        out[str(issue["id"])] = hist if complete else None
    return out


def _dc_last_page(page: Mapping[str, Any], issues: list[dict[str, Any]], asked: int) -> bool:
    """`total` counts what matched this query; the server may have clamped maxResults, so compare
    with what it says it used, never with what we asked for."""
    total = page.get("total")
    if total is not None:
        return int(total) <= len(issues)
    return len(issues) < int(page.get("maxResults") or asked)


def _chunks(seq: Sequence[Any], n: int) -> Iterable[Sequence[Any]]:
    for i in range(0, len(seq), n):
        yield seq[i : i + n]


def scope_jql(cfg: JiraSourceConfig) -> str:
    """The configured scope as a bounded JQL condition (without ORDER BY)."""
    if cfg.jql:
        text = cfg.jql
        low = text.lower()
        cut = low.rfind("order by")
        if cut >= 0:
            text = text[:cut]
        return f"({text.strip()})"
    keys = ", ".join(f'"{k}"' for k in cfg.projects)
    return f"project in ({keys})"


# What a run reads of each issue. Raising it makes the next run full (the watermark's scope no longer
# matches): 2 added fixVersions, the Epic Link field and the assignee changelog (issue 9), which
# issues synced before never brought.
FIELD_SET_VERSION = 2


def _scope_hash(cfg: JiraSourceConfig) -> str:
    return hashlib.sha256(f"{scope_jql(cfg)}|fields {FIELD_SET_VERSION}".encode()).hexdigest()[:12]


def page_jql(
    scope: str, since_ms: int | None, after_id: int, upto_id: int | None = None, *, descending: bool = False
) -> str:
    parts = [scope]
    if since_ms is not None:
        # Epoch milliseconds: no dependence on the API user's profile time zone.
        parts.append(f"updated >= {since_ms}")
    if after_id:
        parts.append(f"id > {after_id}")
    if upto_id is not None:
        parts.append(f"id <= {upto_id}")
    return " AND ".join(parts) + (" ORDER BY id DESC" if descending else " ORDER BY id ASC")


def split_ids(after_id: int, max_id: int, n: int) -> list[IdSlice]:
    """`n` contiguous slices of equal id width covering `after_id < id <= max_id`; the last one
    is open above (issues created while the run reads)."""
    n = max(1, min(n, max_id - after_id))
    bounds = [after_id + (max_id - after_id) * k // n for k in range(n + 1)]
    slices = [IdSlice(lo=bounds[k], hi=bounds[k + 1], last=bounds[k]) for k in range(n)]
    slices[-1].hi = None
    return slices


def _ms(dt: datetime) -> int:
    return int(dt.timestamp() * 1000)


def open_http(cfg: JiraSourceConfig, client: httpx.Client | None = None) -> TrackerHttp:
    """The source's `TrackerHttp`. A given client keeps its transport; we add our auth header
    unless it carries one already."""
    auth = auth_header(cfg.email, cfg.token.get_secret_value())
    if client is None:
        client = httpx.Client(
            base_url=cfg.url.rstrip("/"),
            timeout=cfg.timeout_seconds,
            headers={"Authorization": auth, "Accept": "application/json", "User-Agent": "trackpulse"},
            limits=httpx.Limits(
                max_connections=cfg.concurrency + 2, max_keepalive_connections=cfg.concurrency + 2
            ),
        )
    elif "Authorization" not in client.headers:
        client.headers["Authorization"] = auth
    return TrackerHttp(
        cfg.name,
        client,
        max_retries=cfg.max_retries,
        concurrency=cfg.concurrency,
        requests_per_second=cfg.requests_per_second,
        rate_window_reset=rate_window_reset,
    )


@dataclass
class Catalogue:
    """What a run knows of the tracker's configuration: boards and the derived mapping, plus the
    statuses and projects to store when it was just fetched (empty when it came from the cache)."""

    boards: dict[str, dict[str, Any]]
    mapping: jm.JiraMapping
    statuses: list[Any] = field(default_factory=list)
    projects: list[Any] = field(default_factory=list)
    from_cache: bool = False


class JiraConnector:
    kind = "jira"

    def __init__(self, cfg: JiraSourceConfig, client: httpx.Client | None = None) -> None:
        self.cfg = cfg
        self.source = cfg.name
        self._owns_client = client is None  # a client handed in stays the caller's to close
        self.http = open_http(cfg, client)
        self.api = JiraClient(self.http)
        self.mapping = jm.JiraMapping(defect_types=frozenset(cfg.defect_types))
        self._unknown_statuses: set[str] = set()
        # Worklogs written this run from complete per-issue lists (id -> updated ms): the Cloud
        # worklog feed need not fetch them again.
        self._seen_worklogs: dict[str, int] = {}

    def close(self) -> None:
        """Close the HTTP client this connector built (its keep-alive connections)."""
        if self._owns_client:
            self.http.client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def apply_webhook(self, store: Store, body: dict[str, Any], headers: Mapping[str, str]) -> WebhookResult:
        from trackpulse.connectors.jira.webhook import apply_webhook

        return apply_webhook(store, self.cfg, body, headers)

    # ------------------------------------------------------------------ check
    def _detect(self) -> tuple[dict[str, Any], int]:
        """serverInfo → (body, tracker clock in ms); sets Cloud/DC on the client."""
        resp = self.http.request("GET", "/rest/api/2/serverInfo")
        try:
            info = dict(resp.json())
        except ValueError as exc:
            raise RequestFailed(
                self.source, "serverInfo is not JSON: is this a Jira site?", url=str(resp.request.url)
            ) from exc
        self.api.cloud = str(info.get("deploymentType", "")).lower() == "cloud"
        now: datetime | None = None
        if info.get("serverTime"):
            now = jm.parse_time(info["serverTime"])
        elif resp.headers.get("Date"):
            now = email.utils.parsedate_to_datetime(resp.headers["Date"]).astimezone(UTC)
        if now is None:
            raise RequestFailed(
                self.source,
                "serverInfo gave no serverTime and no Date header; cannot take the tracker's clock",
                url=str(resp.request.url),
            )
        return info, _ms(now)

    @property
    def deployment(self) -> str:
        return "Cloud" if self.api.cloud else "Server"

    def check(self) -> CheckResult:
        info, _ = self._detect()
        me = self.api.myself()
        details = [f"Jira {self.deployment} {info.get('version', '')}".strip(), f"url {self.cfg.url}"]
        scope = scope_jql(self.cfg)
        if self.api.cloud:
            ids, _tok = self.api.search_ids(scope + " ORDER BY id ASC", max_results=1)
            details.append(f"search ok ({'issues visible' if ids else 'no issues visible'} in scope)")
        else:
            page = self.api.search_page(scope, ["id"], max_results=1)
            details.append(f"search ok ({page.get('total', 0)} issues in scope)")
        user = me.get("displayName") or jm.user_id(me)
        return CheckResult(
            source=self.source, ok=True, deployment=self.deployment, user=user, details=details
        )

    # ------------------------------------------------------------------ catalogue
    def _catalogue(self, store: Store, progress: Progress, *, full: bool, now_ms: int) -> jm.JiraMapping:
        """Fields, statuses, projects, boards and their estimation settings (cached for a day
        between full runs: they change rarely and cost a request each), then every scrum board's
        sprints (each run: sprint states drive velocity). Persist them and the mapping.

        Three steps: the cache or the tracker (HTTP), the mapping derived from what came back
        (pure: `mapping.discover_mapping`), and one transaction that stores it all."""
        cached = None if full else self._cached_catalogue(store, now_ms)
        with ThreadPoolExecutor(max_workers=self.cfg.concurrency) as pool:
            cat = cached or self._fetch_catalogue(pool)
            sprints_f = self._submit_sprints(pool, cat.boards)
            progress.begin(self.source, "sprints", total=len(sprints_f))
            sprints = []
            for bid, f in sprints_f.items():
                sprints += [jm.map_sprint(sp_, bid) for sp_ in f.result()]
                progress.advance(self.source, "sprints")
            progress.end(self.source, "sprints")
        self._save_catalogue(store, cat, sprints, now_ms)
        return cat.mapping

    def _cached_catalogue(self, store: Store, now_ms: int) -> Catalogue | None:
        """The catalogue of an earlier run, when it is fresh and made for this configuration."""
        with store.transaction() as s:
            cached = get_cursor(s, self.source, META_CATALOGUE)
            meta = get_cursor(s, self.source, META_FIELDS)
        if cached is None or meta is None:
            return None
        cat = json.loads(cached)
        if cat.get("config") != self._config_key() or not 0 <= now_ms - int(cat.get("at", 0)) < CATALOGUE_MAX_AGE_MS:
            return None
        return Catalogue(boards={str(b["id"]): b for b in cat["boards"]}, mapping=jm.JiraMapping.from_json(meta),
                         from_cache=True)

    def _fetch_catalogue(self, pool: ThreadPoolExecutor) -> Catalogue:
        """Ask the tracker: every request in parallel on `pool`."""
        f_fields = pool.submit(self.api.fields)
        f_status = pool.submit(self.api.statuses)
        f_projects = [pool.submit(self.api.project, k) for k in self.cfg.projects]
        scopes: list[str | None] = list(self.cfg.projects) or [None]
        board_lists = [pool.submit(self._board_list, k) for k in scopes]
        boards: dict[str, dict[str, Any]] = {}
        for f in board_lists:
            for b in f.result():
                boards[str(b["id"])] = {k: b[k] for k in ("id", "name", "type", "location") if k in b}
        configs = {bid: pool.submit(self.api.board_configuration, bid) for bid in boards}
        statuses = [jm.map_status(st) for st in f_status.result()]
        projects = [jm.map_project(p) for f in f_projects if (p := f.result()) is not None]
        estimation = []
        for bid in sorted(configs, key=int):
            conf = configs[bid].result() or {}
            fid = ((conf.get("estimation") or {}).get("field") or {}).get("fieldId")
            if fid:
                estimation.append(fid)
        mapping = jm.discover_mapping(self.deployment, f_fields.result(), statuses, estimation,
                                      story_points_field=self.cfg.story_points_field,
                                      defect_types=self.cfg.defect_types)
        return Catalogue(boards=boards, mapping=mapping, statuses=statuses, projects=projects)

    def _save_catalogue(self, store: Store, cat: Catalogue, sprints: list[Any], now_ms: int) -> None:
        """One transaction: the catalogue (unless it came from the cache), the sprints, the mapping;
        a changed mapping re-derives the stored rows from their raw JSON."""
        with store.transaction() as s:
            if not cat.from_cache:
                upsert_statuses(s, self.source, cat.statuses)
                upsert_projects(s, self.source, cat.projects)
                upsert_boards(s, self.source, [jm.map_board(b) for b in cat.boards.values()])
                set_cursor(
                    s,
                    self.source,
                    META_CATALOGUE,
                    json.dumps({"at": now_ms, "config": self._config_key(), "boards": list(cat.boards.values())}),
                )
            upsert_sprints(s, self.source, sprints)
            set_cursor(s, self.source, META_FIELDS, cat.mapping.to_json())
            state = s.get(SourceState, self.source)
            new_hash = cat.mapping.derivation_hash()
            if state is not None and state.mapping_hash and state.mapping_hash != new_hash:
                # The story-points field, the Sprint field or the defect types changed: rebuild
                # derived columns and rows from the stored raw JSON, no download needed.
                rederive_in_session(s, self.source, cat.mapping)
            record_run(
                s,
                self.source,
                self.kind,
                mapping_hash=new_hash,
                deployment=self.deployment,
                base_url=self.cfg.url,
            )

    def _board_list(self, project_key: str | None) -> list[dict[str, Any]]:
        return list(self.api.boards(project_key))

    def _submit_sprints(
        self,
        pool: ThreadPoolExecutor,
        boards: dict[str, dict[str, Any]],
    ) -> dict[str, Future[list[dict[str, Any]]]]:
        return {
            bid: pool.submit(self.api.board_sprints, bid)
            for bid, b in sorted(boards.items(), key=lambda kv: int(kv[0]))
            if b.get("type", "scrum") == "scrum"
        }

    def _config_key(self) -> str:
        """The configuration the cached catalogue was discovered under."""
        key = json.dumps(
            [
                self.cfg.projects,
                self.cfg.jql,
                self.cfg.story_points_field,
                sorted(self.cfg.defect_types),
                self.deployment,
            ]
        )
        return hashlib.sha256(key.encode()).hexdigest()[:12]

    def _refresh_statuses(self, store: Store) -> None:
        """A status id the catalogue did not know appeared: the workflow changed, re-read it."""
        statuses = [jm.map_status(st) for st in self.api.statuses()]
        self.mapping = replace(
            self.mapping, statuses={st.status_id: (st.name, st.category) for st in statuses}
        )
        with store.transaction() as s:
            upsert_statuses(s, self.source, statuses)
            set_cursor(s, self.source, META_FIELDS, self.mapping.to_json())

    # ------------------------------------------------------------------ sync
    def sync(self, store: Store, *, full: bool = False, progress: Progress | None = None) -> SyncResult:
        with sparse_collections():  # a sync allocates millions of acyclic objects (trackpulse.gcpolicy)
            return self._sync(store, full=full, progress=progress)

    def _sync(self, store: Store, *, full: bool, progress: Progress | None) -> SyncResult:
        progress = progress or NoProgress()
        result = SyncResult(source=self.source, kind=self.kind, full=full)
        _, now_ms = self._detect()
        self.mapping = self._catalogue(store, progress, full=full, now_ms=now_ms)
        plan = self._plan(store, full, now_ms)
        result.full = plan.full
        if plan.last_id:
            kind = "full" if plan.full else "incremental"
            if plan.slices is not None:
                left = sum(1 for sl in plan.slices if not sl.done)
                result.notes.append(f"resumed an interrupted {kind} run: {left} of {len(plan.slices)} id slices left")
            else:
                result.notes.append(f"resumed an interrupted {kind} run after issue id {plan.last_id}")
        alive: set[str] | None = set() if plan.full and not plan.last_id else None

        progress.begin(self.source, "issues")
        progress.begin(self.source, "histories")
        progress.begin(self.source, "worklogs")
        if self.api.cloud:
            self._sync_issues_cloud(store, plan, result, progress, alive)
        else:
            self._sync_issues_dc(store, plan, result, progress, alive)
        progress.end(self.source, "issues")
        progress.end(self.source, "histories")

        if self.api.cloud and not plan.full:
            self._sync_worklog_feeds(store, plan, result, progress)
        progress.end(self.source, "worklogs")
        if self._unknown_statuses:
            result.notes.append(
                f"statuses {sorted(self._unknown_statuses)} were not in the catalogue: re-read it"
            )
            self._refresh_statuses(store)

        self._sync_versions(store, result)

        if plan.full and alive is None:
            # Resumed full run: pages committed before the crash are not in memory; list ids afresh.
            alive = self._all_ids()
        self._finish(store, plan, result, alive, now_ms)
        return result

    # ------------------------------------------------------------------ versions (METRICS.md §13)
    def _version_projects(self, store: Store) -> list[str]:
        """The configured projects, or (a JQL scope) the projects of the stored issues."""
        if self.cfg.projects:
            return list(self.cfg.projects)
        with store.transaction() as s:
            return sorted(s.execute(sa.select(col(Item.project)).where(
                col(Item.source) == self.source, col(Item.deleted).is_(False)).distinct()).scalars())

    def _sync_versions(self, store: Store, result: SyncResult) -> None:
        """Every project's versions, each run: one unpaged request per project (versions are few,
        and a release flips `released` without touching any issue, so no issue cursor sees it).
        A project's list is complete, so versions it no longer lists are marked deleted."""
        keys = self._version_projects(store)
        with ThreadPoolExecutor(max_workers=self.cfg.concurrency) as pool:
            lists = {k: pool.submit(self.api.project_versions, k) for k in keys}
            answers = {k: f.result() for k, f in lists.items()}
        with store.transaction() as s:
            for key, versions in answers.items():
                if versions is None:
                    continue
                records = [jm.map_version(v, key) for v in versions]
                upsert_versions(s, self.source, records)
                reconcile_versions(s, self.source, key, {v.version_id for v in records})
        result.notes.extend(f"project {k} not found: no versions read" for k, v in answers.items() if v is None)

    def _plan(self, store: Store, full: bool, now_ms: int) -> RunPlan:
        scope = _scope_hash(self.cfg)
        with store.transaction() as s:
            pending = get_cursor(s, self.source, PROGRESS)
            mark = get_cursor(s, self.source, WATERMARK)
        if pending:
            plan = RunPlan.from_json(pending)
            # Resume unless the user now asks for more (full over incremental) or changed scope.
            if plan.scope == scope and (plan.full or not full):
                return plan
        watermark: int | None = None
        if mark:
            d = json.loads(mark)
            if d.get("scope") == scope:
                watermark = int(d["at"])
        if full or watermark is None:
            return RunPlan(full=True, since_ms=None, last_id=0, started_ms=now_ms, scope=scope)
        overlap = int(self.cfg.overlap_minutes * 60_000)
        return RunPlan(full=False, since_ms=watermark - overlap, last_id=0, started_ms=now_ms, scope=scope)

    def _fields(self) -> list[str]:
        m = self.mapping
        extra = [f for f in (*m.story_points_candidates, m.sprint_field, m.epic_link_field) if f]
        return list(dict.fromkeys([*BASE_FIELDS, *CHILD_FIELDS, *extra]))

    def _changelog_fields(self) -> list[str]:
        m = self.mapping
        # bulkfetch takes at most 10 fieldIds: status, Sprint and assignee come before the candidates.
        return list(dict.fromkeys(
            f for f in ("status", m.sprint_field, "assignee", *m.story_points_candidates) if f))[:10]

    # ------------------------------------------------------------------ Cloud
    def _sync_issues_cloud(
        self, store: Store, plan: RunPlan, result: SyncResult, progress: Progress, alive: set[str] | None
    ) -> None:
        bulk = min(BULKFETCH_MAX, self.cfg.page_size)
        unit = min(CHANGELOG_BULK_MAX, bulk * 10)  # issues committed together
        scope = scope_jql(self.cfg)
        with ThreadPoolExecutor(max_workers=self.cfg.concurrency) as pool:
            while True:
                jql = page_jql(scope, plan.since_ms, plan.last_id)
                token: str | None = None
                page_full = False
                while True:
                    ids, token = self.api.search_ids(jql, token)
                    page_full = bool(token) or len(ids) >= 5000
                    for chunk in _chunks(ids, unit):
                        bundles = self._fetch_cloud_chunk(pool, store, list(chunk), bulk, plan)
                        plan.last_id = max(plan.last_id, int(chunk[-1]))
                        self._commit(store, plan, bundles, result, progress, alive)
                    if not token:
                        break
                # A sweep can end early (a field report of nextPageToken vanishing): a full last
                # page means there may be more after it, so ask again from the last id.
                if not page_full:
                    return

    def _fetch_cloud_chunk(
        self, pool: ThreadPoolExecutor, store: Store, ids: list[str], bulk: int, plan: RunPlan
    ) -> list[ItemBundle]:
        fields = self._fields()
        issue_f = [pool.submit(self.api.bulkfetch_issues, list(sub), fields) for sub in _chunks(ids, bulk)]
        cl_f = pool.submit(self.api.changelog_bulkfetch, ids, self._changelog_fields())
        issues = [i for f in issue_f for i in f.result()]
        histories = cl_f.result()
        # On incremental runs the worklog feed brings changed worklogs of issues we already hold;
        # only issues new to the store need their long worklog lists paged.
        known = set() if plan.full else self._known_ids(store, [str(i["id"]) for i in issues])
        return self._bundles(pool, issues, histories, feed_covers_worklogs=lambda iid: iid in known)

    # ------------------------------------------------------------------ Data Center
    def _sync_issues_dc(
        self, store: Store, plan: RunPlan, result: SyncResult, progress: Progress, alive: set[str] | None
    ) -> None:
        """Search pages with the changelog expanded, in id order. A fresh run whose first page
        shows many pages to come reads the rest in parallel id slices (`_read_slices`); small
        scopes and runs resumed from a sequential plan read one page after another."""
        scope = scope_jql(self.cfg)
        with ThreadPoolExecutor(max_workers=self.cfg.concurrency) as pool:
            if plan.slices is not None:
                self._read_slices(store, plan, pool, result, progress, alive, head=None)
                return
            fresh = plan.last_id == 0
            while True:
                page = self._dc_page(page_jql(scope, plan.since_ms, plan.last_id))
                issues = list(page.get("issues") or [])
                if not issues:
                    return
                histories = _embedded_histories(issues)
                extras = self._submit_extras(pool, issues, histories, feed_covers_worklogs=_never)
                done = _dc_last_page(page, issues, self.cfg.page_size)
                if fresh and not done and (slices := self._plan_slices(scope, plan, page, issues)):
                    plan.last_id = max(int(i["id"]) for i in issues)
                    plan.slices = slices
                    self._read_slices(store, plan, pool, result, progress, alive,
                                      head=(issues, histories, extras))
                    return
                fresh = False
                bundles = self._map_bundles(issues, histories, extras)
                plan.last_id = max(plan.last_id, max(int(i["id"]) for i in issues))
                self._commit(store, plan, bundles, result, progress, alive)
                if done:
                    return

    def _dc_page(self, jql: str) -> dict[str, Any]:
        return self.api.search_page(jql, self._fields(), max_results=self.cfg.page_size, expand=["changelog"])

    def _plan_slices(
        self, scope: str, plan: RunPlan, page: Mapping[str, Any], issues: list[dict[str, Any]]
    ) -> list[IdSlice] | None:
        """Id slices for what follows the first page, or None when parallel reading would not pay:
        each slice must hold at least `DC_SLICE_MIN_PAGES` pages of the size the server says it
        used (it clamps `maxResults`), so slicing adds at most one partial page per slice."""
        total = page.get("total")
        per_page = int(page.get("maxResults") or 0) or len(issues)
        if total is None or per_page <= 0:
            return None
        pages_left = math.ceil(max(0, int(total) - len(issues)) / per_page)
        n = min(self.cfg.concurrency, pages_left // DC_SLICE_MIN_PAGES)
        if n < 2:
            return None
        top = self.api.search_page(page_jql(scope, plan.since_ms, 0, descending=True), ["id"], max_results=1)
        top_ids = [int(i["id"]) for i in top.get("issues") or []]
        after = max(int(i["id"]) for i in issues)
        if not top_ids or top_ids[0] <= after:
            return None
        return split_ids(after, top_ids[0], n)

    def _read_slices(
        self,
        store: Store,
        plan: RunPlan,
        pool: ThreadPoolExecutor,
        result: SyncResult,
        progress: Progress,
        alive: set[str] | None,
        head: tuple[list[dict[str, Any]], dict[str, Any], dict[tuple[str, str], Future[Any]]] | None,
    ) -> None:
        """Read the open slices of `plan` in parallel and commit their pages here, one at a time.

        One reader thread per slice fetches its pages in order, requests their per-issue extras
        on `pool`, maps them and queues them; this thread commits each page with the plan, so
        every slice's progress point only moves over committed pages. While a page is written,
        the readers fetch and map the next ones; the queue bounds how far they run ahead.
        A reader's failure stops the others and is raised here, after what was committed."""
        assert plan.slices is not None
        scope = scope_jql(self.cfg)
        open_slices = [k for k, sl in enumerate(plan.slices) if not sl.done]
        pages: queue.Queue[_SlicePage | BaseException] = queue.Queue(maxsize=max(2, len(open_slices)))
        stop = threading.Event()

        def read(k: int) -> None:
            assert plan.slices is not None
            sl = plan.slices[k]
            last = sl.last
            try:
                while not stop.is_set():
                    page = self._dc_page(page_jql(scope, plan.since_ms, last, sl.hi))
                    issues = list(page.get("issues") or [])
                    done = not issues or _dc_last_page(page, issues, self.cfg.page_size)
                    histories = _embedded_histories(issues)
                    extras = self._submit_extras(pool, issues, histories, feed_covers_worklogs=_never)
                    if issues:
                        last = max(int(i["id"]) for i in issues)
                    bundles = self._map_bundles(issues, histories, extras)
                    if not _offer(pages, _SlicePage(k, last, done, bundles), stop) or done:
                        return
            except BaseException as exc:  # noqa: BLE001 - handed to the committing thread
                _offer(pages, exc, stop)

        readers = [threading.Thread(target=read, args=(k,), daemon=True, name=f"{self.source}-slice-{k}")
                   for k in open_slices]
        for t in readers:
            t.start()
        try:
            if head is not None:
                issues, histories, extras = head
                self._commit(store, plan, self._map_bundles(issues, histories, extras), result, progress, alive)
            pending = set(open_slices)
            while pending:
                got = pages.get()
                if isinstance(got, BaseException):
                    raise got
                sl = plan.slices[got.slice]
                sl.last = got.last
                sl.done = got.done
                plan.last_id = plan.committed_prefix()
                self._commit(store, plan, got.bundles, result, progress, alive)
                if got.done:
                    pending.discard(got.slice)
        except BaseException:
            # Requests queued for pages that will not commit are not worth sending.
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        finally:
            stop.set()
            for t in readers:
                t.join()

    # ------------------------------------------------------------------ shared
    def _bundles(
        self,
        pool: ThreadPoolExecutor,
        issues: list[dict[str, Any]],
        histories: dict[str, list[dict[str, Any]]] | dict[str, list[dict[str, Any]] | None],
        feed_covers_worklogs: Any,
    ) -> list[ItemBundle]:
        """Map a page of issues; fetch what the page left incomplete (long changelogs on DC,
        >20 worklogs, long comment lists) in parallel."""
        extras = self._submit_extras(pool, issues, histories, feed_covers_worklogs)
        return self._map_bundles(issues, histories, extras)

    def _submit_extras(
        self,
        pool: ThreadPoolExecutor,
        issues: list[dict[str, Any]],
        histories: Mapping[str, list[dict[str, Any]] | None],
        feed_covers_worklogs: Any,
    ) -> dict[tuple[str, str], Future[list[dict[str, Any]]]]:
        """Request on `pool` only what a page left incomplete: a list whose inline page holds its
        whole `total` costs nothing more."""
        extras: dict[tuple[str, str], Future[list[dict[str, Any]]]] = {}
        for issue in issues:
            iid = str(issue["id"])
            if histories.get(iid) is None:
                fetch = self.api.issue_changelog if self.api.cloud else self.api.issue_with_changelog
                extras[(iid, "changelog")] = pool.submit(fetch, iid)
            _, wl_complete = jm.inline_page(issue, "worklog", "worklogs")
            if not wl_complete and not feed_covers_worklogs(iid):
                extras[(iid, "worklog")] = pool.submit(self.api.issue_worklogs, iid)
            _, cm_complete = jm.inline_page(issue, "comment", "comments")
            if not cm_complete:
                extras[(iid, "comment")] = pool.submit(self.api.issue_comments, iid)
        return extras

    def _map_bundles(
        self,
        issues: list[dict[str, Any]],
        histories: Mapping[str, list[dict[str, Any]] | None],
        extras: dict[tuple[str, str], Future[list[dict[str, Any]]]],
    ) -> list[ItemBundle]:
        """A page's issues as bundles, completed by the extras requested for them."""
        bundles = []
        for issue in issues:
            iid = str(issue["id"])
            item = jm.map_issue(self.source, issue, self.mapping)
            raw_hist = (
                extras[(iid, "changelog")].result()
                if (iid, "changelog") in extras
                else histories.get(iid) or []
            )
            hist = [jm.map_history(iid, h, self.mapping) for h in raw_hist]
            wl_inline, wl_complete = jm.inline_page(issue, "worklog", "worklogs")
            worklogs: list[WorklogRecord] | None
            partial_wl: list[WorklogRecord] = []
            if (iid, "worklog") in extras:
                worklogs = [jm.map_worklog(w, iid) for w in extras[(iid, "worklog")].result()]
            elif wl_complete:
                worklogs = [jm.map_worklog(w, iid) for w in wl_inline]
            else:
                worklogs, partial_wl = None, [jm.map_worklog(w, iid) for w in wl_inline]
            cm_inline, _ = jm.inline_page(issue, "comment", "comments")
            raw_cm = extras[(iid, "comment")].result() if (iid, "comment") in extras else cm_inline
            comments: list[CommentRecord] = [jm.map_comment(c, iid) for c in raw_cm]
            bundles.append(
                ItemBundle(
                    item=item,
                    item_id=iid,
                    histories=hist,
                    worklogs=worklogs,
                    comments=comments,
                    partial_worklogs=partial_wl,
                )
            )
        return bundles

    def _known_ids(self, store: Store, ids: list[str]) -> set[str]:
        if not ids:
            return set()
        with store.transaction() as s:
            rows = s.execute(
                sa.select(col(Item.item_id)).where(col(Item.source) == self.source, col(Item.item_id).in_(ids))
            ).scalars()
            return set(rows)

    def _commit(
        self,
        store: Store,
        plan: RunPlan,
        bundles: list[ItemBundle],
        result: SyncResult,
        progress: Progress,
        alive: set[str] | None,
    ) -> None:
        """One page: items, histories, worklogs, comments, new sprints and the progress point."""
        sprint_rows = self._sprints_seen(bundles)
        with store.transaction() as s:
            apply_bundles(s, self.source, bundles)
            if sprint_rows:
                # Sprints of boards outside the scope, known only from issues: insert, never
                # overwrite what a board listing said.
                upsert(s, Sprint, sprint_rows, update=[])
            set_cursor(s, self.source, PROGRESS, plan.to_json())
        known = self.mapping.statuses
        for b in bundles:
            if b.item is not None and b.item.status_id not in known:
                self._unknown_statuses.add(b.item.status_id)
            for h in b.histories or ():
                for t in h.transitions:
                    self._unknown_statuses.update(
                        x for x in (t.from_status_id, t.to_status_id) if x and x not in known
                    )
            for w in [*(b.worklogs or ()), *b.partial_worklogs]:
                self._seen_worklogs[w.worklog_id] = _ms(w.updated)
        n_hist = sum(len(b.histories or ()) for b in bundles)
        n_wl = sum(len(b.worklogs or ()) + len(b.partial_worklogs) for b in bundles)
        result.items += len(bundles)
        result.histories += n_hist
        result.worklogs += n_wl
        result.comments += sum(len(b.comments or ()) for b in bundles)
        progress.advance(self.source, "issues", len(bundles))
        progress.advance(self.source, "histories", n_hist)
        progress.advance(self.source, "worklogs", n_wl)
        if alive is not None:
            alive.update(b.item_id for b in bundles)

    def _sprints_seen(self, bundles: list[ItemBundle]) -> list[dict[str, Any]]:
        rows: dict[str, dict[str, Any]] = {}
        for b in bundles:
            if b.item is None:
                continue
            for ref in jm.issue_sprints(b.item.raw, self.mapping):
                if ref["id"] in rows:
                    continue
                try:
                    rec = jm.map_sprint(ref)
                except jm.JiraPayloadError:
                    continue
                rows[ref["id"]] = {**asdict(rec), "source": self.source}
        return list(rows.values())

    def _all_ids(self) -> set[str]:
        """Every issue id in scope, by ids-only pages (the deletion sweep of a resumed full run)."""
        scope = scope_jql(self.cfg)
        out: set[str] = set()
        last = 0
        while True:
            if self.api.cloud:
                ids, token = self.api.search_ids(page_jql(scope, None, last))
                while token:
                    more, token = self.api.search_ids(page_jql(scope, None, last), token)
                    ids += more
            else:
                page = self.api.search_page(page_jql(scope, None, last), ["id"], max_results=1000)
                ids = [str(i["id"]) for i in page.get("issues") or []]
                if page.get("total") is not None and page["total"] <= len(ids):
                    out.update(ids)
                    return out
            if not ids:
                return out
            out.update(ids)
            last = max(int(i) for i in ids)

    # ------------------------------------------------------------------ Cloud worklog feeds
    def _sync_worklog_feeds(
        self, store: Store, plan: RunPlan, result: SyncResult, progress: Progress
    ) -> None:
        overlap = int(self.cfg.overlap_minutes * 60_000)
        with store.transaction() as s:
            upd = get_cursor(s, self.source, WORKLOGS_UPDATED)
            dele = get_cursor(s, self.source, WORKLOGS_DELETED)
        if upd is not None:
            for values, until, _last in self.api.worklog_feed("updated", max(0, int(upd) - overlap)):
                ids = [
                    v["worklogId"]
                    for v in values
                    if self._seen_worklogs.get(str(v["worklogId"]), -1) < int(v.get("updatedTime") or 0)
                ]
                raw: list[dict[str, Any]] = []
                for chunk in _chunks(ids, WORKLOG_LIST_MAX):
                    raw += self.api.worklog_list(list(chunk))
                by_issue: dict[str, list[WorklogRecord]] = {}
                for w in raw:
                    rec = jm.map_worklog(w)
                    by_issue.setdefault(rec.item_id, []).append(rec)
                known = self._known_ids(store, list(by_issue))
                bundles = [
                    ItemBundle(item=None, item_id=i, partial_worklogs=wls)
                    for i, wls in by_issue.items()
                    if i in known
                ]
                with store.transaction() as s:
                    apply_bundles(s, self.source, bundles)
                    set_cursor(s, self.source, WORKLOGS_UPDATED, str(until))
                n = sum(len(b.partial_worklogs) for b in bundles)
                result.worklogs += n
                progress.advance(self.source, "worklogs", n)
        if dele is not None:
            for values, until, _last in self.api.worklog_feed("deleted", max(0, int(dele) - overlap)):
                with store.transaction() as s:
                    delete_worklogs(s, self.source, [str(v["worklogId"]) for v in values])
                    set_cursor(s, self.source, WORKLOGS_DELETED, str(until))

    # ------------------------------------------------------------------ completion
    def _finish(
        self, store: Store, plan: RunPlan, result: SyncResult, alive: set[str] | None, now_ms: int
    ) -> None:
        at = datetime.fromtimestamp(now_ms / 1000, tz=UTC)
        with store.transaction() as s:
            if plan.full and alive is not None:
                result.deleted = reconcile_deleted_items(s, self.source, alive, at, with_worklogs=True)
            set_cursor(s, self.source, WATERMARK, json.dumps({"at": plan.started_ms, "scope": plan.scope}))
            if self.api.cloud and (plan.full or get_cursor(s, self.source, WORKLOGS_UPDATED) is None):
                # Everything up to the run's start is in; the feeds continue from there.
                set_cursor(s, self.source, WORKLOGS_UPDATED, str(plan.started_ms))
                set_cursor(s, self.source, WORKLOGS_DELETED, str(plan.started_ms))
            clear_cursor(s, self.source, PROGRESS)
        result.cursor = datetime.fromtimestamp(plan.started_ms / 1000, tz=UTC).isoformat()


def open_connector(source_cfg: JiraSourceConfig, *, client: httpx.Client | None = None) -> JiraConnector:
    return JiraConnector(source_cfg, client)

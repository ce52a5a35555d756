"""The simulated Jira site's data: a seeded, event-sourced world that tests can read as truth.

This module owns the dataset behind the Jira simulator: projects, workflows and their statuses,
users (in several time zones), boards and sprints, and issues whose current field values are a
fold of their changelog histories. Worklogs, comments, deletions and moves are tracked with the
world's own clock (`JiraWorld.now`), never the host's, so incremental-sync tests control time.

Values in histories are logical (status ids, sprint id tuples, float points, user ids); the
renderer (`jira_render`) turns them into Cloud or Data Center JSON, so the same world can be
served by both profiles. Every mutation made after generation also appends a `JiraEvent`, which
`webhooks.JiraWebhookHub` turns into signed webhook deliveries.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, NamedTuple

DEFAULT_NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

# Logical field names used in history items; the renderer maps them to Jira's field/fieldId.
F_STATUS = "status"
F_RESOLUTION = "resolution"
F_SPRINT = "Sprint"
F_POINTS = "points"
F_ASSIGNEE = "assignee"
F_LABELS = "labels"
F_PRIORITY = "priority"
F_KEY = "Key"
F_PROJECT = "project"
F_FIX_VERSIONS = "fixVersions"  # values: tuples of version ids
F_EPIC = "epic"  # values: the epic issue's numeric id, or None

CATEGORY_IDS = {"new": 2, "indeterminate": 4, "done": 3}
CATEGORY_NAMES = {"new": "To Do", "indeterminate": "In Progress", "done": "Done"}
CATEGORY_COLORS = {"new": "blue-gray", "indeterminate": "yellow", "done": "green"}


@dataclass(frozen=True)
class JiraProfile:
    """What differs between Jira Cloud and Server/Data Center for the same site data."""

    name: str  # "cloud" | "dc"
    deployment_type: str  # serverInfo.deploymentType
    story_points_field: str
    story_points_name: str
    sprint_field: str
    rank_field: str
    version: str
    version_numbers: tuple[int, int, int]
    # Data Center links an issue to its epic by the "Epic Link" custom field; Cloud by `parent`.
    epic_link_field: str | None = None

    @property
    def is_cloud(self) -> bool:
        return self.name == "cloud"


CLOUD_PROFILE = JiraProfile(
    "cloud",
    "Cloud",
    "customfield_10016",
    "Story point estimate",
    "customfield_10020",
    "customfield_10019",
    "1001.0.0-SNAPSHOT",
    (1001, 0, 0),
)
DC_PROFILE = JiraProfile(
    "dc",
    "Server",
    "customfield_10002",
    "Story Points",
    "customfield_10020",
    "customfield_10019",
    "9.12.4",
    (9, 12, 4),
    "customfield_10101",
)
PROFILES = {"cloud": CLOUD_PROFILE, "dc": DC_PROFILE}


class IssueNotFound(KeyError):
    """No live issue has this id or key."""


@dataclass(frozen=True)
class SimStatus:
    id: str
    name: str
    category: str  # new | indeterminate | done
    description: str = ""


STATUSES: dict[str, SimStatus] = {
    s.id: s
    for s in (
        SimStatus("10000", "To Do", "new"),
        SimStatus("3", "In Progress", "indeterminate", "This issue is being actively worked on."),
        SimStatus("10001", "In Review", "indeterminate"),
        SimStatus("10002", "Waiting for customer", "indeterminate", "Paused until the customer answers."),
        SimStatus("10003", "Done", "done"),
        SimStatus("10070", "待办", "new"),
        SimStatus("10069", "处理中", "indeterminate"),
        SimStatus("10068", "已完成", "done"),
    )
}
STATUS_BY_NAME = {s.name.casefold(): s for s in STATUSES.values()}


@dataclass(frozen=True)
class Workflow:
    todo: str
    in_progress: str
    review: str | None
    pause: str
    done: str

    @property
    def status_ids(self) -> tuple[str, ...]:
        return tuple(s for s in (self.todo, self.in_progress, self.review, self.pause, self.done) if s)


ENGLISH_WORKFLOW = Workflow("10000", "3", "10001", "10002", "10003")
CHINESE_WORKFLOW = Workflow("10070", "10069", None, "10002", "10068")


@dataclass(frozen=True)
class SimIssueType:
    id: str
    name: str
    description: str = ""
    level: int = 0  # Cloud hierarchyLevel: 1 for epics


EPIC_TYPE = "10000"


@dataclass
class SimVersion:
    """A project version (release): dates are days, as Jira keeps them."""

    id: int
    project_key: str
    name: str
    description: str = ""
    start: date | None = None
    release: date | None = None
    released: bool = False
    archived: bool = False
    deleted: bool = False


ISSUE_TYPES: dict[str, SimIssueType] = {
    t.id: t
    for t in (
        SimIssueType("10001", "Story", "A user-facing goal."),
        SimIssueType("10002", "Task", "A piece of work."),
        SimIssueType("10004", "Bug", "A problem which impairs or prevents the functions of the product."),
        SimIssueType("10005", "缺陷", "产品的缺陷。"),
        SimIssueType("10000", "Epic", "A big user story that needs to be broken down.", level=1),
    )
}
ISSUE_TYPE_BY_NAME = {t.name.casefold(): t for t in ISSUE_TYPES.values()}
PRIORITIES = {"1": "Highest", "2": "High", "3": "Medium", "4": "Low"}
PRIORITY_BY_NAME = {v.casefold(): k for k, v in PRIORITIES.items()}
RESOLUTION_DONE = ("10000", "Done")
POINT_VALUES = (1.0, 2.0, 3.0, 5.0, 8.0, 13.0, 0.5)


@dataclass(frozen=True)
class SimUser:
    id: str  # stable internal id
    account_id: str  # Cloud
    name: str  # DC username (also the DC user key)
    display_name: str
    email: str
    time_zone: str  # IANA name; timestamps the user authored are rendered in it


DEFAULT_USERS = (
    SimUser("u1", "5e9711ba34f7b90c0fbc3701", "lwei", "Li Wei", "li.wei@example.com", "Asia/Shanghai"),
    SimUser("u2", "5e9711ba34f7b90c0fbc3702", "zhangmin", "张敏", "zhang.min@example.com", "Asia/Shanghai"),
    SimUser(
        "u3", "5e9711ba34f7b90c0fbc3703", "jdoe", "Jane Doe", "jane.doe@example.com", "America/Los_Angeles"
    ),
    SimUser(
        "u4", "5e9711ba34f7b90c0fbc3704", "priya", "Priya Nair", "priya.nair@example.com", "Asia/Kolkata"
    ),
    SimUser("u5", "5e9711ba34f7b90c0fbc3705", "tom", "Tom Baker", "tom.baker@example.com", "Etc/UTC"),
    SimUser("u6", "5e9711ba34f7b90c0fbc3706", "akira", "Akira Sato", "akira.sato@example.com", "Asia/Tokyo"),
    SimUser(
        "u7",
        "5e9711ba34f7b90c0fbc3707",
        "mfischer",
        "Maria Fischer",
        "maria.fischer@example.com",
        "Europe/Berlin",
    ),
    SimUser(
        "u8", "5e9711ba34f7b90c0fbc3708", "cruz", "Carlos Cruz", "carlos.cruz@example.com", "America/Denver"
    ),
)
# The API user the simulator authenticates; JQL date literals are read in its zone (UTC).
SERVICE_USER = SimUser(
    "sim", "557058:5b10ac8d82e05b22cc7d4ef5", "sim", "Sim Service", "sim@example.com", "Etc/UTC"
)


@dataclass
class SimProject:
    id: str
    key: str
    name: str
    lead: str  # user id
    workflow: Workflow
    bug_types: tuple[str, ...]  # issue type ids used for defects in this project
    next_number: int = 1


@dataclass
class SimBoard:
    id: int
    name: str
    type: str  # scrum | kanban
    project_key: str
    filter_id: int


@dataclass
class SimSprint:
    id: int
    board_id: int
    name: str
    state: str  # closed | active | future
    start: datetime | None = None
    end: datetime | None = None
    complete: datetime | None = None
    goal: str = ""
    created: datetime | None = None


class ChangeItem(NamedTuple):
    field: str
    old: Any
    new: Any


class SimHistory:
    """One changelog history: several items changed together by one author at one instant."""

    __slots__ = ("author", "created", "id", "issue_nid", "items")

    def __init__(self, issue_nid: int, author: str, created: datetime, items: list[ChangeItem], hid: int = 0):
        self.id = hid
        self.issue_nid = issue_nid
        self.author = author
        self.created = created
        self.items = items

    def __repr__(self) -> str:
        return f"SimHistory(id={self.id}, created={self.created.isoformat()}, items={self.items!r})"


class SimWorklog:
    __slots__ = (
        "author",
        "comment",
        "created",
        "deleted_at",
        "id",
        "issue_nid",
        "seconds",
        "started",
        "update_author",
        "updated",
    )

    def __init__(
        self,
        issue_nid: int,
        author: str,
        started: datetime,
        seconds: int,
        created: datetime,
        comment: str = "",
        wid: int = 0,
    ) -> None:
        self.id = wid
        self.issue_nid = issue_nid
        self.author = author
        self.update_author = author
        self.started = started
        self.seconds = seconds
        self.created = created
        self.updated = created
        self.comment = comment
        self.deleted_at: datetime | None = None

    @property
    def time_spent_seconds(self) -> int:
        return self.seconds

    def __repr__(self) -> str:
        return f"SimWorklog(id={self.id}, issue={self.issue_nid}, seconds={self.seconds})"


class SimComment:
    __slots__ = ("author", "body", "created", "deleted_at", "id", "issue_nid", "update_author", "updated")

    def __init__(self, issue_nid: int, author: str, created: datetime, body: str, cid: int = 0) -> None:
        self.id = cid
        self.issue_nid = issue_nid
        self.author = author
        self.update_author = author
        self.created = created
        self.updated = created
        self.body = body
        self.deleted_at: datetime | None = None


class SimIssue:
    """An issue: immutable creation facts, the ordered histories, and the fold of those histories."""

    __slots__ = (
        "assignee",
        "comments",
        "created",
        "deleted_at",
        "description",
        "epic",
        "fix_versions",
        "histories",
        "initial_assignee",
        "initial_epic",
        "initial_fix_versions",
        "initial_key",
        "initial_labels",
        "initial_points",
        "initial_priority",
        "initial_project",
        "initial_sprints",
        "initial_status",
        "issue_type",
        "key",
        "labels",
        "nid",
        "points",
        "priority",
        "project_key",
        "reporter",
        "resolution",
        "resolved_at",
        "sprints",
        "status",
        "status_category_changed",
        "summary",
        "updated",
        "worklogs",
    )

    def __init__(
        self,
        nid: int,
        key: str,
        project_key: str,
        issue_type: str,
        reporter: str,
        created: datetime,
        summary: str,
        *,
        status: str,
        points: float | None,
        sprints: tuple[int, ...],
        assignee: str | None,
        labels: tuple[str, ...],
        priority: str,
        description: str = "",
    ) -> None:
        self.nid = nid
        self.key = key
        self.project_key = project_key
        self.issue_type = issue_type
        self.reporter = reporter
        self.created = created
        self.summary = summary
        self.description = description
        self.histories: list[SimHistory] = []
        self.worklogs: list[SimWorklog] = []
        self.comments: list[SimComment] = []
        self.deleted_at: datetime | None = None
        self.initial_status, self.initial_points, self.initial_sprints = status, points, sprints
        self.initial_assignee, self.initial_labels, self.initial_priority = assignee, labels, priority
        self.initial_key, self.initial_project = key, project_key
        # Plans (issue 9): set after generation, changed later only through histories.
        self.initial_fix_versions: tuple[int, ...] = ()
        self.initial_epic: int | None = None
        self._reset_current()

    @property
    def id(self) -> str:
        return str(self.nid)

    def _reset_current(self) -> None:
        self.status = self.initial_status
        self.points = self.initial_points
        self.sprints = self.initial_sprints
        self.assignee = self.initial_assignee
        self.labels = self.initial_labels
        self.priority = self.initial_priority
        self.key = self.initial_key
        self.project_key = self.initial_project
        self.fix_versions = self.initial_fix_versions
        self.epic = self.initial_epic
        done = STATUSES[self.initial_status].category == "done"
        self.resolution = RESOLUTION_DONE[0] if done else None
        self.resolved_at = self.created if done else None
        self.status_category_changed = self.created
        self.updated = self.created

    def apply(self, history: SimHistory) -> None:
        """Fold one history into the current values (histories are applied in time order)."""
        for item in history.items:
            f = item.field
            if f == F_STATUS:
                if STATUSES[item.old].category != STATUSES[item.new].category:
                    self.status_category_changed = history.created
                self.status = item.new
            elif f == F_RESOLUTION:
                self.resolution = item.new
                self.resolved_at = history.created if item.new else None
            elif f == F_SPRINT:
                self.sprints = item.new
            elif f == F_POINTS:
                self.points = item.new
            elif f == F_ASSIGNEE:
                self.assignee = item.new
            elif f == F_LABELS:
                self.labels = item.new
            elif f == F_PRIORITY:
                self.priority = item.new
            elif f == F_KEY:
                self.key = item.new
            elif f == F_PROJECT:
                self.project_key = item.new
            elif f == F_FIX_VERSIONS:
                self.fix_versions = item.new
            elif f == F_EPIC:
                self.epic = item.new
        self.updated = max(self.updated, history.created)

    def replay(self) -> None:
        """Recompute every current value from the creation facts and the histories."""
        self._reset_current()
        for h in self.histories:
            self.apply(h)
        for c in self.comments:
            self.updated = max(self.updated, c.updated)
        for w in self.worklogs:
            self.updated = max(self.updated, w.deleted_at or w.updated)

    @property
    def is_deleted(self) -> bool:
        return self.deleted_at is not None

    @property
    def status_category(self) -> str:
        return STATUSES[self.status].category

    @property
    def live_worklogs(self) -> list[SimWorklog]:
        return [w for w in self.worklogs if w.deleted_at is None]

    @property
    def live_comments(self) -> list[SimComment]:
        return [c for c in self.comments if c.deleted_at is None]

    def status_at(self, t: datetime) -> str:
        status = self.initial_status
        for h in self.histories:
            if h.created > t:
                break
            for item in h.items:
                if item.field == F_STATUS:
                    status = item.new
        return status

    def __repr__(self) -> str:
        return f"SimIssue({self.key}, id={self.nid}, status={STATUSES[self.status].name})"


@dataclass(frozen=True)
class JiraEvent:
    """Something a Jira admin webhook would report, recorded when the world mutates."""

    seq: int
    name: str  # webhookEvent, e.g. "jira:issue_updated", "worklog_created", "sprint_closed"
    timestamp: datetime
    user: str
    issue_nid: int | None = None
    issue_event_type_name: str | None = None
    history_id: int | None = None
    comment_id: int | None = None
    worklog_id: int | None = None
    sprint_id: int | None = None
    version_id: int | None = None


@dataclass
class WebhookRegistration:
    id: int
    name: str
    url: str
    events: list[str]
    jql_filter: str | None
    exclude_body: bool
    secret: str | None
    from_seq: int  # events with seq >= from_seq are delivered to this webhook
    created: datetime
    enabled: bool = True


_SUMMARY_VERBS = (
    "Add",
    "Fix",
    "Refactor",
    "Document",
    "Speed up",
    "Remove",
    "Support",
    "Validate",
    "支持",
    "优化",
)
_SUMMARY_OBJECTS = (
    "login page",
    "CSV export",
    "billing webhook",
    "search index",
    "sprint report",
    "mobile layout",
    "audit log",
    "rate limiter",
    "导出功能",
    "权限校验",
    "API pagination",
)
_LABELS = ("backend", "frontend", "customer", "tech-debt", "security", "ux", "perf")
_COMMENT_BODIES = (
    "Looks good to me.",
    "Can you share the logs?",
    "Reproduced on staging.",
    "已修复，请验证。",
    "Waiting for the customer to confirm.",
    "Deployed to production.",
    "I think this needs a design review first.",
)


@dataclass
class _Draft:
    """Histories of one issue during generation, before global ids are assigned."""

    events: list[tuple[datetime, str, list[ChangeItem]]] = field(default_factory=list)

    def add(self, t: datetime, author: str, *items: ChangeItem) -> None:
        self.events.append((t, author, list(items)))


class JiraWorld:
    """A Jira site: catalogue, users, projects, boards, sprints, issues, and its own clock."""

    def __init__(self, now: datetime, users: Iterable[SimUser] = DEFAULT_USERS) -> None:
        if now.tzinfo is None:
            raise ValueError("JiraWorld needs a timezone-aware 'now'")
        self.now = now.astimezone(UTC)
        self.users: dict[str, SimUser] = {u.id: u for u in users}
        self.users[SERVICE_USER.id] = SERVICE_USER
        self.service_user = SERVICE_USER
        self.projects: dict[str, SimProject] = {}
        self.boards: dict[int, SimBoard] = {}
        self.sprints: dict[int, SimSprint] = {}
        self.issues: dict[int, SimIssue] = {}  # by numeric id, deleted ones included
        self.key_index: dict[str, int] = {}  # current keys and former keys (moved issues)
        self.worklogs: dict[int, SimWorklog] = {}
        self.comments: dict[int, SimComment] = {}
        self.events: list[JiraEvent] = []
        self.webhooks: dict[int, WebhookRegistration] = {}
        self.lock = threading.RLock()
        #: Bumped by every change; the app caches search results per (jql, version).
        self.version = 0
        self._next_issue = 10000
        self._next_history = 10000
        self._next_worklog = 10000
        self._next_comment = 10000
        self._next_sprint = 1
        self._next_webhook = 1
        self.versions: dict[int, SimVersion] = {}
        self._next_version = 10000

    # ------------------------------------------------------------------ generation
    @classmethod
    def generate(
        cls,
        seed: int,
        *,
        projects: int = 2,
        issues_per_project: int = 150,
        now: datetime | None = None,
        closed_sprints: int = 6,
        sprint_days: int = 14,
        kanban_board: bool = True,
        users: Iterable[SimUser] = DEFAULT_USERS,
    ) -> JiraWorld:
        """A deterministic site: the same arguments always give the same world, ids included."""
        world = cls(now or DEFAULT_NOW, users)
        rng = random.Random(seed)
        world._build_catalogue(rng, projects, closed_sprints, sprint_days, kanban_board)
        world._generate_issues(rng, issues_per_project, sprint_days)
        # Versions and epics draw from their own stream, so the rest of the world is what it
        # was before they existed (other tests depend on its figures).
        world._generate_plans(random.Random(f"{seed}:plans"))
        return world

    def _generate_plans(self, rng: random.Random) -> None:
        """Versions per project (one archived, one released, two open: one dated, one not), fix
        versions on issues (a few in a version of another project too), and epics: a few early
        stories per project become epics, and later issues of the project are linked to them."""
        keys = sorted(self.projects)
        by_project: dict[str, list[SimIssue]] = {k: [] for k in keys}
        for issue in sorted(self.issues.values(), key=lambda i: i.nid):
            by_project[issue.project_key].append(issue)
        today = self.now.date()
        plan: dict[str, dict[str, SimVersion]] = {}
        for k in keys:
            vs = {
                "0.9": SimVersion(0, k, "0.9", "First pilot", today - timedelta(days=160), today - timedelta(days=120),
                                  released=True, archived=True),
                "1.0": SimVersion(0, k, "1.0", "General availability", today - timedelta(days=rng.randint(70, 90)),
                                  today - timedelta(days=rng.randint(20, 35)), released=True),
                "1.1": SimVersion(0, k, "1.1", "", today - timedelta(days=rng.randint(10, 20)),
                                  today + timedelta(days=rng.randint(5, 25))),
                "2.0": SimVersion(0, k, "2.0", "Next major"),
            }
            for v in vs.values():
                v.id = self._next_version
                self._next_version += 1
                self.versions[v.id] = v
            plan[k] = vs
        for k in keys:
            issues = by_project[k]
            stories = [i for i in issues if i.issue_type in ("10001", "10002")]
            n_epics = min(3, max(1, len(stories) // 15)) if stories else 0
            epics = stories[:n_epics]
            for e in epics:
                e.issue_type = EPIC_TYPE
            for issue in issues:
                if issue in epics:
                    continue
                if epics and rng.random() < 0.45:
                    issue.initial_epic = rng.choice(epics).nid
                vs = plan[k]
                release = vs["1.0"].release
                fix: list[int] = []
                if issue.resolved_at is not None and release and issue.resolved_at.date() <= release:
                    if rng.random() < 0.6:
                        fix.append(vs["1.0"].id)
                elif rng.random() < 0.5:
                    fix.append(vs["1.1"].id)
                elif rng.random() < 0.3:
                    fix.append(vs["2.0"].id)
                if fix and len(keys) > 1 and rng.random() < 0.15:
                    # A cross-project release: the item ships in another project's version too.
                    other = rng.choice([x for x in keys if x != k])
                    fix.append(plan[other]["1.1"].id)
                issue.initial_fix_versions = issue.fix_versions = tuple(fix)
                issue.epic = issue.initial_epic

    def project_versions(self, project_key: str) -> list[SimVersion]:
        return [v for v in self.versions.values() if v.project_key == project_key and not v.deleted]

    def _build_catalogue(
        self, rng: random.Random, n_projects: int, closed_sprints: int, sprint_days: int, kanban_board: bool
    ) -> None:
        keys = ["ABC", "DEF", "GHI", "JKL", "MNO", "PQR", "STU", "VWX"]
        names = [
            "Alpha Platform",
            "Beta 移动端",
            "Gamma Billing",
            "Delta Search",
            "Epsilon Ops",
            "Zeta Mobile",
            "Eta Data",
            "Theta Infra",
        ]
        user_ids = [u for u in self.users if u != SERVICE_USER.id]
        board_id = 1
        for i in range(n_projects):
            key = keys[i] if i < len(keys) else f"P{i}"
            chinese = i % 2 == 1
            project = SimProject(
                id=str(10000 + i),
                key=key,
                name=names[i % len(names)],
                lead=user_ids[i % len(user_ids)],
                workflow=CHINESE_WORKFLOW if chinese else ENGLISH_WORKFLOW,
                bug_types=("10004", "10005") if chinese else ("10004",),
            )
            self.projects[key] = project
            self.boards[board_id] = SimBoard(board_id, f"{key} board", "scrum", key, 10000 + board_id)
            # Boards run on different cadences, so sprint boundaries differ per board.
            active_start = self.now - timedelta(days=2 + (3 * i) % (sprint_days - 3), hours=rng.randint(0, 6))
            active_start = active_start.replace(minute=0, second=0, microsecond=0)
            for k in range(closed_sprints, 0, -1):
                start = active_start - timedelta(days=sprint_days * k)
                end = start + timedelta(days=sprint_days)
                complete = end - timedelta(minutes=rng.randint(5, 240))
                self._add_sprint(
                    board_id, f"{key} Sprint {closed_sprints - k + 1}", "closed", start, end, complete
                )
            self._add_sprint(
                board_id,
                f"{key} Sprint {closed_sprints + 1}",
                "active",
                active_start,
                active_start + timedelta(days=sprint_days),
                None,
            )
            self._add_sprint(board_id, f"{key} Sprint {closed_sprints + 2}", "future", None, None, None)
            board_id += 1
            if kanban_board and i == 0:
                self.boards[board_id] = SimBoard(board_id, f"{key} kanban", "kanban", key, 10000 + board_id)
                board_id += 1

    def _add_sprint(
        self,
        board_id: int,
        name: str,
        state: str,
        start: datetime | None,
        end: datetime | None,
        complete: datetime | None,
    ) -> SimSprint:
        sprint = SimSprint(
            self._next_sprint,
            board_id,
            name,
            state,
            start,
            end,
            complete,
            goal="" if self._next_sprint % 3 else "Ship the increment",
            created=(start or self.now) - timedelta(days=3),
        )
        self.sprints[sprint.id] = sprint
        self._next_sprint += 1
        return sprint

    def scrum_sprints(self, project_key: str) -> list[SimSprint]:
        board = next(b for b in self.boards.values() if b.project_key == project_key and b.type == "scrum")
        return [s for s in self.sprints.values() if s.board_id == board.id]

    def _generate_issues(self, rng: random.Random, per_project: int, sprint_days: int) -> None:
        user_ids = [u for u in self.users if u != SERVICE_USER.id]
        drafts: list[tuple[SimIssue, _Draft]] = []
        plan: list[tuple[datetime, str]] = []
        for project in self.projects.values():
            sprints = self.scrum_sprints(project.key)
            first_start = sprints[0].start or self.now
            span = (
                self.now - timedelta(hours=1) - (first_start - timedelta(days=sprint_days))
            ).total_seconds()
            for _ in range(per_project):
                created = first_start - timedelta(days=sprint_days) + timedelta(seconds=rng.random() * span)
                plan.append((created.replace(microsecond=rng.randrange(1000) * 1000), project.key))
        plan.sort()
        for created, pkey in plan:
            project = self.projects[pkey]
            nid = self._next_issue
            self._next_issue += 1
            key = f"{pkey}-{project.next_number}"
            project.next_number += 1
            issue, draft = self._simulate_issue(rng, nid, key, project, created, user_ids, len(drafts))
            drafts.append((issue, draft))

        # Global ids grow with time, as in a real site.
        all_histories: list[SimHistory] = []
        for issue, draft in drafts:
            draft.events.sort(key=lambda e: e[0])
            for t, author, items in draft.events:
                all_histories.append(SimHistory(issue.nid, author, t, items))
        all_histories.sort(key=lambda h: (h.created, h.issue_nid))
        for issue, _ in drafts:
            self.issues[issue.nid] = issue
        for h in all_histories:
            h.id = self._next_history
            self._next_history += 1
            self.issues[h.issue_nid].histories.append(h)
        for h in all_histories:
            self.issues[h.issue_nid].apply(h)
        worklogs = sorted((w for i, _ in drafts for w in i.worklogs), key=lambda w: (w.created, w.issue_nid))
        for w in worklogs:
            w.id = self._next_worklog
            self._next_worklog += 1
            self.worklogs[w.id] = w
        comments = sorted((c for i, _ in drafts for c in i.comments), key=lambda c: (c.created, c.issue_nid))
        for c in comments:
            c.id = self._next_comment
            self._next_comment += 1
            self.comments[c.id] = c
        for issue, _ in drafts:
            issue.worklogs.sort(key=lambda w: w.id)
            issue.comments.sort(key=lambda c: c.id)
            for c in issue.comments:
                issue.updated = max(issue.updated, c.updated)
            for w in issue.worklogs:
                issue.updated = max(issue.updated, w.updated)
            self.key_index[issue.key] = issue.nid

    def _simulate_issue(
        self,
        rng: random.Random,
        nid: int,
        key: str,
        project: SimProject,
        created: datetime,
        user_ids: list[str],
        index: int,
    ) -> tuple[SimIssue, _Draft]:
        """Play one issue's life from `created` to `now`: sprint membership, work, noise."""
        now_cut = self.now - timedelta(seconds=90)
        wf = project.workflow
        r = rng.random()
        if r < 0.2:
            type_id = rng.choice(project.bug_types)
        elif r < 0.35:
            type_id = "10002"
        else:
            type_id = "10001"
        is_bug = type_id in ("10004", "10005")
        priority = rng.choices(("1", "2", "3", "4"), (1, 3, 6, 2))[0]
        reporter = rng.choice(user_ids)
        assignee = rng.choice(user_ids) if rng.random() < 0.85 else None
        points = (
            rng.choice(POINT_VALUES[:6])
            if (rng.random() < 0.75 and not is_bug) or rng.random() < 0.2
            else None
        )
        labels = tuple(sorted(rng.sample(_LABELS, rng.randint(0, 2))))
        summary = f"{rng.choice(_SUMMARY_VERBS)} {rng.choice(_SUMMARY_OBJECTS)}"
        draft = _Draft()
        initial_sprints: tuple[int, ...] = ()

        # --- sprint membership (planning) ---
        sprints = self.scrum_sprints(project.key)
        join_time: datetime | None = None
        sprint_pos: int | None = None
        if rng.random() < 0.85:
            for pos, s in enumerate(sprints):
                closes = s.complete or (s.end if s.state == "active" else None)
                if closes is None or closes > created:
                    sprint_pos = pos
                    break
        if sprint_pos is not None:
            s = sprints[sprint_pos]
            if s.start is None or s.start > self.now:  # future sprint: planned soon after creation
                join_time = min(created + timedelta(hours=rng.uniform(0, 48)), now_cut)
            elif s.start > created:  # planned before the sprint started: committed
                join_time = created + (s.start - created) * rng.random()
            else:  # created during the sprint: added mid-sprint
                join_time = created + timedelta(hours=rng.uniform(0, 30))
                if join_time > now_cut:
                    join_time = created
            if join_time <= created + timedelta(seconds=1) or rng.random() < 0.25:
                join_time = created
                initial_sprints = (s.id,)
            elif s.complete is not None and join_time >= s.complete:
                # A join planned after the sprint closed would be logged after the carry-over below,
                # whose "from" already lists the sprint; Jira's changelog never contradicts itself, so
                # the issue is in the sprint from creation. join_time (when work may start) is kept,
                # and no rng draw is added, so the rest of the world is unchanged.
                initial_sprints = (s.id,)
            else:
                draft.add(join_time, project.lead, ChangeItem(F_SPRINT, (), (s.id,)))

        # --- work: todo -> in progress (-> pause) (-> review) -> done (-> reopened ...) ---
        status = wf.todo
        status_events: list[tuple[datetime, str]] = []
        work_from = created
        if sprint_pos is not None and sprints[sprint_pos].start and join_time:
            work_from = max(created, sprints[sprint_pos].start or created, join_time)
        worker = assignee or reporter
        if rng.random() > 0.1:
            t = work_from + timedelta(hours=rng.expovariate(1 / 30))
            reopen_budget = 1 if rng.random() < 0.12 else 0
            while t < now_cut:
                status_events.append((t, wf.in_progress))
                t += timedelta(hours=rng.uniform(4, 24 * 7))
                if rng.random() < (0.35 if is_bug else 0.12) and t < now_cut:
                    status_events.append((t, wf.pause))
                    t += timedelta(hours=rng.uniform(2, 24 * 4))
                    if t >= now_cut:
                        break
                    status_events.append((t, wf.in_progress))
                    t += timedelta(hours=rng.uniform(2, 48))
                if wf.review and rng.random() < 0.5 and t < now_cut:
                    status_events.append((t, wf.review))
                    t += timedelta(hours=rng.uniform(1, 48))
                if t >= now_cut:
                    break
                status_events.append((t, wf.done))
                if reopen_budget <= 0:
                    break
                reopen_budget -= 1
                t += timedelta(hours=rng.uniform(12, 24 * 6))
        for t, new in status_events:
            items = [ChangeItem(F_STATUS, status, new)]
            old_done = STATUSES[status].category == "done"
            new_done = STATUSES[new].category == "done"
            if new_done and not old_done:
                items.append(ChangeItem(F_RESOLUTION, None, RESOLUTION_DONE[0]))
            elif old_done and not new_done:
                items.append(ChangeItem(F_RESOLUTION, RESOLUTION_DONE[0], None))
            draft.add(t, worker, *items)
            status = new

        def done_at(t: datetime) -> bool:
            st = wf.todo
            for et, s in status_events:
                if et > t:
                    break
                st = s
            return STATUSES[st].category == "done"

        # --- sprint carry-over and mid-sprint removal ---
        if sprint_pos is not None and join_time is not None:
            members: tuple[int, ...] = initial_sprints or (sprints[sprint_pos].id,)
            pos = sprint_pos
            while pos < len(sprints):
                s = sprints[pos]
                if s.start and s.start < now_cut and rng.random() < 0.05:
                    lo = max(s.start, join_time)
                    hi = min(s.complete or now_cut, now_cut)
                    if hi > lo:
                        t = lo + (hi - lo) * rng.random()
                        draft.add(t, project.lead, ChangeItem(F_SPRINT, members, members[:-1]))
                        break
                if s.state != "closed" or s.complete is None or done_at(s.complete):
                    break
                if pos + 1 >= len(sprints):
                    break
                nxt = sprints[pos + 1]
                # Jira keeps the closed sprint in the field and appends the next one.
                draft.add(s.complete, project.lead, ChangeItem(F_SPRINT, members, members + (nxt.id,)))
                members = members + (nxt.id,)
                pos += 1

        # --- estimates: changes mid-sprint, points added later ---
        if sprint_pos is not None and join_time is not None:
            s = sprints[sprint_pos]
            if s.start and rng.random() < 0.2:
                lo = max(s.start, join_time)
                hi = min(s.complete or now_cut, now_cut)
                if hi > lo:
                    t = lo + (hi - lo) * rng.random()
                    new_points = rng.choice([p for p in POINT_VALUES if p != points])
                    draft.add(t, worker, ChangeItem(F_POINTS, points, new_points))
        initial_points = points
        if points is None and not draft_has(draft, F_POINTS) and rng.random() < 0.1:
            t = created + (now_cut - created) * rng.random() * 0.5
            draft.add(t, worker, ChangeItem(F_POINTS, None, rng.choice(POINT_VALUES[:6])))

        # --- noise: assignee and labels edits; a few issues with very long histories ---
        cur_assignee = assignee
        cur_labels = labels
        n_noise = 0
        if rng.random() < 0.3:
            n_noise += 1
        if rng.random() < 0.2:
            n_noise += 1
        if index % 97 == 3:
            n_noise += rng.randint(100, 130)
        noise_times = sorted(created + (now_cut - created) * rng.random() for _ in range(n_noise))
        for t in noise_times:
            if rng.random() < 0.5:
                new_assignee = rng.choice([u for u in user_ids if u != cur_assignee])
                draft.add(t, rng.choice(user_ids), ChangeItem(F_ASSIGNEE, cur_assignee, new_assignee))
                cur_assignee = new_assignee
            else:
                lab = rng.choice(_LABELS)
                new_labels = tuple(sorted(set(cur_labels) ^ {lab}))
                draft.add(t, rng.choice(user_ids), ChangeItem(F_LABELS, cur_labels, new_labels))
                cur_labels = new_labels

        issue = SimIssue(
            nid,
            key,
            project.key,
            type_id,
            reporter,
            created,
            summary,
            status=wf.todo,
            points=initial_points,
            sprints=initial_sprints,
            assignee=assignee,
            labels=labels,
            priority=priority,
            description=f"{summary}. Acceptance: works for every customer.",
        )

        # --- worklogs and comments ---
        started_work = status_events[0][0] if status_events else None
        if started_work is not None:
            n_wl = rng.randint(21, 30) if index % 41 == 5 else rng.choice((0, 0, 1, 1, 2, 3, 4))
            for _ in range(n_wl):
                st = started_work + (now_cut - started_work) * rng.random() * 0.8
                st = st.replace(second=0, microsecond=0)
                seconds = 900 * rng.randint(1, 32)
                wcreated = min(st + timedelta(seconds=seconds + rng.randint(60, 7200)), now_cut)
                wcreated = wcreated.replace(microsecond=rng.randrange(1000) * 1000)
                wl = SimWorklog(
                    nid,
                    worker if rng.random() < 0.7 else rng.choice(user_ids),
                    st,
                    seconds,
                    wcreated,
                    comment="Worked on it" if rng.random() < 0.5 else "",
                )
                if rng.random() < 0.1:
                    wl.updated = min(wcreated + timedelta(hours=rng.uniform(1, 72)), now_cut)
                issue.worklogs.append(wl)
        for _ in range(rng.choice((0, 0, 1, 1, 2, 3))):
            author = reporter if rng.random() < 0.4 else rng.choice(user_ids)
            ct = created + (now_cut - created) * rng.random()
            issue.comments.append(
                SimComment(
                    nid,
                    author,
                    ct.replace(microsecond=rng.randrange(1000) * 1000),
                    rng.choice(_COMMENT_BODIES),
                )
            )
        return issue, draft

    # ------------------------------------------------------------------ reading
    def live_issues(self) -> Iterator[SimIssue]:
        return (i for i in self.issues.values() if i.deleted_at is None)

    def deleted_issues(self) -> list[SimIssue]:
        return [i for i in self.issues.values() if i.deleted_at is not None]

    def find_issue(self, id_or_key: str | int, *, include_deleted: bool = False) -> SimIssue | None:
        """Resolve a numeric id or a key (case-insensitive; former keys of moved issues too)."""
        issue: SimIssue | None = None
        if isinstance(id_or_key, int) or (isinstance(id_or_key, str) and id_or_key.isdigit()):
            issue = self.issues.get(int(id_or_key))
        else:
            nid = self.key_index.get(str(id_or_key).upper())
            issue = self.issues.get(nid) if nid is not None else None
        if issue is None or (issue.deleted_at is not None and not include_deleted):
            return None
        return issue

    def issue(self, id_or_key: str | int) -> SimIssue:
        found = self.find_issue(id_or_key)
        if found is None:
            raise IssueNotFound(id_or_key)
        return found

    def user(self, user_id: str) -> SimUser:
        return self.users[user_id]

    def project_of(self, issue: SimIssue) -> SimProject:
        return self.projects[issue.project_key]

    def board_sprints(self, board_id: int) -> list[SimSprint]:
        return [s for s in self.sprints.values() if s.board_id == board_id]

    # ------------------------------------------------------------------ clock and events
    def advance(self, delta: timedelta) -> datetime:
        """Move the site's clock forward (the simulator's serverTime follows it)."""
        if delta < timedelta(0):
            raise ValueError("the world's clock only moves forward")
        with self.lock:
            self.now += delta
            self.version += 1
        return self.now

    def _event(self, name: str, user: str, **kw: Any) -> JiraEvent:
        ev = JiraEvent(len(self.events), name, self.now, user, **kw)
        self.events.append(ev)
        return ev

    def _resolve_user(self, user: str | None) -> str:
        return user if user is not None else SERVICE_USER.id

    def _append_history(self, issue: SimIssue, author: str, items: list[ChangeItem]) -> SimHistory:
        h = SimHistory(issue.nid, author, self.now, items, self._next_history)
        self._next_history += 1
        issue.histories.append(h)
        issue.apply(h)
        issue.updated = self.now
        self.version += 1
        return h

    def _issue_updated(
        self, issue: SimIssue, author: str, h: SimHistory, type_name: str = "issue_generic"
    ) -> None:
        self._event(
            "jira:issue_updated",
            author,
            issue_nid=issue.nid,
            history_id=h.id,
            issue_event_type_name=type_name,
        )

    # ------------------------------------------------------------------ explicit mutations
    def create_issue(
        self,
        project_key: str,
        *,
        issue_type: str = "Story",
        summary: str | None = None,
        reporter: str | None = None,
        assignee: str | None = None,
        priority: str = "Medium",
        points: float | None = None,
        sprint_id: int | None = None,
        labels: Iterable[str] = (),
    ) -> SimIssue:
        with self.lock:
            project = self.projects[project_key]
            itype = ISSUE_TYPE_BY_NAME[issue_type.casefold()].id if not issue_type.isdigit() else issue_type
            prio = PRIORITY_BY_NAME.get(priority.casefold(), priority)
            nid = self._next_issue
            self._next_issue += 1
            key = f"{project_key}-{project.next_number}"
            project.next_number += 1
            reporter = self._resolve_user(reporter)
            issue = SimIssue(
                nid,
                key,
                project_key,
                itype,
                reporter,
                self.now,
                summary or f"New work item {key}",
                status=project.workflow.todo,
                points=points,
                sprints=(sprint_id,) if sprint_id else (),
                assignee=assignee,
                labels=tuple(sorted(labels)),
                priority=prio,
            )
            self.issues[nid] = issue
            self.key_index[key] = nid
            self.version += 1
            self._event("jira:issue_created", reporter, issue_nid=nid, issue_event_type_name="issue_created")
            return issue

    def add_transition(self, issue_id: str | int, to_status: str, *, author: str | None = None) -> SimHistory:
        """Move an issue to a status (id or name); entering/leaving done sets/clears the resolution."""
        with self.lock:
            issue = self.issue(issue_id)
            target = STATUSES.get(to_status) or STATUS_BY_NAME[to_status.casefold()]
            old = STATUSES[issue.status]
            items = [ChangeItem(F_STATUS, old.id, target.id)]
            if target.category == "done" and old.category != "done":
                items.append(ChangeItem(F_RESOLUTION, issue.resolution, RESOLUTION_DONE[0]))
            elif old.category == "done" and target.category != "done":
                items.append(ChangeItem(F_RESOLUTION, issue.resolution, None))
            author = self._resolve_user(author or issue.assignee)
            h = self._append_history(issue, author, items)
            self._issue_updated(issue, author, h)
            return h

    def set_story_points(
        self, issue_id: str | int, points: float | None, *, author: str | None = None
    ) -> SimHistory:
        with self.lock:
            issue = self.issue(issue_id)
            author = self._resolve_user(author)
            h = self._append_history(issue, author, [ChangeItem(F_POINTS, issue.points, points)])
            self._issue_updated(issue, author, h)
            return h

    def set_assignee(
        self, issue_id: str | int, user_id: str | None, *, author: str | None = None
    ) -> SimHistory:
        with self.lock:
            issue = self.issue(issue_id)
            author = self._resolve_user(author)
            h = self._append_history(issue, author, [ChangeItem(F_ASSIGNEE, issue.assignee, user_id)])
            self._issue_updated(issue, author, h, "issue_assigned")
            return h

    def change_labels(
        self,
        issue_id: str | int,
        add: Iterable[str] = (),
        remove: Iterable[str] = (),
        *,
        author: str | None = None,
    ) -> SimHistory | None:
        with self.lock:
            issue = self.issue(issue_id)
            new = tuple(sorted((set(issue.labels) | set(add)) - set(remove)))
            if new == issue.labels:
                return None
            author = self._resolve_user(author)
            h = self._append_history(issue, author, [ChangeItem(F_LABELS, issue.labels, new)])
            self._issue_updated(issue, author, h)
            return h

    def set_sprints(
        self, issue_id: str | int, sprint_ids: Iterable[int], *, author: str | None = None
    ) -> SimHistory:
        with self.lock:
            issue = self.issue(issue_id)
            author = self._resolve_user(author)
            h = self._append_history(issue, author, [ChangeItem(F_SPRINT, issue.sprints, tuple(sprint_ids))])
            self._issue_updated(issue, author, h)
            return h

    def add_to_sprint(self, issue_id: str | int, sprint_id: int, *, author: str | None = None) -> SimHistory:
        issue = self.issue(issue_id)
        # An issue is in at most one open sprint; closed ones stay listed.
        kept = tuple(s for s in issue.sprints if self.sprints[s].state == "closed")
        return self.set_sprints(issue_id, kept + (sprint_id,), author=author)

    def add_worklog(
        self,
        issue_id: str | int,
        seconds: int,
        *,
        started: datetime | None = None,
        author: str | None = None,
        comment: str = "",
    ) -> SimWorklog:
        with self.lock:
            issue = self.issue(issue_id)
            author = self._resolve_user(author)
            wl = SimWorklog(
                issue.nid,
                author,
                started or self.now - timedelta(seconds=seconds),
                seconds,
                self.now,
                comment,
                self._next_worklog,
            )
            self._next_worklog += 1
            issue.worklogs.append(wl)
            self.worklogs[wl.id] = wl
            issue.updated = self.now
            self.version += 1
            self._event("worklog_created", author, issue_nid=issue.nid, worklog_id=wl.id)
            self._event(
                "jira:issue_updated", author, issue_nid=issue.nid, issue_event_type_name="issue_work_logged"
            )
            return wl

    def update_worklog(self, worklog_id: int, seconds: int, *, author: str | None = None) -> SimWorklog:
        with self.lock:
            wl = self.worklogs[worklog_id]
            if wl.deleted_at is not None:
                raise KeyError(worklog_id)
            wl.seconds = seconds
            wl.updated = self.now
            wl.update_author = self._resolve_user(author)
            self.issues[wl.issue_nid].updated = self.now
            self.version += 1
            self._event("worklog_updated", wl.update_author, issue_nid=wl.issue_nid, worklog_id=wl.id)
            return wl

    def delete_worklog(self, worklog_id: int, *, author: str | None = None) -> SimWorklog:
        with self.lock:
            wl = self.worklogs[worklog_id]
            wl.deleted_at = self.now
            self.issues[wl.issue_nid].updated = self.now
            self.version += 1
            self._event(
                "worklog_deleted", self._resolve_user(author), issue_nid=wl.issue_nid, worklog_id=wl.id
            )
            return wl

    def add_comment(self, issue_id: str | int, body: str, *, author: str | None = None) -> SimComment:
        with self.lock:
            issue = self.issue(issue_id)
            author = self._resolve_user(author)
            c = SimComment(issue.nid, author, self.now, body, self._next_comment)
            self._next_comment += 1
            issue.comments.append(c)
            self.comments[c.id] = c
            issue.updated = self.now
            self.version += 1
            self._event("comment_created", author, issue_nid=issue.nid, comment_id=c.id)
            # Jira also reports the comment as an issue update.
            self._event(
                "jira:issue_updated",
                author,
                issue_nid=issue.nid,
                comment_id=c.id,
                issue_event_type_name="issue_commented",
            )
            return c

    def update_comment(self, comment_id: int, body: str, *, author: str | None = None) -> SimComment:
        with self.lock:
            c = self.comments[comment_id]
            c.body, c.updated, c.update_author = body, self.now, self._resolve_user(author)
            self.issues[c.issue_nid].updated = self.now
            self.version += 1
            self._event("comment_updated", c.update_author, issue_nid=c.issue_nid, comment_id=c.id)
            return c

    def delete_comment(self, comment_id: int, *, author: str | None = None) -> SimComment:
        with self.lock:
            c = self.comments[comment_id]
            c.deleted_at = self.now
            self.issues[c.issue_nid].updated = self.now
            self.version += 1
            self._event("comment_deleted", self._resolve_user(author), issue_nid=c.issue_nid, comment_id=c.id)
            return c

    def delete_issue(self, issue_id: str | int, *, author: str | None = None) -> SimIssue:
        """Delete an issue; its worklogs count as deleted at the same instant."""
        with self.lock:
            issue = self.issue(issue_id)
            if issue.issue_type == EPIC_TYPE:
                self._detach_children(issue, self._resolve_user(author))
            issue.deleted_at = self.now
            for wl in issue.worklogs:
                if wl.deleted_at is None:
                    wl.deleted_at = self.now
            self.version += 1
            self._event(
                "jira:issue_deleted",
                self._resolve_user(author),
                issue_nid=issue.nid,
                issue_event_type_name="issue_deleted",
            )
            return issue

    def move_issue(self, issue_id: str | int, to_project: str, *, author: str | None = None) -> SimHistory:
        """Move an issue to another project: new key, same id; the old key keeps resolving."""
        with self.lock:
            issue = self.issue(issue_id)
            target = self.projects[to_project]
            new_key = f"{to_project}-{target.next_number}"
            target.next_number += 1
            items = [
                ChangeItem(F_PROJECT, issue.project_key, to_project),
                ChangeItem(F_KEY, issue.key, new_key),
            ]
            old_status = STATUSES[issue.status]
            if old_status.id not in target.workflow.status_ids:
                mapped = {
                    "new": target.workflow.todo,
                    "indeterminate": target.workflow.in_progress,
                    "done": target.workflow.done,
                }[old_status.category]
                items.append(ChangeItem(F_STATUS, old_status.id, mapped))
            if issue.sprints:  # sprints belong to the old project's board
                items.append(ChangeItem(F_SPRINT, issue.sprints, ()))
            if issue.fix_versions:  # so do versions
                items.append(ChangeItem(F_FIX_VERSIONS, issue.fix_versions, ()))
            if issue.epic is not None and self.issues[issue.epic].project_key != to_project:
                items.append(ChangeItem(F_EPIC, issue.epic, None))
            author = self._resolve_user(author)
            if issue.issue_type == EPIC_TYPE:
                self._detach_children(issue, author)
            h = self._append_history(issue, author, items)
            self.key_index[new_key] = issue.nid
            self._issue_updated(issue, author, h)
            return h

    def set_fix_versions(
        self, issue_id: str | int, version_ids: Iterable[int], *, author: str | None = None
    ) -> SimHistory | None:
        """Jira writes one changelog item per version added or removed."""
        with self.lock:
            issue = self.issue(issue_id)
            new = tuple(version_ids)
            if new == issue.fix_versions:
                return None
            items, cur = [], issue.fix_versions
            for v in [x for x in cur if x not in new]:
                nxt = tuple(x for x in cur if x != v)
                items.append(ChangeItem(F_FIX_VERSIONS, cur, nxt))
                cur = nxt
            for v in [x for x in new if x not in cur]:
                nxt = cur + (v,)
                items.append(ChangeItem(F_FIX_VERSIONS, cur, nxt))
                cur = nxt
            items[-1] = ChangeItem(F_FIX_VERSIONS, items[-1].old, new)  # keep the requested order
            author = self._resolve_user(author)
            h = self._append_history(issue, author, items)
            self._issue_updated(issue, author, h)
            return h

    def set_epic(self, issue_id: str | int, epic_id: int | None, *, author: str | None = None) -> SimHistory | None:
        with self.lock:
            issue = self.issue(issue_id)
            if epic_id == issue.epic:
                return None
            if epic_id is not None and self.issues[epic_id].issue_type != EPIC_TYPE:
                raise ValueError(f"issue {epic_id} is not an epic")
            author = self._resolve_user(author)
            h = self._append_history(issue, author, [ChangeItem(F_EPIC, issue.epic, epic_id)])
            self._issue_updated(issue, author, h)
            return h

    def _detach_children(self, epic: SimIssue, author: str) -> None:
        """An epic deleted or moved away takes its children's link with it."""
        for child in list(self.live_issues()):
            if child.epic == epic.nid and child.nid != epic.nid:
                self.set_epic(child.nid, None, author=author)

    def create_version(self, project_key: str, name: str, *, start: date | None = None,
                       release: date | None = None) -> SimVersion:
        with self.lock:
            v = SimVersion(self._next_version, project_key, name, start=start, release=release)
            self._next_version += 1
            self.versions[v.id] = v
            self.version += 1
            self._event("jira:version_created", SERVICE_USER.id, version_id=v.id)
            return v

    def release_version(self, version_id: int, *, on: date | None = None) -> SimVersion:
        with self.lock:
            v = self.versions[version_id]
            v.released, v.release = True, on or v.release or self.now.date()
            self.version += 1
            self._event("jira:version_released", SERVICE_USER.id, version_id=v.id)
            return v

    def update_version(self, version_id: int, *, release: date | None = None, start: date | None = None,
                       name: str | None = None) -> SimVersion:
        with self.lock:
            v = self.versions[version_id]
            v.release = release if release is not None else v.release
            v.start = start if start is not None else v.start
            v.name = name if name is not None else v.name
            self.version += 1
            self._event("jira:version_updated", SERVICE_USER.id, version_id=v.id)
            return v

    def delete_version(self, version_id: int) -> SimVersion:
        """Jira removes a deleted version from every issue's fix versions."""
        with self.lock:
            v = self.versions[version_id]
            for issue in list(self.live_issues()):
                if version_id in issue.fix_versions:
                    self.set_fix_versions(issue.nid, tuple(x for x in issue.fix_versions if x != version_id))
            v.deleted = True
            self.version += 1
            self._event("jira:version_deleted", SERVICE_USER.id, version_id=v.id)
            return v

    def mutate_plans(self, rng_seed: int, fraction: float = 0.05) -> list[JiraEvent]:
        """Plan changes (issue 9) apart from `mutate`, on their own random stream: reassignments,
        fix versions changed, epics linked and unlinked, a version released, one created."""
        rng = random.Random(f"{rng_seed}:plans")
        with self.lock:
            first = len(self.events)
            live = sorted(i.nid for i in self.live_issues() if i.issue_type != EPIC_TYPE)
            user_ids = [u for u in self.users if u != SERVICE_USER.id]
            for nid in rng.sample(live, min(len(live), max(1, round(len(live) * fraction)))):
                issue = self.issues[nid]
                action = rng.choice(("assign", "assign", "versions", "epic"))
                author = rng.choice(user_ids)
                if action == "assign":
                    self.set_assignee(nid, rng.choice([u for u in user_ids if u != issue.assignee] + [None]),
                                      author=author)
                elif action == "versions":
                    open_ = [v.id for v in self.project_versions(issue.project_key) if not v.released]
                    self.set_fix_versions(nid, tuple(rng.sample(open_, rng.randint(0, min(1, len(open_))))),
                                          author=author)
                else:
                    epics = [i.nid for i in self.live_issues()
                             if i.issue_type == EPIC_TYPE and i.project_key == issue.project_key]
                    self.set_epic(nid, rng.choice(epics + [None]) if epics else None, author=author)
            for k in sorted(self.projects):
                due = sorted((v for v in self.project_versions(k) if not v.released and v.release),
                             key=lambda v: v.id)
                if due and rng.random() < 0.5:
                    self.release_version(due[0].id, on=self.now.date())
            k = rng.choice(sorted(self.projects))
            self.create_version(k, f"{len(self.project_versions(k)) + 1}.0-next",
                                start=self.now.date() + timedelta(days=7))
            return self.events[first:]

    def create_sprint(self, board_id: int, name: str, *, goal: str = "") -> SimSprint:
        with self.lock:
            s = self._add_sprint(board_id, name, "future", None, None, None)
            s.goal, s.created = goal, self.now
            self.version += 1
            self._event("sprint_created", SERVICE_USER.id, sprint_id=s.id)
            return s

    def update_sprint(self, sprint_id: int, *, name: str | None = None, goal: str | None = None) -> SimSprint:
        with self.lock:
            s = self.sprints[sprint_id]
            s.name = name if name is not None else s.name
            s.goal = goal if goal is not None else s.goal
            self.version += 1
            self._event("sprint_updated", SERVICE_USER.id, sprint_id=s.id)
            return s

    def delete_sprint(self, sprint_id: int) -> SimSprint:
        """Delete a future sprint (Jira refuses to delete started ones); its issues go to the backlog."""
        with self.lock:
            s = self.sprints[sprint_id]
            if s.state != "future":
                raise ValueError(f"sprint {sprint_id} has started and cannot be deleted")
            for issue in list(self.live_issues()):
                if sprint_id in issue.sprints:
                    self.set_sprints(issue.nid, tuple(x for x in issue.sprints if x != sprint_id))
            self._event("sprint_deleted", SERVICE_USER.id, sprint_id=s.id)
            # The sprint object stays in the catalogue only for rendering the deletion event.
            s.state = "deleted"
            self.version += 1
            return s

    def start_sprint(self, sprint_id: int, *, days: int = 14) -> SimSprint:
        with self.lock:
            s = self.sprints[sprint_id]
            s.state, s.start, s.end = "active", self.now, self.now + timedelta(days=days)
            self.version += 1
            self._event("sprint_started", SERVICE_USER.id, sprint_id=s.id)
            return s

    def close_sprint(self, sprint_id: int) -> SimSprint:
        """Close a sprint; unfinished issues are carried into the board's next future sprint."""
        with self.lock:
            s = self.sprints[sprint_id]
            s.state, s.complete = "closed", self.now
            later = [x for x in self.board_sprints(s.board_id) if x.state == "future"]
            nxt = (
                later[0]
                if later
                else self._add_sprint(s.board_id, f"{s.name} (next)", "future", None, None, None)
            )
            self.version += 1
            self._event("sprint_closed", SERVICE_USER.id, sprint_id=s.id)
            for issue in list(self.live_issues()):
                if issue.sprints and issue.sprints[-1] == s.id and issue.status_category != "done":
                    self.set_sprints(issue.nid, issue.sprints + (nxt.id,))
            return s

    # ------------------------------------------------------------------ random mutation
    def mutate(self, rng_seed: int, fraction: float = 0.01) -> list[JiraEvent]:
        """Change about `fraction` of the live issues at the current world time; returns the events."""
        rng = random.Random(rng_seed)
        with self.lock:
            first = len(self.events)
            live = sorted(i.nid for i in self.live_issues())
            if not live:
                return []
            k = max(1, round(len(live) * fraction))
            chosen = rng.sample(live, min(k, len(live)))
            user_ids = [u for u in self.users if u != SERVICE_USER.id]
            for nid in chosen:
                issue = self.issues[nid]
                if issue.deleted_at is not None:
                    continue
                action = rng.choices(
                    (
                        "transition",
                        "points",
                        "worklog",
                        "edit_worklog",
                        "delete_worklog",
                        "comment",
                        "labels",
                    ),
                    (5, 2, 3, 1, 1, 2, 1),
                )[0]
                author = rng.choice(user_ids)
                wf = self.projects[issue.project_key].workflow
                if action == "transition":
                    order = [wf.todo, wf.in_progress] + ([wf.review] if wf.review else []) + [wf.done]
                    cur = issue.status
                    if cur == wf.done:
                        target = wf.in_progress  # reopened
                    elif cur == wf.pause:
                        target = wf.in_progress
                    elif cur == wf.in_progress and rng.random() < 0.2:
                        target = wf.pause
                    else:
                        target = order[min(order.index(cur) + 1, len(order) - 1)] if cur in order else wf.done
                    self.add_transition(nid, target, author=author)
                elif action == "points":
                    self.set_story_points(
                        nid, rng.choice([p for p in POINT_VALUES if p != issue.points]), author=author
                    )
                elif action == "worklog" or (
                    action in ("edit_worklog", "delete_worklog") and not issue.live_worklogs
                ):
                    self.add_worklog(nid, 900 * rng.randint(1, 16), author=author, comment="Progress")
                elif action == "edit_worklog":
                    self.update_worklog(
                        rng.choice(issue.live_worklogs).id, 900 * rng.randint(1, 16), author=author
                    )
                elif action == "delete_worklog":
                    self.delete_worklog(rng.choice(issue.live_worklogs).id, author=author)
                elif action == "comment":
                    self.add_comment(nid, rng.choice(_COMMENT_BODIES), author=author)
                else:
                    self.change_labels(nid, add=[rng.choice(_LABELS)], author=author)
            keys = sorted(self.projects)
            for _ in range(max(1, k // 5)):
                self.create_issue(
                    rng.choice(keys),
                    issue_type=rng.choice(("Story", "Task", "Bug")),
                    reporter=rng.choice(user_ids),
                    points=rng.choice((None, 1.0, 2.0, 3.0)),
                )
            live = sorted(i.nid for i in self.live_issues())
            self.delete_issue(rng.choice(live))
            if len(keys) > 1 and rng.random() < 0.3:
                victim = self.issues[rng.choice(sorted(i.nid for i in self.live_issues()))]
                self.move_issue(victim.nid, rng.choice([p for p in keys if p != victim.project_key]))
            return self.events[first:]

    # ------------------------------------------------------------------ webhooks registry
    def register_webhook(
        self,
        name: str,
        url: str,
        events: list[str],
        *,
        jql_filter: str | None = None,
        exclude_body: bool = False,
        secret: str | None = None,
    ) -> WebhookRegistration:
        with self.lock:
            reg = WebhookRegistration(
                self._next_webhook,
                name,
                url,
                list(events),
                jql_filter,
                exclude_body,
                secret,
                len(self.events),
                self.now,
            )
            self._next_webhook += 1
            self.webhooks[reg.id] = reg
            return reg


def draft_has(draft: _Draft, field_name: str) -> bool:
    return any(item.field == field_name for _, _, items in draft.events for item in items)

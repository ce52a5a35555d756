"""Normalised records: what every connector and webhook handler hands to the store.

This is the one shape between a tracker's JSON and a stored row (STYLE.md: one path
from JSON to row). A sync page and a webhook delivery both become `ItemBundle`s and go
through `trackpulse.store.writer.apply_bundles`.

Instants are timezone-aware UTC datetimes. Ids are strings as the tracker gives them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

Category = Literal["todo", "in_progress", "done"]


@dataclass(slots=True)
class ItemRecord:
    """One work item (Jira issue, Trello card) in its current state."""

    source: str
    item_id: str  # the tracker's stable id (Jira issue id, Trello card id); keys change, ids do not
    key: str  # Jira key "ABC-12"; Trello shortLink
    project: str  # Jira project key; Trello board id
    type: str
    status_id: str
    status_name: str
    status_category: Category
    created: datetime
    updated: datetime
    raw: dict[str, Any]
    summary: str = ""
    priority: str | None = None
    is_defect: bool = False
    points: float | None = None
    sprint_ids: tuple[str, ...] = ()
    resolved_at: datetime | None = None  # the tracker's own resolution date, informational only
    reporter: str | None = None  # stable user id
    reporter_name: str | None = None
    assignee: str | None = None
    archived: bool = False  # Trello closed card: kept in the store, left out of metrics
    # METRICS.md §9 and §13: who it is assigned to now (display names; Jira: zero or one, Trello:
    # the card's members), its fix versions (tracker ids), its epic (key) and whether it is one.
    assignees: tuple[str, ...] = ()
    fix_versions: tuple[str, ...] = ()
    epic: str | None = None
    is_epic: bool = False


@dataclass(slots=True)
class TransitionRecord:
    at: datetime
    seq: int
    from_status_id: str | None  # None: a creation record (Trello createCard)
    to_status_id: str
    from_name: str | None = None
    to_name: str | None = None


@dataclass(slots=True)
class SprintChangeRecord:
    at: datetime
    seq: int
    from_sprint_ids: tuple[str, ...]
    to_sprint_ids: tuple[str, ...]


@dataclass(slots=True)
class EstimateChangeRecord:
    at: datetime
    seq: int
    from_points: float | None
    to_points: float | None


@dataclass(slots=True)
class AssigneeChangeRecord:
    """A change of an item's assignee set, as a delta (display names): Jira's `assignee`
    changelog item removes the old person and adds the new one; a Trello member action adds or
    removes one member. The loader replays deltas backwards from the current set."""

    at: datetime
    seq: int
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()


@dataclass(slots=True)
class HistoryRecord:
    """One raw history entry (Jira changelog history, Trello action) and what it derives.

    The raw entry is kept so a mapping change (another story-points field) can be
    re-derived without downloading again.
    """

    item_id: str
    history_id: str
    at: datetime
    author: str | None
    raw: dict[str, Any]
    transitions: list[TransitionRecord] = field(default_factory=list)
    sprint_changes: list[SprintChangeRecord] = field(default_factory=list)
    estimate_changes: list[EstimateChangeRecord] = field(default_factory=list)
    assignee_changes: list[AssigneeChangeRecord] = field(default_factory=list)


@dataclass(slots=True)
class WorklogRecord:
    worklog_id: str
    item_id: str
    author: str  # display name (reports show it)
    author_id: str | None
    started: datetime
    seconds: int
    updated: datetime


@dataclass(slots=True)
class CommentRecord:
    """Comment metadata only: the body is never stored."""

    comment_id: str
    item_id: str
    author: str | None  # stable user id
    author_name: str | None
    created: datetime
    updated: datetime | None = None


@dataclass(slots=True)
class ItemBundle:
    """An item with what was fetched alongside it.

    `None` for a child list means "not fetched in this bundle, leave the store's rows";
    a list means "this is the complete set": rows not in it are marked deleted
    (worklogs, comments) — histories are append-only and never removed.
    """

    item: ItemRecord | None
    item_id: str
    histories: list[HistoryRecord] | None = None
    worklogs: list[WorklogRecord] | None = None
    comments: list[CommentRecord] | None = None
    # Extra history/worklog/comment rows to add without claiming completeness (webhooks).
    partial_worklogs: list[WorklogRecord] = field(default_factory=list)
    partial_comments: list[CommentRecord] = field(default_factory=list)


@dataclass(slots=True)
class StatusRecord:
    status_id: str
    name: str
    category: Category


@dataclass(slots=True)
class ProjectRecord:
    key: str
    project_id: str
    name: str


@dataclass(slots=True)
class BoardRecord:
    board_id: str
    name: str
    type: str
    project: str | None = None


@dataclass(slots=True)
class SprintRecord:
    sprint_id: str
    board_id: str | None
    name: str
    state: str  # closed | active | future (lowercase)
    start: datetime | None
    end: datetime | None
    complete: datetime | None
    goal: str | None = None


@dataclass(slots=True)
class VersionRecord:
    """A Jira project version (release); dates stay the tracker's "YYYY-MM-DD" days."""

    version_id: str
    project: str  # the key of the project that owns it
    name: str
    start: str | None = None
    release_date: str | None = None
    released: bool = False
    archived: bool = False
    raw: dict[str, Any] | None = None

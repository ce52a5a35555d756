"""Jira JSON → normalised records (METRICS.md §1). Pure functions: no I/O, no clock.

Every path from Jira's JSON to a stored row goes through here: sync pages (Cloud and Data
Center), webhook deliveries and `rederive` (which replays stored raw payloads). What varies per
site (which custom field holds story points, which the sprints, the status catalogue, which
issue types are defects) travels in one `JiraMapping` value, persisted by the sync so webhooks
and re-derivation see the same mapping as the last sync did.

Jira facts handled here (research/API_NOTES.md §1.6-1.8, §2):
- times carry `+hhmm` offsets without a colon (`2020-06-12T08:13:13.360+0800`), the changelog
  bulk feed may give epoch seconds; everything becomes tz-aware UTC;
- users are `accountId` on Cloud, `key`/`name` on Server/Data Center;
- the Sprint field is a list of objects on Cloud and a list of Java `toString` strings
  (`...Sprint@1a2b[id=4,rapidViewId=2,state=ACTIVE,name=...]`) on Data Center;
- Sprint changelog items carry `"76, 79"` id lists; story points changelog items carry their
  values in `fromString`/`toString`; status items carry status ids in `from`/`to`.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from trackpulse.records import (
    AssigneeChangeRecord,
    BoardRecord,
    Category,
    CommentRecord,
    EstimateChangeRecord,
    HistoryRecord,
    ItemRecord,
    ProjectRecord,
    SprintChangeRecord,
    SprintRecord,
    StatusRecord,
    TransitionRecord,
    VersionRecord,
    WorklogRecord,
)

SPRINT_SCHEMA = "com.pyxis.greenhopper.jira:gh-sprint"
EPIC_LINK_SCHEMA = "com.pyxis.greenhopper.jira:gh-epic-link"
EPIC_LEVEL = 1  # Cloud issue type hierarchy: 0 standard, 1 epic, -1 subtask
STORY_POINT_NAMES = ("story points", "story point estimate")
_CATEGORIES: dict[str, Category] = {"new": "todo", "indeterminate": "in_progress", "done": "done"}


class JiraPayloadError(ValueError):
    """A payload lacks what every Jira response of its kind has (id, created, ...)."""


# --------------------------------------------------------------------------- time and users


def parse_time(value: Any) -> datetime:
    """Jira's instants → tz-aware UTC.

    Accepts ISO strings with `+hhmm`, `+hh:mm` or `Z` offsets and epoch numbers (seconds, or
    milliseconds when large: the changelog bulk feed and webhook `timestamp`s use both)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = value / 1000.0 if value > 10**11 else float(value)
        return datetime.fromtimestamp(seconds, tz=UTC)
    if isinstance(value, str) and value:
        text = value.strip()
        if text.isdigit():
            return parse_time(int(text))
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError as exc:
            raise JiraPayloadError(f"unreadable Jira time {value!r}") from exc
        tz = parsed.tzinfo
        if tz is UTC:  # "+0000" and "Z" parse to the UTC singleton: nothing to convert
            return parsed
        if tz is None:
            # Jira always sends an offset; a bare time is most safely read as UTC.
            return parsed.replace(tzinfo=UTC)
        return parsed.astimezone(UTC)
    raise JiraPayloadError(f"unreadable Jira time {value!r}")


def parse_time_or_none(value: Any) -> datetime | None:
    if value in (None, "", "<null>"):
        return None
    return parse_time(value)


def user_id(user: Mapping[str, Any] | None) -> str | None:
    """The stable id of a user object: accountId (Cloud), else key, else name (Server/DC)."""
    if not user:
        return None
    for k in ("accountId", "key", "name"):
        v = user.get(k)
        if v:
            return str(v)
    return None


def user_name(user: Mapping[str, Any] | None) -> str | None:
    if not user:
        return None
    return user.get("displayName") or user.get("name") or user_id(user)


def slim_user(user: Any) -> Any:
    """Keep who, drop avatars and e-mail: raw payloads stay small and hold no addresses."""
    if not isinstance(user, dict):
        return user
    return {k: user[k] for k in ("accountId", "key", "name", "displayName") if k in user}


def category_of(status_category_key: str | None) -> Category | None:
    return _CATEGORIES.get(status_category_key or "")


# --------------------------------------------------------------------------- the mapping


@dataclass(frozen=True)
class JiraMapping:
    """Everything site-specific the mapping needs, discovered by a sync and persisted.

    `story_points_candidates` are every field that could hold story points (board estimation
    fields, fields named like it): the sync requests all of them, so switching
    `story_points_field` later is re-derived from stored raw payloads without downloading.
    """

    deployment: str = "Cloud"  # Cloud | Server
    story_points_field: str | None = None
    story_points_name: str | None = None
    story_points_candidates: tuple[str, ...] = ()
    sprint_field: str | None = None
    sprint_field_name: str = "Sprint"
    defect_types: frozenset[str] = frozenset({"Bug", "Defect", "缺陷"})
    statuses: Mapping[str, tuple[str, Category]] = field(default_factory=dict)
    field_names: Mapping[str, str] = field(default_factory=dict)  # id -> display name
    epic_link_field: str | None = None  # Data Center "Epic Link" (schema custom gh-epic-link)

    def derivation_hash(self) -> str:
        """What shapes derived rows: a change triggers `rederive`."""
        key = json.dumps(
            {
                "sp": self.story_points_field,
                "sp_name": self.story_points_name,
                "sprint": self.sprint_field,
                "defects": sorted(self.defect_types),
                "epic": self.epic_link_field,
            },
            sort_keys=True,
        )
        return hashlib.sha256(key.encode()).hexdigest()[:16]

    def to_json(self) -> str:
        return json.dumps(
            {
                "deployment": self.deployment,
                "story_points_field": self.story_points_field,
                "story_points_name": self.story_points_name,
                "story_points_candidates": list(self.story_points_candidates),
                "sprint_field": self.sprint_field,
                "sprint_field_name": self.sprint_field_name,
                "defect_types": sorted(self.defect_types),
                "statuses": {k: list(v) for k, v in self.statuses.items()},
                "field_names": dict(self.field_names),
                "epic_link_field": self.epic_link_field,
            },
            ensure_ascii=False,
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str) -> JiraMapping:
        d = json.loads(text)
        return cls(
            deployment=d.get("deployment", "Cloud"),
            story_points_field=d.get("story_points_field"),
            story_points_name=d.get("story_points_name"),
            story_points_candidates=tuple(d.get("story_points_candidates") or ()),
            sprint_field=d.get("sprint_field"),
            sprint_field_name=d.get("sprint_field_name") or "Sprint",
            defect_types=frozenset(d.get("defect_types") or ()),
            statuses={k: (v[0], v[1]) for k, v in (d.get("statuses") or {}).items()},
            field_names=d.get("field_names") or {},
            epic_link_field=d.get("epic_link_field"),
        )

    def with_defect_types(self, types: Iterable[str]) -> JiraMapping:
        return replace(self, defect_types=frozenset(types))


def discover_fields(
    fields: list[dict[str, Any]],
    board_estimation_fields: Iterable[str] = (),
    configured_story_points: str = "auto",
) -> tuple[str | None, str | None, tuple[str, ...], str | None, str]:
    """From `/field` (and the boards' estimation settings) find the story-points field and the
    Sprint field. Returns (sp_id, sp_name, sp_candidates, sprint_id, sprint_name).

    Preference for story points: the configured id; else the first board estimation field that
    exists in `/field`; else a field whose schema is a number and whose name is "Story Points"
    or "Story point estimate" (Cloud team-managed projects use the latter)."""
    by_id = {f["id"]: f for f in fields if "id" in f}
    named = [
        f["id"]
        for f in fields
        if str(f.get("name", "")).strip().lower() in STORY_POINT_NAMES
        and (f.get("schema") or {}).get("type") in (None, "number")
    ]
    board = [fid for fid in board_estimation_fields if fid]
    candidates: list[str] = []
    for fid in ([configured_story_points] if configured_story_points != "auto" else []) + board + named:
        if fid not in candidates:
            candidates.append(fid)
    if configured_story_points != "auto":
        sp: str | None = configured_story_points
    else:
        sp = next((fid for fid in board if fid in by_id), None) or (named[0] if named else None)
        # A board estimating by a field /field does not list (permissions) is still the best hint.
        sp = sp or (board[0] if board else None)
    sp_name = str(by_id[sp]["name"]) if sp and sp in by_id else None
    sprint = next((f for f in fields if (f.get("schema") or {}).get("custom") == SPRINT_SCHEMA), None)
    sprint_id = sprint["id"] if sprint else None
    sprint_name = str(sprint.get("name") or "Sprint") if sprint else "Sprint"
    return sp, sp_name, tuple(candidates[:8]), sprint_id, sprint_name


# --------------------------------------------------------------------------- sprints

_DC_SPRINT_KEYS = (
    "id",
    "rapidViewId",
    "state",
    "name",
    "goal",
    "startDate",
    "endDate",
    "completeDate",
    "activatedDate",
    "sequence",
    "autoStartStop",
    "synced",
    "incompleteIssuesDestinationId",
)
_DC_SPLIT = re.compile(r",(?=(?:" + "|".join(_DC_SPRINT_KEYS) + r")=)")


def parse_dc_sprint(text: str) -> dict[str, str | None]:
    """`com.atlassian.greenhopper.service.sprint.Sprint@4263b21c[id=444,rapidViewId=158,...]`
    → {"id": "444", "rapidViewId": "158", ...}; `<null>` becomes None.

    Names may contain commas, so the text is split only before a known `key=`."""
    start, end = text.find("["), text.rfind("]")
    if start < 0 or end < start:
        raise JiraPayloadError(f"unreadable Data Center sprint value {text[:80]!r}")
    out: dict[str, str | None] = {}
    for part in _DC_SPLIT.split(text[start + 1 : end]):
        k, _, v = part.partition("=")
        out[k] = None if v == "<null>" else v
    return out


def sprint_refs(value: Any) -> list[dict[str, Any]]:
    """The Sprint field's value (Cloud objects or DC strings) → list of sprint dicts with
    `id`, `name`, `state` (lowercase), `boardId`, dates as given."""
    if not value:
        return []
    items = value if isinstance(value, list) else [value]
    out: list[dict[str, Any]] = []
    for v in items:
        if isinstance(v, dict):
            if v.get("id") is None:
                continue
            out.append(
                {
                    **v,
                    "id": str(v["id"]),
                    "state": str(v.get("state") or "").lower(),
                    "boardId": v.get("boardId", v.get("originBoardId")),
                }
            )
        elif isinstance(v, str) and "[" in v:
            d = parse_dc_sprint(v)
            if d.get("id") is None:
                continue
            out.append(
                {
                    "id": str(d["id"]),
                    "name": d.get("name") or "",
                    "state": (d.get("state") or "").lower(),
                    "boardId": d.get("rapidViewId"),
                    "goal": d.get("goal"),
                    "startDate": d.get("startDate"),
                    "endDate": d.get("endDate"),
                    "completeDate": d.get("completeDate"),
                }
            )
    return out


def sprint_id_list(text: Any) -> tuple[str, ...]:
    """A Sprint changelog `from`/`to` value ("76, 79", "", None) → ("76", "79")."""
    if text is None:
        return ()
    return tuple(p.strip() for p in str(text).split(",") if p.strip())


def map_sprint(obj: Mapping[str, Any], board_id: str | None = None) -> SprintRecord:
    b = obj.get("originBoardId", obj.get("boardId", obj.get("rapidViewId", board_id)))
    return SprintRecord(
        sprint_id=str(obj["id"]),
        board_id=str(b) if b is not None else board_id,
        name=str(obj.get("name") or ""),
        state=str(obj.get("state") or "").lower(),
        start=parse_time_or_none(obj.get("startDate")),
        end=parse_time_or_none(obj.get("endDate")),
        complete=parse_time_or_none(obj.get("completeDate")),
        goal=obj.get("goal") or None,
    )


# --------------------------------------------------------------------------- catalogue


def map_status(obj: Mapping[str, Any]) -> StatusRecord:
    cat = category_of((obj.get("statusCategory") or {}).get("key")) or "todo"
    return StatusRecord(status_id=str(obj["id"]), name=str(obj.get("name") or ""), category=cat)


def map_project(obj: Mapping[str, Any]) -> ProjectRecord:
    return ProjectRecord(
        key=str(obj["key"]), project_id=str(obj.get("id") or ""), name=str(obj.get("name") or "")
    )


def map_board(obj: Mapping[str, Any]) -> BoardRecord:
    loc = obj.get("location") or {}
    project = loc.get("projectKey") or None
    return BoardRecord(
        board_id=str(obj["id"]),
        name=str(obj.get("name") or ""),
        type=str(obj.get("type") or ""),
        project=project,
    )


# --------------------------------------------------------------------------- issues


def parse_points(value: Any) -> float | None:
    """Story points as Jira gives them: number, numeric string, "" or null (null is not 0)."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    text = str(value).strip()
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        return None


def slim_issue(issue: Mapping[str, Any]) -> dict[str, Any]:
    """The raw issue we keep: every requested field except comment and worklog pages (their
    rows live in their own tables and comment bodies are never stored), users slimmed."""
    fields = dict(issue.get("fields") or {})
    fields.pop("comment", None)
    fields.pop("worklog", None)
    for k in ("reporter", "assignee", "creator"):
        if k in fields:
            fields[k] = slim_user(fields[k])
    return {"id": str(issue["id"]), "key": issue.get("key"), "fields": fields}


def map_issue(source: str, issue: Mapping[str, Any], m: JiraMapping) -> ItemRecord:
    """One issue (search page, bulkfetch, webhook or stored raw) → ItemRecord."""
    if "id" not in issue or "fields" not in issue:
        raise JiraPayloadError(f"issue payload without id/fields: {str(issue)[:120]}")
    f = issue["fields"]
    status = f.get("status") or {}
    status_id = str(status.get("id") or "")
    # The issue's own status category is the truth for its current state (fixtures show a
    # status named 已完成 in the `new` category); the catalogue is the fallback.
    cat = category_of((status.get("statusCategory") or {}).get("key"))
    if cat is None:
        cat = m.statuses.get(status_id, ("", "todo"))[1]
    itype = str((f.get("issuetype") or {}).get("name") or "")
    project = f.get("project") or {}
    sprints = sprint_refs(f.get(m.sprint_field)) if m.sprint_field else []
    if not sprints and (f.get("sprint") or f.get("closedSprints")):
        # The agile API's own fields, when the Sprint custom field is not known.
        sprints = sprint_refs(list(f.get("closedSprints") or []) + ([f["sprint"]] if f.get("sprint") else []))
    created = f.get("created")
    if not created:
        raise JiraPayloadError(f"issue {issue.get('key') or issue['id']} has no created time")
    return ItemRecord(
        source=source,
        item_id=str(issue["id"]),
        key=str(issue.get("key") or ""),
        project=str(project.get("key") or ""),
        type=itype,
        status_id=status_id,
        status_name=str(status.get("name") or m.statuses.get(status_id, ("", ""))[0]),
        status_category=cat,
        created=parse_time(created),
        updated=parse_time(f.get("updated") or created),
        raw=slim_issue(issue),
        summary=str(f.get("summary") or ""),
        priority=(f.get("priority") or {}).get("name"),
        is_defect=itype in m.defect_types,
        points=parse_points(f.get(m.story_points_field)) if m.story_points_field else None,
        sprint_ids=tuple(s["id"] for s in sprints),
        resolved_at=parse_time_or_none(f.get("resolutiondate")),
        reporter=user_id(f.get("reporter")),
        reporter_name=user_name(f.get("reporter")),
        assignee=user_id(f.get("assignee")),
        assignees=(name,) if (name := user_name(f.get("assignee"))) else (),
        fix_versions=tuple(str(v["id"]) for v in f.get("fixVersions") or () if isinstance(v, dict) and "id" in v),
        epic=issue_epic(f, m),
        is_epic=is_epic_type(f.get("issuetype")),
    )


def is_epic_type(issuetype: Any) -> bool:
    """Cloud gives the type's hierarchy level; Data Center only its name."""
    if not isinstance(issuetype, dict):
        return False
    level = issuetype.get("hierarchyLevel")
    if level is not None:
        return bool(level == EPIC_LEVEL)
    return str(issuetype.get("name") or "").casefold() == "epic"


def issue_epic(f: Mapping[str, Any], m: JiraMapping) -> str | None:
    """The key of an issue's epic: Cloud's `parent` when the parent's type is at the Epic level
    (a sub-task's parent is a story, not an epic), else the "Epic Link" field (Data Center, and
    Cloud sites from before `parent` replaced it)."""
    parent = f.get("parent")
    if (isinstance(parent, dict) and parent.get("key")
            and is_epic_type((parent.get("fields") or {}).get("issuetype"))):
        return str(parent["key"])
    if m.epic_link_field:
        link = f.get(m.epic_link_field)
        if isinstance(link, str) and link:
            return link
        if isinstance(link, dict) and link.get("key"):
            return str(link["key"])
    return None


def map_version(obj: Mapping[str, Any], project: str) -> VersionRecord:
    """One entry of `/project/{key}/versions` (or a version webhook's `version`)."""
    if "id" not in obj:
        raise JiraPayloadError(f"version of project {project} without id")
    return VersionRecord(
        version_id=str(obj["id"]), project=project, name=str(obj.get("name") or ""),
        start=_day(obj.get("startDate")), release_date=_day(obj.get("releaseDate")),
        released=bool(obj.get("released")), archived=bool(obj.get("archived")),
        raw={k: obj[k] for k in ("id", "name", "description", "projectId", "startDate", "releaseDate",
                                 "released", "archived", "overdue") if k in obj},
    )


def _day(value: Any) -> str | None:
    """A version date: "YYYY-MM-DD" (Jira sends the day; a full timestamp is cut to its day)."""
    if not value:
        return None
    return str(value)[:10]


def issue_sprints(issue: Mapping[str, Any], m: JiraMapping) -> list[dict[str, Any]]:
    """Sprints named in an issue's Sprint field (for sprints no board listing showed us)."""
    f = issue.get("fields") or {}
    return sprint_refs(f.get(m.sprint_field)) if m.sprint_field else []


# --------------------------------------------------------------------------- changelog


def _is_field(item: Mapping[str, Any], field_id: str | None, field_name: str | None) -> bool:
    fid = item.get("fieldId")
    if fid:
        return fid == field_id
    # Server/DC changelog items have no fieldId: match the display name.
    return bool(field_name) and str(item.get("field", "")).lower() == str(field_name).lower()


def slim_history(history: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": str(history["id"]),
        "created": history.get("created"),
        "author": slim_user(history.get("author")),
        "items": [dict(i) for i in history.get("items") or []],
    }


def map_history(
    item_id: str, history: Mapping[str, Any], m: JiraMapping, at: datetime | None = None
) -> HistoryRecord:
    """One changelog history → HistoryRecord with its transitions, sprint and estimate changes.

    `seq` numbers the derived rows of one kind within the history in item order, so a history
    with two status items (rare, but Jira allows it) keeps both."""
    if "id" not in history:
        raise JiraPayloadError(f"changelog history of issue {item_id} without id")
    when = at or parse_time(history.get("created"))
    rec = HistoryRecord(
        item_id=item_id,
        history_id=str(history["id"]),
        at=when,
        author=user_id(history.get("author")),
        raw=slim_history(history),
    )
    if at is not None and not history.get("created"):
        rec.raw["created"] = when.isoformat()
    for it in history.get("items") or []:
        name = str(it.get("field") or "")
        if (it.get("fieldId") or name) == "status" or name.lower() == "status":
            if it.get("to") in (None, ""):
                continue
            rec.transitions.append(
                TransitionRecord(
                    at=when,
                    seq=len(rec.transitions),
                    from_status_id=str(it["from"]) if it.get("from") not in (None, "") else None,
                    to_status_id=str(it["to"]),
                    from_name=it.get("fromString"),
                    to_name=it.get("toString"),
                )
            )
        elif (it.get("fieldId") or name) == "assignee" or name.lower() == "assignee":
            rec.assignee_changes.append(
                AssigneeChangeRecord(
                    at=when,
                    seq=len(rec.assignee_changes),
                    added=(str(it["toString"]),) if it.get("toString") else (),
                    removed=(str(it["fromString"]),) if it.get("fromString") else (),
                )
            )
        elif m.sprint_field and _is_field(it, m.sprint_field, m.sprint_field_name):
            rec.sprint_changes.append(
                SprintChangeRecord(
                    at=when,
                    seq=len(rec.sprint_changes),
                    from_sprint_ids=sprint_id_list(it.get("from")),
                    to_sprint_ids=sprint_id_list(it.get("to")),
                )
            )
        elif m.story_points_field and _is_field(it, m.story_points_field, m.story_points_name):
            rec.estimate_changes.append(
                EstimateChangeRecord(
                    at=when,
                    seq=len(rec.estimate_changes),
                    from_points=parse_points(it.get("fromString")),
                    to_points=parse_points(it.get("toString")),
                )
            )
    return rec


def changelog_page(issue: Mapping[str, Any]) -> tuple[list[dict[str, Any]], bool]:
    """The changelog embedded in an issue and whether it is complete (total <= len)."""
    cl = issue.get("changelog") or {}
    hist = list(cl.get("histories") or [])
    total = cl.get("total")
    complete = total is None or total <= len(hist)
    return hist, complete


# --------------------------------------------------------------------------- worklogs, comments


def map_worklog(obj: Mapping[str, Any], item_id: str | None = None) -> WorklogRecord:
    author = obj.get("author") or {}
    iid = item_id if item_id is not None else obj.get("issueId")
    if iid is None:
        raise JiraPayloadError(f"worklog {obj.get('id')} without issueId")
    started = parse_time(obj.get("started") or obj.get("created"))
    return WorklogRecord(
        worklog_id=str(obj["id"]),
        item_id=str(iid),
        author=str(user_name(author) or "unknown"),
        author_id=user_id(author),
        started=started,
        seconds=int(obj.get("timeSpentSeconds") or 0),
        updated=parse_time(obj.get("updated") or obj.get("created") or obj.get("started")),
    )


def map_comment(obj: Mapping[str, Any], item_id: str) -> CommentRecord:
    author = obj.get("author") or {}
    return CommentRecord(
        comment_id=str(obj["id"]),
        item_id=item_id,
        author=user_id(author),
        author_name=user_name(author),
        created=parse_time(obj["created"]),
        updated=parse_time_or_none(obj.get("updated")),
    )


def inline_page(issue: Mapping[str, Any], name: str, list_key: str) -> tuple[list[dict[str, Any]], bool]:
    """An issue's inline `worklog`/`comment` page and whether it holds them all."""
    page = (issue.get("fields") or {}).get(name)
    if not isinstance(page, dict):
        return [], False
    values = list(page.get(list_key) or [])
    total = page.get("total")
    return values, total is None or total <= len(values)


def discover_mapping(
    deployment: str, fields: list[dict[str, Any]], statuses: list[StatusRecord], estimation_fields: list[str], *,
    story_points_field: str, defect_types: list[str],
) -> JiraMapping:
    """The mapping a sync applies, derived from the tracker's answers alone (pure, no I/O):
    `/field`, the status catalogue and the boards' estimation fields."""
    sp, sp_name, candidates, sprint_field, sprint_name = discover_fields(fields, estimation_fields, story_points_field)
    epic = next((f for f in fields if (f.get("schema") or {}).get("custom") == EPIC_LINK_SCHEMA), None)
    return JiraMapping(
        deployment=deployment,
        epic_link_field=str(epic["id"]) if epic else None,
        story_points_field=sp,
        story_points_name=sp_name,
        story_points_candidates=candidates,
        sprint_field=sprint_field,
        sprint_field_name=sprint_name,
        defect_types=frozenset(defect_types),
        statuses={st.status_id: (st.name, st.category) for st in statuses},
        field_names={f["id"]: str(f.get("name", "")) for f in fields if f.get("id") in set(candidates) | {sprint_field}},
    )

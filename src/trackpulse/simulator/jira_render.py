"""Rendering the simulated Jira world as the JSON real Jira sends.

Owns every response shape of the Jira simulator: issues (with field selection and the inline
comment/worklog/changelog pages), changelog histories and items, worklogs, comments, users,
statuses, fields, projects, agile boards and sprints, and the Sprint custom field values.
Differences between profiles live here: Cloud users carry `accountId`, DC users `name`/`key`;
v3 rich text is ADF, v2 plain strings; Cloud Sprint values are objects, DC ones Java toString
strings; Cloud changelog items carry `fieldId`.

Timestamps use Jira's `yyyy-MM-dd'T'HH:mm:ss.SSS+hhmm`, rendered in the time zone of the user
who made the change (reporter for the issue's own dates), so payloads mix offsets as real sites
seen by different users do.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from trackpulse.simulator.jira_world import (
    CATEGORY_COLORS,
    CATEGORY_IDS,
    CATEGORY_NAMES,
    F_ASSIGNEE,
    F_EPIC,
    F_FIX_VERSIONS,
    F_KEY,
    F_LABELS,
    F_POINTS,
    F_PRIORITY,
    F_PROJECT,
    F_RESOLUTION,
    F_SPRINT,
    F_STATUS,
    ISSUE_TYPES,
    PRIORITIES,
    RESOLUTION_DONE,
    STATUSES,
    ChangeItem,
    JiraProfile,
    JiraWorld,
    SimComment,
    SimHistory,
    SimIssue,
    SimSprint,
    SimUser,
    SimVersion,
    SimWorklog,
)

ISSUE_EXPAND = "operations,versionedRepresentations,editmeta,changelog,renderedFields"
INLINE_WORKLOG_MAX = 20


@lru_cache(maxsize=64)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


@lru_cache(maxsize=1 << 18)  # a site's instants render again on every page that shows them
def jira_time(dt: datetime, tz_name: str = "Etc/UTC") -> str:
    """Jira's timestamp format: 2026-03-02T17:00:00.000+0800."""
    local = dt.astimezone(_zone(tz_name))
    return f"{local:%Y-%m-%dT%H:%M:%S}.{local.microsecond // 1000:03d}{local:%z}"


def agile_time(dt: datetime, cloud: bool) -> str:
    """Agile sprint dates: Cloud sends UTC with Z, Server an offset with a colon."""
    utc = dt.astimezone(UTC)
    base = f"{utc:%Y-%m-%dT%H:%M:%S}.{utc.microsecond // 1000:03d}"
    return base + ("Z" if cloud else "+00:00")


def epoch_ms(dt: datetime) -> int:
    return int(dt.timestamp() * 1000)


def adf(text: str) -> dict[str, Any]:
    return {
        "type": "doc",
        "version": 1,
        "content": [{"type": "paragraph", "content": [{"type": "text", "text": text}]}],
    }


def adf_to_text(body: Any) -> str:
    """Flatten an ADF document (or a plain string) to text, for comments posted through v3."""
    if isinstance(body, str):
        return body
    if isinstance(body, dict):
        if body.get("type") == "text":
            return str(body.get("text", ""))
        parts = [adf_to_text(c) for c in body.get("content", []) or []]
        sep = "\n" if body.get("type") == "doc" else ""
        return sep.join(parts)
    return ""


def format_time_spent(seconds: int) -> str:
    """Jira's duration string with an 8-hour day and a 5-day week ("1d 2h", "3h 20m")."""
    minutes = seconds // 60
    weeks, minutes = divmod(minutes, 5 * 8 * 60)
    days, minutes = divmod(minutes, 8 * 60)
    hours, minutes = divmod(minutes, 60)
    parts = [f"{n}{u}" for n, u in ((weeks, "w"), (days, "d"), (hours, "h"), (minutes, "m")) if n]
    return " ".join(parts) or "0m"


def format_points(value: float | None) -> str | None:
    if value is None:
        return None
    return str(int(value)) if float(value).is_integer() else str(value)


def _base36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = digits[r] + out
        if n == 0:
            return out


# Field ids of an issue in the order Jira lists them; custom ids are added per profile.
SYSTEM_FIELDS = (
    "statuscategorychangedate",
    "issuetype",
    "timespent",
    "project",
    "fixVersions",
    "aggregatetimespent",
    "resolution",
    "resolutiondate",
    "workratio",
    "watches",
    "lastViewed",
    "created",
    "priority",
    "labels",
    "timeestimate",
    "aggregatetimeoriginalestimate",
    "versions",
    "issuelinks",
    "assignee",
    "updated",
    "status",
    "components",
    "timeoriginalestimate",
    "description",
    "timetracking",
    "security",
    "attachment",
    "aggregatetimeestimate",
    "summary",
    "creator",
    "subtasks",
    "reporter",
    "aggregateprogress",
    "environment",
    "duedate",
    "progress",
    "votes",
    "comment",
    "worklog",
)
AGILE_FIELDS = ("sprint", "closedSprints", "flagged", "epic")
FIELD_NAMES = {
    "statuscategorychangedate": "Status Category Changed",
    "issuetype": "Issue Type",
    "timespent": "Time Spent",
    "project": "Project",
    "fixVersions": "Fix versions",
    "aggregatetimespent": "Σ Time Spent",
    "resolution": "Resolution",
    "resolutiondate": "Resolved",
    "workratio": "Work Ratio",
    "watches": "Watchers",
    "lastViewed": "Last Viewed",
    "created": "Created",
    "priority": "Priority",
    "labels": "Labels",
    "timeestimate": "Remaining Estimate",
    "aggregatetimeoriginalestimate": "Σ Original Estimate",
    "versions": "Affects versions",
    "issuelinks": "Linked Issues",
    "assignee": "Assignee",
    "updated": "Updated",
    "status": "Status",
    "components": "Components",
    "timeoriginalestimate": "Original estimate",
    "description": "Description",
    "timetracking": "Time tracking",
    "security": "Security Level",
    "attachment": "Attachment",
    "aggregatetimeestimate": "Σ Remaining Estimate",
    "summary": "Summary",
    "creator": "Creator",
    "subtasks": "Sub-tasks",
    "reporter": "Reporter",
    "aggregateprogress": "Σ Progress",
    "environment": "Environment",
    "duedate": "Due date",
    "progress": "Progress",
    "votes": "Votes",
    "comment": "Comment",
    "worklog": "Log Work",
    "issuerestriction": "Restrict to",
    "issuekey": "Key",
    "thumbnail": "Images",
    "parent": "Parent",
}
FIELD_SCHEMAS: dict[str, dict[str, Any]] = {
    "summary": {"type": "string"},
    "description": {"type": "string"},
    "environment": {"type": "string"},
    "issuetype": {"type": "issuetype"},
    "project": {"type": "project"},
    "status": {"type": "status"},
    "priority": {"type": "priority"},
    "resolution": {"type": "resolution"},
    "resolutiondate": {"type": "datetime"},
    "created": {"type": "datetime"},
    "updated": {"type": "datetime"},
    "lastViewed": {"type": "datetime"},
    "statuscategorychangedate": {"type": "datetime"},
    "duedate": {"type": "date"},
    "assignee": {"type": "user"},
    "reporter": {"type": "user"},
    "creator": {"type": "user"},
    "labels": {"type": "array", "items": "string"},
    "components": {"type": "array", "items": "component"},
    "fixVersions": {"type": "array", "items": "version"},
    "versions": {"type": "array", "items": "version"},
    "issuelinks": {"type": "array", "items": "issuelinks"},
    "subtasks": {"type": "array", "items": "issuelinks"},
    "attachment": {"type": "array", "items": "attachment"},
    "comment": {"type": "comments-page"},
    "worklog": {"type": "array", "items": "worklog"},
    "timetracking": {"type": "timetracking"},
    "timespent": {"type": "number"},
    "aggregatetimespent": {"type": "number"},
    "timeestimate": {"type": "number"},
    "timeoriginalestimate": {"type": "number"},
    "aggregatetimeestimate": {"type": "number"},
    "aggregatetimeoriginalestimate": {"type": "number"},
    "workratio": {"type": "number"},
    "progress": {"type": "progress"},
    "aggregateprogress": {"type": "progress"},
    "votes": {"type": "votes"},
    "watches": {"type": "watches"},
    "security": {"type": "securitylevel"},
}


class FieldSelection:
    """Jira's `fields` parameter: `*all`, `*navigable`, ids, and `-id` exclusions."""

    def __init__(self, spec: Iterable[str] | str | None, default: str, known: tuple[str, ...]) -> None:
        if spec is None or spec == "" or spec == []:
            tokens = [default]
        elif isinstance(spec, str):
            tokens = [t.strip() for t in spec.split(",") if t.strip()]
        else:
            tokens = [t.strip() for part in spec for t in str(part).split(",") if t.strip()]
        include: list[str] = []
        exclude: set[str] = set()
        for tok in tokens:
            if tok in ("*all", "*navigable"):
                include.extend(known)
            elif tok.startswith("-"):
                exclude.add(tok[1:])
            else:
                include.append(tok)
        seen: set[str] = set()
        self.fields = [f for f in include if f not in exclude and not (f in seen or seen.add(f))]  # type: ignore[func-returns-value]
        self.id_only = all(f in ("id", "key") for f in self.fields)
        self.wants_key = "key" in self.fields or not self.id_only


class JiraRenderer:
    """Renders world objects for one profile, API version and base URL."""

    def __init__(self, world: JiraWorld, profile: JiraProfile, base_url: str, api_version: int = 3) -> None:
        self.world = world
        self.profile = profile
        self.cloud = profile.is_cloud
        self.adf = api_version >= 3
        self.base = base_url.rstrip("/")
        self.api = f"{self.base}/rest/api/{api_version}"
        self._users: dict[str, dict[str, Any]] = {}
        self.issue_fields: tuple[str, ...] = (
            SYSTEM_FIELDS
            + (("issuerestriction",) if self.cloud else ())
            + (profile.story_points_field, profile.sprint_field, profile.rank_field)
            # Cloud shows an issue's epic as `parent`; Data Center as the "Epic Link" field.
            + (("parent",) if self.cloud else ((profile.epic_link_field,) if profile.epic_link_field else ()))
        )

    # ------------------------------------------------------------------ small objects
    def text(self, value: str) -> Any:
        return adf(value) if self.adf else value

    def user(self, user_id: str | None) -> dict[str, Any] | None:
        if user_id is None:
            return None
        cached = self._users.get(user_id)
        if cached is None:
            u: SimUser = self.world.user(user_id)
            avatar = f"https://avatar.example.com/{u.name}.png"
            avatars = {s: f"{avatar}?s={s.split('x')[0]}" for s in ("48x48", "24x24", "16x16", "32x32")}
            if self.cloud:
                cached = {
                    "self": f"{self.api}/user?accountId={u.account_id}",
                    "accountId": u.account_id,
                    "emailAddress": u.email,
                    "avatarUrls": avatars,
                    "displayName": u.display_name,
                    "active": True,
                    "timeZone": u.time_zone,
                    "accountType": "atlassian",
                }
            else:
                cached = {
                    "self": f"{self.api}/user?username={u.name}",
                    "name": u.name,
                    "key": u.name,
                    "emailAddress": u.email,
                    "avatarUrls": avatars,
                    "displayName": u.display_name,
                    "active": True,
                    "timeZone": u.time_zone,
                }
            self._users[user_id] = cached
        return dict(cached)

    def tz(self, user_id: str | None) -> str:
        return self.world.user(user_id).time_zone if user_id else "Etc/UTC"

    def status(self, status_id: str) -> dict[str, Any]:
        s = STATUSES[status_id]
        cat = s.category
        return {
            "self": f"{self.api}/status/{s.id}",
            "description": s.description,
            "iconUrl": f"{self.base}/images/icons/statuses/generic.png",
            "name": s.name,
            "id": s.id,
            "statusCategory": {
                "self": f"{self.api}/statuscategory/{CATEGORY_IDS[cat]}",
                "id": CATEGORY_IDS[cat],
                "key": cat,
                "colorName": CATEGORY_COLORS[cat],
                "name": CATEGORY_NAMES[cat],
            },
        }

    def issue_type(self, type_id: str) -> dict[str, Any]:
        t = ISSUE_TYPES[type_id]
        out = {
            "self": f"{self.api}/issuetype/{t.id}",
            "id": t.id,
            "description": t.description,
            "iconUrl": f"{self.base}/images/icons/issuetypes/{t.id}.svg",
            "name": t.name,
            "subtask": False,
            "avatarId": 10300 + int(t.id) % 100,
        }
        if self.cloud:
            out["hierarchyLevel"] = t.level
        return out

    def version(self, v: SimVersion, *, full: bool = True) -> dict[str, Any]:
        """A Version bean: `/project/{key}/versions` entries (full) or an issue's fixVersions."""
        out: dict[str, Any] = {"self": f"{self.api}/version/{v.id}", "id": str(v.id)}
        if v.description:
            out["description"] = v.description
        out.update({"name": v.name, "archived": v.archived, "released": v.released})
        if full and v.start is not None:
            out["startDate"] = v.start.isoformat()
        if v.release is not None:
            out["releaseDate"] = v.release.isoformat()
        if full:
            if not v.released and v.release is not None:
                out["overdue"] = v.release < self.world.now.date()
            if v.start is not None:
                out["userStartDate"] = v.start.strftime("%d/%b/%y")
            if v.release is not None:
                out["userReleaseDate"] = v.release.strftime("%d/%b/%y")
            out["projectId"] = int(self.world.projects[v.project_key].id)
        return out

    def parent_ref(self, issue: SimIssue) -> dict[str, Any]:
        """Cloud's `parent`: the parent's id, key and a few of its fields."""
        return {
            "id": issue.id,
            "key": issue.key,
            "self": f"{self.api}/issue/{issue.nid}",
            "fields": {
                "summary": issue.summary,
                "status": self.status(issue.status),
                "priority": self.priority(issue.priority),
                "issuetype": self.issue_type(issue.issue_type),
            },
        }

    def priority(self, priority_id: str) -> dict[str, Any]:
        name = PRIORITIES[priority_id]
        return {
            "self": f"{self.api}/priority/{priority_id}",
            "iconUrl": f"{self.base}/images/icons/priorities/{name.lower()}.svg",
            "name": name,
            "id": priority_id,
        }

    def resolution(self, resolution_id: str | None) -> dict[str, Any] | None:
        if resolution_id is None:
            return None
        return {
            "self": f"{self.api}/resolution/{resolution_id}",
            "id": resolution_id,
            "description": "Work has been completed on this issue.",
            "name": RESOLUTION_DONE[1],
        }

    def project_ref(self, key: str) -> dict[str, Any]:
        p = self.world.projects[key]
        out: dict[str, Any] = {
            "self": f"{self.api}/project/{p.id}",
            "id": p.id,
            "key": p.key,
            "name": p.name,
            "projectTypeKey": "software",
            "avatarUrls": {
                s: f"{self.base}/secure/projectavatar?size={s}&pid={p.id}"
                for s in ("48x48", "24x24", "16x16", "32x32")
            },
        }
        if self.cloud:
            out["simplified"] = False
        return out

    def project(self, key: str) -> dict[str, Any]:
        out = self.project_ref(key)
        out.update(
            {
                "expand": "description,lead,issueTypes,url,projectKeys,permissions,insight",
                "isPrivate": False,
                "properties": {},
            }
        )
        if self.cloud:
            out["style"] = "classic"
        return out

    def sprint_value(self, sprint_ids: tuple[int, ...]) -> list[Any] | None:
        """The Sprint custom field's value on an issue."""
        if not sprint_ids:
            return None
        out: list[Any] = []
        for sid in sprint_ids:
            s = self.world.sprints[sid]
            if self.cloud:
                v: dict[str, Any] = {
                    "id": s.id,
                    "name": s.name,
                    "state": s.state,
                    "boardId": s.board_id,
                    "goal": s.goal,
                }
                if s.start:
                    v["startDate"] = agile_time(s.start, True)
                if s.end:
                    v["endDate"] = agile_time(s.end, True)
                if s.complete:
                    v["completeDate"] = agile_time(s.complete, True)
                out.append(v)
            else:
                out.append(self.sprint_tostring(s))
        return out

    def sprint_tostring(self, s: SimSprint) -> str:
        def d(x: datetime | None) -> str:
            return agile_time(x, False) if x else "<null>"

        ident = format(zlib.crc32(f"sprint-{s.id}".encode()), "x")
        return (
            f"com.atlassian.greenhopper.service.sprint.Sprint@{ident}[id={s.id},rapidViewId={s.board_id},"
            f"state={s.state.upper()},name={s.name},startDate={d(s.start)},endDate={d(s.end)},"
            f"completeDate={d(s.complete)},activatedDate={d(s.start)},sequence={s.id},goal={s.goal},"
            f"autoStartStop=false,synced=false]"
        )

    def agile_sprint(self, s: SimSprint) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": s.id,
            "self": f"{self.base}/rest/agile/1.0/sprint/{s.id}",
            "state": s.state,
            "name": s.name,
        }
        if s.start:
            out["startDate"] = agile_time(s.start, self.cloud)
        if s.end:
            out["endDate"] = agile_time(s.end, self.cloud)
        if s.complete:
            out["completeDate"] = agile_time(s.complete, self.cloud)
        out["originBoardId"] = s.board_id
        out["goal"] = s.goal
        return out

    # ------------------------------------------------------------------ changelog
    def change_item(self, item: ChangeItem) -> dict[str, Any]:
        f, old, new = item
        p = self.profile
        out: dict[str, Any]
        if f == F_STATUS:
            out = {
                "field": "status",
                "fieldtype": "jira",
                "fieldId": "status",
                "from": old,
                "fromString": STATUSES[old].name,
                "to": new,
                "toString": STATUSES[new].name,
            }
        elif f == F_RESOLUTION:
            out = {
                "field": "resolution",
                "fieldtype": "jira",
                "fieldId": "resolution",
                "from": old,
                "fromString": RESOLUTION_DONE[1] if old else None,
                "to": new,
                "toString": RESOLUTION_DONE[1] if new else None,
            }
        elif f == F_SPRINT:

            def ids(v: tuple[int, ...]) -> str:
                return ", ".join(str(i) for i in v)

            def names(v: tuple[int, ...]) -> str:
                return ", ".join(self.world.sprints[i].name for i in v)

            # Real Cloud sends "" (not null) for an empty sprint list.
            out = {
                "field": "Sprint",
                "fieldtype": "custom",
                "fieldId": p.sprint_field,
                "from": ids(old),
                "fromString": names(old),
                "to": ids(new),
                "toString": names(new),
            }
        elif f == F_POINTS:
            out = {
                "field": p.story_points_name,
                "fieldtype": "custom",
                "fieldId": p.story_points_field,
                "from": None,
                "fromString": format_points(old),
                "to": None,
                "toString": format_points(new),
            }
        elif f == F_ASSIGNEE:

            def ref(uid: str | None) -> str | None:
                if uid is None:
                    return None
                u = self.world.user(uid)
                return u.account_id if self.cloud else u.name

            out = {
                "field": "assignee",
                "fieldtype": "jira",
                "fieldId": "assignee",
                "from": ref(old),
                "fromString": self.world.user(old).display_name if old else None,
                "to": ref(new),
                "toString": self.world.user(new).display_name if new else None,
            }
            if self.cloud:
                out["tmpFromAccountId"] = ref(old)
                out["tmpToAccountId"] = ref(new)
        elif f == F_FIX_VERSIONS:
            # One item per version added or removed (the world writes them one by one).
            gone = [x for x in old if x not in new]
            added = [x for x in new if x not in old]
            vid = (added or gone)[0]
            name = self.world.versions[vid].name
            out = {
                "field": "Fix Version",
                "fieldtype": "jira",
                "fieldId": "fixVersions",
                "from": str(vid) if gone else None,
                "fromString": name if gone else None,
                "to": str(vid) if added else None,
                "toString": name if added else None,
            }
        elif f == F_EPIC:

            def epic_key(nid: int | None) -> str | None:
                return None if nid is None else self.world.issues[nid].key

            out = {
                "field": "IssueParentAssociation" if self.cloud else "Epic Link",
                "fieldtype": "jira" if self.cloud else "custom",
                "fieldId": "parent",
                "from": None if old is None else str(old),
                "fromString": epic_key(old),
                "to": None if new is None else str(new),
                "toString": epic_key(new),
            }
        elif f == F_LABELS:
            out = {
                "field": "labels",
                "fieldtype": "jira",
                "fieldId": "labels",
                "from": None,
                "fromString": " ".join(old),
                "to": None,
                "toString": " ".join(new),
            }
        elif f == F_PRIORITY:
            out = {
                "field": "priority",
                "fieldtype": "jira",
                "fieldId": "priority",
                "from": old,
                "fromString": PRIORITIES[old],
                "to": new,
                "toString": PRIORITIES[new],
            }
        elif f == F_KEY:
            out = {
                "field": "Key",
                "fieldtype": "jira",
                "fieldId": "issuekey",
                "from": None,
                "fromString": old,
                "to": None,
                "toString": new,
            }
        elif f == F_PROJECT:
            po, pn = self.world.projects[old], self.world.projects[new]
            out = {
                "field": "project",
                "fieldtype": "jira",
                "fieldId": "project",
                "from": po.id,
                "fromString": po.name,
                "to": pn.id,
                "toString": pn.name,
            }
        else:
            raise ValueError(f"unknown change field {f}")
        if not self.cloud:
            out.pop("fieldId", None)  # Server/DC changelog items carry no fieldId
        return out

    def history(self, h: SimHistory, field_ids: set[str] | None = None) -> dict[str, Any] | None:
        items = [self.change_item(i) for i in h.items]
        if field_ids is not None:
            items = [i for i in items if i.get("fieldId", i["field"]) in field_ids or i["field"] in field_ids]
            if not items:
                return None
        return {
            "id": str(h.id),
            "author": self.user(h.author),
            "created": jira_time(h.created, self.tz(h.author)),
            "items": items,
        }

    def inline_changelog(self, issue: SimIssue, cap: int | None) -> dict[str, Any]:
        """`expand=changelog`: Cloud embeds the newest `cap` histories newest-first; DC all, oldest first."""
        total = len(issue.histories)
        if self.cloud:
            chosen = list(reversed(issue.histories))[: cap if cap is not None else total]
        else:
            chosen = issue.histories
        rendered = [self.history(h) for h in chosen]
        return {"startAt": 0, "maxResults": len(rendered), "total": total, "histories": rendered}

    # ------------------------------------------------------------------ worklogs and comments
    def worklog(self, w: SimWorklog) -> dict[str, Any]:
        out: dict[str, Any] = {
            "self": f"{self.api}/issue/{w.issue_nid}/worklog/{w.id}",
            "author": self.user(w.author),
            "updateAuthor": self.user(w.update_author),
        }
        if w.comment:
            out["comment"] = self.text(w.comment)
        out.update(
            {
                "created": jira_time(w.created, self.tz(w.author)),
                "updated": jira_time(w.updated, self.tz(w.author)),
                "started": jira_time(w.started, self.tz(w.author)),
                "timeSpent": format_time_spent(w.seconds),
                "timeSpentSeconds": w.seconds,
                "id": str(w.id),
                "issueId": str(w.issue_nid),
            }
        )
        return out

    def comment(self, c: SimComment) -> dict[str, Any]:
        out = {
            "self": f"{self.api}/issue/{c.issue_nid}/comment/{c.id}",
            "id": str(c.id),
            "author": self.user(c.author),
            "body": self.text(c.body),
            "updateAuthor": self.user(c.update_author),
            "created": jira_time(c.created, self.tz(c.author)),
            "updated": jira_time(c.updated, self.tz(c.author)),
        }
        if self.cloud:
            out["jsdPublic"] = True
        return out

    def worklog_page(self, issue: SimIssue, limit: int = INLINE_WORKLOG_MAX) -> dict[str, Any]:
        live = issue.live_worklogs
        return {
            "startAt": 0,
            "maxResults": limit,
            "total": len(live),
            "worklogs": [self.worklog(w) for w in live[:limit]],
        }

    def comment_page(self, issue: SimIssue, limit: int | None) -> dict[str, Any]:
        live = issue.live_comments
        shown = live if limit is None else live[:limit]
        return {
            "comments": [self.comment(c) for c in shown],
            "self": f"{self.api}/issue/{issue.nid}/comment",
            "maxResults": len(shown),
            "total": len(live),
            "startAt": 0,
        }

    # ------------------------------------------------------------------ issues
    def field_value(self, issue: SimIssue, f: str, comment_cap: int | None) -> Any:
        p = self.profile
        reporter_tz = self.tz(issue.reporter)
        spent = sum(w.seconds for w in issue.live_worklogs) or None
        if f == "summary":
            return issue.summary
        if f == "issuetype":
            return self.issue_type(issue.issue_type)
        if f == "project":
            return self.project_ref(issue.project_key)
        if f == "status":
            return self.status(issue.status)
        if f == "priority":
            return self.priority(issue.priority)
        if f == "created":
            return jira_time(issue.created, reporter_tz)
        if f == "updated":
            return jira_time(issue.updated, reporter_tz)
        if f == "resolutiondate":
            return jira_time(issue.resolved_at, reporter_tz) if issue.resolved_at else None
        if f == "resolution":
            return self.resolution(issue.resolution)
        if f == "statuscategorychangedate":
            return jira_time(issue.status_category_changed, reporter_tz)
        if f in ("reporter", "creator"):
            return self.user(issue.reporter)
        if f == "assignee":
            return self.user(issue.assignee)
        if f == "labels":
            return list(issue.labels)
        if f == "fixVersions":
            return [self.version(self.world.versions[v], full=False) for v in issue.fix_versions]
        if f == "parent":
            return self.parent_ref(self.world.issues[issue.epic]) if issue.epic is not None else None
        if p.epic_link_field and f == p.epic_link_field:
            return self.world.issues[issue.epic].key if issue.epic is not None else None
        if f in ("components", "versions", "issuelinks", "subtasks", "attachment"):
            return []
        if f == "description":
            return self.text(issue.description) if issue.description else None
        if f == "comment":
            return self.comment_page(issue, comment_cap)
        if f == "worklog":
            return self.worklog_page(issue)
        if f in ("timespent", "aggregatetimespent"):
            return spent
        if f in (
            "timeestimate",
            "timeoriginalestimate",
            "aggregatetimeestimate",
            "aggregatetimeoriginalestimate",
            "environment",
            "duedate",
            "security",
            "lastViewed",
        ):
            return None
        if f == "timetracking":
            return {"timeSpent": format_time_spent(spent), "timeSpentSeconds": spent} if spent else {}
        if f in ("progress", "aggregateprogress"):
            return {"progress": spent or 0, "total": spent or 0, **({"percent": 100} if spent else {})}
        if f == "workratio":
            return -1
        if f == "watches":
            return {"self": f"{self.api}/issue/{issue.key}/watchers", "watchCount": 1, "isWatching": False}
        if f == "votes":
            return {"self": f"{self.api}/issue/{issue.key}/votes", "votes": 0, "hasVoted": False}
        if f == "issuerestriction":
            return {"issuerestrictions": {}, "shouldDisplay": False}
        if f == p.story_points_field:
            return issue.points
        if f == p.sprint_field:
            return self.sprint_value(issue.sprints)
        if f == p.rank_field:
            return f"0|i{_base36(issue.nid):0>5}:"
        if f == "sprint":
            open_ = [self.world.sprints[s] for s in issue.sprints if self.world.sprints[s].state != "closed"]
            return self.agile_sprint(open_[-1]) if open_ else None
        if f == "closedSprints":
            closed = [self.world.sprints[s] for s in issue.sprints if self.world.sprints[s].state == "closed"]
            return [self.agile_sprint(s) for s in closed] if closed else None
        if f == "flagged":
            return False
        if f == "epic":
            return None
        raise KeyError(f)

    def issue(
        self,
        issue: SimIssue,
        selection: FieldSelection,
        *,
        expand: Iterable[str] = (),
        changelog_cap: int | None = None,
        comment_cap: int | None = None,
        agile: bool = False,
        envelope: bool = False,
    ) -> dict[str, Any]:
        """An IssueBean. Enhanced search answers id/key-only requests without the `fields` envelope."""
        expand = set(expand)
        if selection.id_only and not expand and not envelope:
            if not selection.wants_key:
                return {"id": issue.id}
            return {"expand": "", "id": issue.id, "self": f"{self.api}/issue/{issue.nid}", "key": issue.key}
        out: dict[str, Any] = {
            "expand": ISSUE_EXPAND,
            "id": issue.id,
            "self": f"{self.api}/issue/{issue.nid}",
            "key": issue.key,
        }
        known = set(self.issue_fields) | (set(AGILE_FIELDS) if agile else set())
        fields: dict[str, Any] = {}
        for f in selection.fields:
            if f in known:
                value = self.field_value(issue, f, comment_cap)
                if f in ("closedSprints", "parent") and value is None:
                    continue  # Jira leaves these keys out when there are none
                fields[f] = value
        out["fields"] = fields
        if "changelog" in expand:
            out["changelog"] = self.inline_changelog(issue, changelog_cap)
        if "names" in expand:
            out["names"] = {f: self.field_name(f) for f in fields}
        if "renderedFields" in expand:
            out["renderedFields"] = {f: None for f in fields}
        return out

    def field_name(self, f: str) -> str:
        p = self.profile
        if f == p.story_points_field:
            return p.story_points_name
        if f == p.sprint_field:
            return "Sprint"
        if f == p.rank_field:
            return "Rank"
        if f == p.epic_link_field:
            return "Epic Link"
        return FIELD_NAMES.get(f, f)

    # ------------------------------------------------------------------ catalogue
    def fields_catalogue(self) -> list[dict[str, Any]]:
        p = self.profile
        out: list[dict[str, Any]] = []
        for f in ("issuekey",) + SYSTEM_FIELDS:
            schema = dict(FIELD_SCHEMAS.get(f, {"type": "string"}))
            schema["system"] = f
            entry: dict[str, Any] = {
                "id": f,
                "name": FIELD_NAMES.get(f, f),
                "custom": False,
                "orderable": True,
                "navigable": True,
                "searchable": True,
                "clauseNames": [f] if f != "issuekey" else ["id", "issue", "issuekey", "key"],
                "schema": schema,
            }
            out.append(entry)

        def custom(fid: str, name: str, schema: dict[str, Any], clause: str) -> dict[str, Any]:
            num = int(fid.split("_")[1])
            return {
                "id": fid,
                "name": name,
                "custom": True,
                "orderable": True,
                "navigable": True,
                "searchable": True,
                "clauseNames": [f"cf[{num}]", clause],
                "schema": {**schema, "customId": num},
            }

        out.append(
            custom(
                p.story_points_field,
                p.story_points_name,
                {"type": "number", "custom": "com.atlassian.jira.plugin.system.customfieldtypes:float"},
                p.story_points_name,
            )
        )
        out.append(
            custom(
                p.sprint_field,
                "Sprint",
                {
                    "type": "array",
                    "items": "json" if self.cloud else "string",
                    "custom": "com.pyxis.greenhopper.jira:gh-sprint",
                },
                "Sprint",
            )
        )
        out.append(
            custom(
                p.rank_field,
                "Rank",
                {"type": "any", "custom": "com.pyxis.greenhopper.jira:gh-lexo-rank"},
                "Rank",
            )
        )
        if p.epic_link_field:
            out.append(
                custom(
                    p.epic_link_field,
                    "Epic Link",
                    {"type": "any", "custom": "com.pyxis.greenhopper.jira:gh-epic-link"},
                    "Epic Link",
                )
            )
        if self.cloud:
            for entry in out:
                entry["key"] = entry["id"]
                entry["untranslatedName"] = entry["name"]
        return out

    def board(self, board_id: int) -> dict[str, Any]:
        b = self.world.boards[board_id]
        p = self.world.projects[b.project_key]
        return {
            "id": b.id,
            "self": f"{self.base}/rest/agile/1.0/board/{b.id}",
            "name": b.name,
            "type": b.type,
            "location": {
                "projectId": int(p.id),
                "displayName": f"{p.name} ({p.key})",
                "projectName": p.name,
                "projectKey": p.key,
                "projectTypeKey": "software",
                "avatarURI": f"/secure/projectavatar?size=small&pid={p.id}",
                "name": f"{p.name} ({p.key})",
            },
        }

    def board_configuration(self, board_id: int) -> dict[str, Any]:
        b = self.world.boards[board_id]
        p = self.world.projects[b.project_key]
        wf = p.workflow

        def col(name: str, *status_ids: str | None) -> dict[str, Any]:
            return {
                "name": name,
                "statuses": [{"id": s, "self": f"{self.api}/status/{s}"} for s in status_ids if s],
            }

        columns = [
            col("Backlog" if b.type == "kanban" else "To Do", wf.todo),
            col("In Progress", wf.in_progress, wf.pause),
            col("In Review", wf.review) if wf.review else None,
            col("Done", wf.done),
        ]
        out: dict[str, Any] = {
            "id": b.id,
            "name": b.name,
            "type": b.type,
            "self": f"{self.base}/rest/agile/1.0/board/{b.id}/configuration",
            "location": {
                "type": "project",
                "key": p.key,
                "id": p.id,
                "self": f"{self.api}/project/{p.id}",
                "name": p.name,
            },
            "filter": {"id": str(b.filter_id), "self": f"{self.api}/filter/{b.filter_id}"},
            "columnConfig": {"columns": [c for c in columns if c], "constraintType": "issueCount"},
            "ranking": {"rankCustomFieldId": int(self.profile.rank_field.split("_")[1])},
        }
        if b.type == "scrum":
            out["estimation"] = {
                "type": "field",
                "field": {
                    "fieldId": self.profile.story_points_field,
                    "displayName": self.profile.story_points_name,
                },
            }
        else:
            out["subQuery"] = {"query": "resolution = EMPTY OR resolution changed AFTER -2w"}
        return out

"""End to end: sync the simulators over HTTP, run `trackpulse metrics --json`, and compare every
figure with a second, deliberately simple implementation of METRICS.md written here.

The oracle below reads the simulators' own worlds (their event histories: Jira changelog
histories, worklogs and comments; Trello board actions), never our store, and computes the
report item by item with plain Python: no pandas, no numpy, no code shared with
`trackpulse.metrics`. Where the two disagree, one of them misreads METRICS.md.

What the oracle takes from a world is what the tracker shows through its API: Jira renders
instants with millisecond precision, so history times are cut to milliseconds; a Trello card's
`created` is its id's timestamp (whole seconds), its history the board actions.

Covered: Jira Cloud, Jira Data Center and Trello, each with its own world (generated history plus
later mutations: reopens, pauses, estimate changes, deletions, moves between projects, a sprint
closed with carry-over and the next one started, issues added to a running sprint), one SQLite
store, `trackpulse metrics --json --as-of <world now> --source <name>` per source, and one
`--as-of/--since/--until` window over all three sources at once. The worlds' plans (assignees and
their history, Trello card members, Jira versions and fix versions, epics) reach the store three
ways: a full sync, an incremental sync after more changes, and webhook deliveries only; the
people, KPI, version and epic figures are compared like every other.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from collections import defaultdict
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from importlib.resources import files
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jsonschema
import pytest
from trackpulse.connectors.jira import apply_webhook as apply_jira_webhook
from trackpulse.connectors.trello import apply_webhook as apply_trello_webhook
from trackpulse.jobs.sync import sync_source

from trackpulse.config import parse_config
from trackpulse.simulator.jira_app import create_jira_app
from trackpulse.simulator.jira_render import JiraRenderer
from trackpulse.simulator.jira_world import (
    EPIC_TYPE,
    F_ASSIGNEE,
    F_POINTS,
    F_SPRINT,
    F_STATUS,
    ISSUE_TYPES,
    PRIORITIES,
    PROFILES,
    STATUSES,
    JiraWorld,
    SimIssue,
)
from trackpulse.simulator.runner import serve_in_thread
from trackpulse.simulator.trello_app import create_trello_app
from trackpulse.simulator.trello_world import TrelloWorld
from trackpulse.simulator.webhooks import jira_webhook_payload
from trackpulse.store.db import open_store

SCHEMA = json.loads(files("trackpulse").joinpath("schemas/metrics-report.schema.json").read_text("utf-8"))
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
WINDOW_AS_OF = NOW + timedelta(hours=20)  # between the worlds' first and second rounds of mutations
WINDOW_SINCE = NOW - timedelta(days=45)
WINDOW_UNTIL = NOW - timedelta(days=3)

TRELLO_KEY = "0123456789abcdef0123456789abcdef"
TRELLO_TOKEN = "ATTA" + "e" * 60
TRELLO_SECRET = "e2e-app-secret"
DONE_LISTS = ["Done"]
IN_PROGRESS_LISTS = ["Doing", "Review"]
DEFECT_LABELS = ["bug"]
PRIORITY_LABELS = ["P1", "P2", "P3"]
DEFECT_TYPES = ["Bug", "Defect", "缺陷"]
ITERATION_START = date(2025, 9, 1)
ITERATION_DAYS = 14

CALENDARS: dict[str, dict[str, Any]] = {
    "shanghai": {
        "timezone": "Asia/Shanghai",
        "days": ["mon", "tue", "wed", "thu", "fri"],
        "hours": ["09:00-12:00", "13:00-18:00"],
        "holidays": ["2026-01-01", "2026-02-16", "2026-02-17", "2026-02-18"],
    },
}


def sla_policies(trello_board: str) -> list[dict[str, Any]]:
    """First match wins; filters on current priority, type, project."""
    return [
        {"name": "urgent", "priorities": ["Highest", "P1"], "response_hours": 4, "resolution_hours": 72,
         "pause_statuses": ["Waiting for customer"]},
        {"name": "def-defects", "projects": ["DEF"], "types": ["Bug", "缺陷"], "response_hours": 8,
         "resolution_hours": 40, "calendar": "shanghai", "pause_statuses": ["waiting FOR customer"],
         "at_risk_ratio": 0.6},
        {"name": "trello-bugs", "projects": [trello_board], "types": ["Bug"], "response_hours": 24,
         "resolution_hours": 120},
        {"name": "abc-business", "projects": ["ABC"], "priorities": ["High"], "resolution_hours": 30,
         "calendar": "shanghai"},
        {"name": "standard", "resolution_hours": 240, "at_risk_ratio": 0.5},
    ]


# =============================================================================== the truth, neutral

@dataclass
class TruthItem:
    """One live work item as the tracker's history tells it (METRICS.md §1 records)."""

    source: str
    project: str
    key: str
    created: datetime
    type: str
    priority: str | None
    is_defect: bool
    reporter: str | None
    # (at, status name, category): the status at creation first (at `created`), then every move.
    states: list[tuple[datetime, str, str]]
    initial_points: float | None
    points_changes: list[tuple[datetime, float | None]]  # (at, new value)
    initial_sprints: tuple[str, ...] = ()
    sprint_changes: list[tuple[datetime, tuple[str, ...]]] = field(default_factory=list)  # (at, new value)
    comments: list[tuple[datetime, str | None]] = field(default_factory=list)  # (created, author id)
    worklogs: list[tuple[datetime, int, str]] = field(default_factory=list)  # (started, seconds, author name)
    # What the report names the item by (METRICS.md §1: Jira key, Trello card id) and its link.
    item: str = ""
    url: str = ""
    # §9 and §13: assignee names at creation and each change (at, the new set); current plans.
    initial_assignees: tuple[str, ...] = ()
    assignee_changes: list[tuple[datetime, tuple[str, ...]]] = field(default_factory=list)
    fix_versions: tuple[str, ...] = ()
    epic: str | None = None
    is_epic: bool = False
    summary: str = ""


@dataclass
class TruthSprint:
    source: str
    board: str
    sprint_id: str
    name: str
    start: datetime
    end: datetime | None
    complete: datetime | None


@dataclass
class TruthVersion:
    source: str
    project: str
    version_id: str
    name: str
    start: str | None
    release_date: str | None
    released: bool


@dataclass
class Truth:
    items: list[TruthItem] = field(default_factory=list)
    sprints: list[TruthSprint] = field(default_factory=list)
    trello_boards: dict[str, list[str]] = field(default_factory=dict)  # source -> configured boards
    kloc: dict[tuple[str, str], float] = field(default_factory=dict)
    project_names: dict[tuple[str, str], str] = field(default_factory=dict)  # Jira project / Trello board name
    versions: list[TruthVersion] = field(default_factory=list)

    def merged(self, other: Truth) -> Truth:
        return Truth(self.items + other.items, self.sprints + other.sprints,
                     {**self.trello_boards, **other.trello_boards}, {**self.kloc, **other.kloc},
                     {**self.project_names, **other.project_names}, self.versions + other.versions)


def ms(t: datetime) -> datetime:
    """Jira shows instants to the millisecond."""
    return t.astimezone(UTC).replace(microsecond=t.microsecond // 1000 * 1000)


JIRA_CATEGORY = {"new": "todo", "indeterminate": "in_progress", "done": "done"}


def assert_consistent_changelog(issue: SimIssue) -> None:
    """The oracle reads creation values and changes; Jira's "from" always equals the value before."""
    value = {F_STATUS: issue.initial_status, F_POINTS: issue.initial_points, F_SPRINT: issue.initial_sprints}
    for h in issue.histories:
        for item in h.items:
            if item.field in value:
                assert item.old == value[item.field], (
                    f"simulator bug: {issue.key} {item.field} change at {h.created} says from {item.old!r}, "
                    f"but the value before it was {value[item.field]!r}")
                value[item.field] = item.new


def jira_truth(world: JiraWorld, source: str, url: str) -> Truth:
    truth = Truth(project_names={(source, p.key): p.name for p in world.projects.values()})
    for issue in world.live_issues():
        assert_consistent_changelog(issue)
        states = [(ms(issue.created), STATUSES[issue.initial_status].name,
                   JIRA_CATEGORY[STATUSES[issue.initial_status].category])]
        points: list[tuple[datetime, float | None]] = []
        sprints: list[tuple[datetime, tuple[str, ...]]] = []
        assignees: list[tuple[datetime, tuple[str, ...]]] = []

        def person(uid: str | None) -> tuple[str, ...]:
            return (world.users[uid].display_name,) if uid else ()

        for h in issue.histories:
            for item in h.items:
                if item.field == F_ASSIGNEE:
                    assignees.append((ms(h.created), person(item.new)))
                elif item.field == F_STATUS:
                    s = STATUSES[item.new]
                    states.append((ms(h.created), s.name, JIRA_CATEGORY[s.category]))
                elif item.field == F_POINTS:
                    points.append((ms(h.created), item.new))
                elif item.field == F_SPRINT:
                    sprints.append((ms(h.created), tuple(str(x) for x in item.new)))
        type_name = ISSUE_TYPES[issue.issue_type].name
        truth.items.append(TruthItem(
            source=source, project=issue.project_key, key=issue.key, created=ms(issue.created),
            type=type_name,
            priority=PRIORITIES[issue.priority], is_defect=type_name in DEFECT_TYPES, reporter=issue.reporter,
            states=states, initial_points=issue.initial_points, points_changes=points,
            initial_sprints=tuple(str(x) for x in issue.initial_sprints), sprint_changes=sprints,
            comments=[(ms(c.created), c.author) for c in issue.live_comments],
            worklogs=[(ms(w.started), w.seconds, world.users[w.author].display_name)
                      for w in issue.live_worklogs],
            item=issue.key, url=f"{url.rstrip('/')}/browse/{issue.key}",
            initial_assignees=person(issue.initial_assignee), assignee_changes=assignees,
            fix_versions=tuple(str(v) for v in issue.fix_versions),
            epic=world.issues[issue.epic].key if issue.epic is not None else None,
            is_epic=issue.issue_type == EPIC_TYPE, summary=issue.summary,
        ))
        assert (assignees[-1][1] if assignees else person(issue.initial_assignee)) == person(issue.assignee)
    for v in world.versions.values():
        if not v.deleted:
            truth.versions.append(TruthVersion(source, v.project_key, str(v.id), v.name,
                                               v.start.isoformat() if v.start else None,
                                               v.release.isoformat() if v.release else None, v.released))
    for s in world.sprints.values():
        if s.state != "deleted" and s.start is not None:
            truth.sprints.append(TruthSprint(source, str(s.board_id), str(s.id), s.name, ms(s.start),
                                             ms(s.end) if s.end else None,
                                             ms(s.complete) if s.complete else None))
    return truth


def trello_category(list_name: str) -> str:
    name = list_name.casefold()
    if name in {x.casefold() for x in DONE_LISTS}:
        return "done"
    if name in {x.casefold() for x in IN_PROGRESS_LISTS}:
        return "in_progress"
    return "todo"


def trello_truth(world: TrelloWorld, source: str, boards: list[str]) -> Truth:
    def when(a: dict[str, Any]) -> datetime:
        return datetime.fromisoformat(a["date"])

    per_card: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for b in boards:
        for a in world.boards[b].actions:
            card = a["data"].get("card") or {}
            if card.get("id"):
                per_card[card["id"]].append(a)
    truth = Truth(trello_boards={source: list(boards)},
                  project_names={(source, b): world.boards[b].name for b in boards})
    for card in world.cards.values():
        if card.deleted or card.closed or card.board_id not in boards:
            continue
        actions = sorted(per_card[card.id], key=lambda a: (a["date"], a["id"]))
        created = datetime.fromtimestamp(int(card.id[:8], 16), tz=UTC)
        states: list[tuple[datetime, str, str]] = []
        points: list[tuple[datetime, float | None]] = []
        comments: list[tuple[datetime, str | None]] = []
        in_list = None
        creator = None
        members: list[str] = []
        member_changes: list[tuple[datetime, tuple[str, ...]]] = []
        for a in actions:
            d, kind = a["data"], a["type"]
            if kind in ("addMemberToCard", "removeMemberFromCard"):
                name = world.members[d["idMember"]].full_name
                members = [m for m in members if m != name] + ([name] if kind == "addMemberToCard" else [])
                member_changes.append((when(a), tuple(sorted(members))))
            elif kind in ("createCard", "copyCard", "convertToCardFromCheckItem"):
                creator = a["idMemberCreator"]
                states.append((created, d["list"]["name"], trello_category(d["list"]["name"])))
                in_list = d["list"]["id"]
            elif kind == "moveCardToBoard":
                states.append((when(a), d["list"]["name"], trello_category(d["list"]["name"])))
                in_list = d["list"]["id"]
            elif kind == "updateCard" and "listAfter" in d:
                assert d["listBefore"]["id"] == in_list, f"simulator bug: move {a['id']} is not from its list"
                states.append((when(a), d["listAfter"]["name"], trello_category(d["listAfter"]["name"])))
                in_list = d["listAfter"]["id"]
            elif kind == "updateCustomFieldItem" and d["customField"]["name"] == "Points":
                value = d["customFieldItem"]["value"]
                points.append((when(a), float(value["number"]) if value else None))
            elif kind == "commentCard" and a["id"] not in world.deleted_comments:
                comments.append((when(a), a["idMemberCreator"]))
        assert states and states[0][0] == created, f"card {card.id} has no creation action"
        assert in_list == card.list_id, f"simulator bug: card {card.id}'s actions do not end in its list"
        board = world.boards[card.board_id]
        labels = {board.labels[x]["name"].casefold() for x in card.label_ids if x in board.labels}
        is_defect = any(x.casefold() in labels for x in DEFECT_LABELS)
        truth.items.append(TruthItem(
            source=source, project=card.board_id, key=card.short_link, created=created,
            type="Bug" if is_defect else "Card",
            priority=next((p for p in PRIORITY_LABELS if p.casefold() in labels), None), is_defect=is_defect,
            # A card's reporter is the member whose action created it on this board (a card
            # that arrived from another board has no creation action here: no reporter).
            reporter=creator, states=states, initial_points=None, points_changes=points, comments=comments,
            item=card.id, url=f"https://trello.com/c/{card.short_link}",
            assignee_changes=member_changes, summary=card.name,
        ))
        # A card's members are the end of its member history (a card from another board arrives
        # with the members it had there).
        assert tuple(sorted(members)) == tuple(sorted(world.members[m].full_name for m in card.member_ids)), card.id
        # The world's current value is the end of the points history.
        assert (points[-1][1] if points else None) == card.points, card.id
    return truth


# =============================================================================== the oracle (METRICS.md)

DAY = timedelta(days=1)
WEEK = timedelta(days=7)
HOUR = timedelta(hours=1)


def states_until(item: TruthItem, as_of: datetime) -> list[tuple[datetime, str, str]]:
    return [s for s in item.states if s[0] <= as_of]


def category_at(item: TruthItem, t: datetime) -> str | None:
    known = states_until(item, t)
    return known[-1][2] if known and t >= item.created else None


def started(item: TruthItem, as_of: datetime) -> datetime | None:
    return next((at for at, _, cat in states_until(item, as_of) if cat == "in_progress"), None)


def resolved(item: TruthItem, as_of: datetime) -> datetime | None:
    """The last entry into done, if done as of `as_of` (a reopened item is not resolved)."""
    known = states_until(item, as_of)
    if known[-1][2] != "done":
        return None
    for i in range(len(known) - 1, -1, -1):
        if known[i][2] == "done" and (i == 0 or known[i - 1][2] != "done"):
            return known[i][0]
    raise AssertionError("unreachable")


def points_at(item: TruthItem, t: datetime) -> float | None:
    value = item.initial_points
    for at, new in item.points_changes:
        if at <= t:
            value = new
    return value


def sprints_at(item: TruthItem, t: datetime) -> tuple[str, ...]:
    if t < item.created:
        return ()
    value = item.initial_sprints
    for at, new in item.sprint_changes:
        if at <= t:
            value = new
    return value


def percentile(values: list[float], q: float) -> float:
    xs = sorted(values)
    pos = q * (len(xs) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def stats(values: list[float]) -> dict[str, Any]:
    if not values:
        return {"count": 0, "mean": None, "p50": None, "p85": None, "p95": None}
    return {"count": len(values), "mean": sum(values) / len(values), "p50": percentile(values, 0.5),
            "p85": percentile(values, 0.85), "p95": percentile(values, 0.95)}


def days(d: timedelta) -> float:
    return d / DAY


# ----------------------------------------------------------------------------- calendars

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def working_intervals(cal: dict[str, Any], first_day: date,
                      last_day: date) -> Iterator[tuple[datetime, datetime]]:
    """The calendar's working intervals in UTC, day by day in local time."""
    tz = ZoneInfo(cal["timezone"])
    day = first_day
    while day <= last_day:
        if WEEKDAYS[day.weekday()] in cal["days"] and day.isoformat() not in cal["holidays"]:
            for hours in cal["hours"]:
                a, b = hours.split("-")
                yield (datetime.combine(day, time.fromisoformat(a), tzinfo=tz).astimezone(UTC),
                       datetime.combine(day, time.fromisoformat(b), tzinfo=tz).astimezone(UTC))
        day += DAY


def working_time(calendar: str, a: datetime, b: datetime) -> timedelta:
    if b <= a:
        return timedelta(0)
    if calendar == "24x7":
        return b - a
    cal = CALENDARS[calendar]
    tz = ZoneInfo(cal["timezone"])
    total = timedelta(0)
    for x, y in working_intervals(cal, a.astimezone(tz).date() - DAY, b.astimezone(tz).date() + DAY):
        lo, hi = max(x, a), min(y, b)
        if hi > lo:
            total += hi - lo
    return total


def instant_exceeding(calendar: str, start: datetime, budget: timedelta) -> datetime:
    """The first instant after which more than `budget` working time has passed since `start`."""
    if calendar == "24x7":
        return start + budget
    cal = CALENDARS[calendar]
    tz = ZoneInfo(cal["timezone"])
    first = start.astimezone(tz).date() - DAY
    for x, y in working_intervals(cal, first, first + timedelta(days=800)):
        if y <= start:
            continue
        x = max(x, start)
        if y - x > budget:
            return x + budget
        budget -= y - x
    raise AssertionError("calendar exhausted")


# ----------------------------------------------------------------------------- SLA clocks

@dataclass
class Clock:
    item: TruthItem
    policy: str
    clock: str
    target: timedelta
    elapsed: timedelta
    stopped: bool
    stop_at: datetime | None
    status: str
    breached_at: datetime | None


def policy_for(item: TruthItem, policies: list[dict[str, Any]]) -> dict[str, Any] | None:
    for p in policies:
        if p.get("priorities") and item.priority not in p["priorities"]:
            continue
        if p.get("types") and item.type not in p["types"]:
            continue
        if p.get("projects") and item.project not in p["projects"]:
            continue
        return p
    return None


def clock_status(elapsed: timedelta, target: timedelta, stopped: bool, ratio: float) -> str:
    if elapsed > target:
        return "breached"
    if stopped:
        return "met"
    return "at_risk" if elapsed / target >= ratio else "ongoing"


def sla_clocks(item: TruthItem, policy: dict[str, Any], as_of: datetime) -> list[Clock]:
    cal = policy.get("calendar", "24x7")
    ratio = policy.get("at_risk_ratio", 0.8)
    clocks = []
    if policy.get("response_hours") is not None:
        target = timedelta(hours=policy["response_hours"])
        moves = [at for at, _, cat in states_until(item, as_of)[1:] if cat != "todo"]
        answers = [at for at, author in item.comments
                   if at <= as_of and (item.reporter is None or author != item.reporter)]
        stop = min(moves[:1] + answers, default=None)
        elapsed = working_time(cal, item.created, stop or as_of)
        breached_at = instant_exceeding(cal, item.created, target) if elapsed > target else None
        clocks.append(Clock(item, policy["name"], "response", target, elapsed, stop is not None, stop,
                            clock_status(elapsed, target, stop is not None, ratio), breached_at))
    if policy.get("resolution_hours") is not None:
        target = timedelta(hours=policy["resolution_hours"])
        pauses = {s.casefold() for s in policy.get("pause_statuses", [])}
        known = states_until(item, as_of)
        elapsed = timedelta(0)
        breached_at = None
        for i, (at, name, cat) in enumerate(known):
            end = known[i + 1][0] if i + 1 < len(known) else as_of
            if cat == "done" or name.casefold() in pauses:
                continue
            worked = working_time(cal, at, end)
            if breached_at is None and elapsed + worked > target:
                breached_at = instant_exceeding(cal, at, target - elapsed)
            elapsed += worked
        done = known[-1][2] == "done"
        clocks.append(Clock(item, policy["name"], "resolution", target, elapsed, done,
                            resolved(item, as_of) if done else None,
                            clock_status(elapsed, target, done, ratio), breached_at))
    return clocks


# ----------------------------------------------------------------------------- the report

def membership_changes(i: TruthItem) -> list[tuple[datetime, tuple[str, ...], tuple[str, ...]]]:
    """(instant, sprints before, sprints after) of an item; its creation first."""
    changes: list[tuple[datetime, tuple[str, ...], tuple[str, ...]]] = [(i.created, (), i.initial_sprints)]
    for at, new in i.sprint_changes:
        changes.append((at, changes[-1][2], new))
    return changes


def sprint_moves(truth: Truth, items: list[TruthItem], source: str, project: str,
                 as_of: datetime) -> dict[str, int]:
    """§8: membership starts and ends after a reported sprint's start, at or before its end."""
    added = removed = 0
    for s in truth.sprints:
        if s.source != source or s.start > as_of:
            continue
        c = s.complete if s.complete is not None and s.complete <= as_of else as_of
        for i in items:
            if (i.source, i.project) != (source, project):
                continue
            for at, old, new in membership_changes(i):
                if s.start < at <= c:
                    added += s.sprint_id in new and s.sprint_id not in old
                    removed += s.sprint_id in old and s.sprint_id not in new
    return {"items_added_to_sprints": added, "items_removed_from_sprints": removed}


def oracle_forecast(its: list[TruthItem], as_of: datetime, window: int = 56, horizon: int = 14) -> dict[str, Any]:
    """§11 in plain Python: exact probabilities of S_n by explicit sums over the daily counts."""
    remaining = sum(1 for i in its if category_at(i, as_of) != "done")
    counts = [0] * window
    for i in its:
        r = resolved(i, as_of)
        if r is not None and as_of - timedelta(days=window) <= r < as_of:
            counts[math.ceil((as_of - r) / timedelta(days=1)) - 1] += 1
    p: dict[int, float] = defaultdict(float)
    for k in counts:
        p[k] += 1 / window
    qs = (0.5, 0.85, 0.95)
    days_q: list[int | None] = [None, None, None]
    if remaining == 0:
        days_q = [0, 0, 0]
    elif any(k > 0 for k in counts):
        dist = {0: 1.0}  # S_n below R, by value; the rest of the mass is done
        for n in range(1, 3651):
            nxt: dict[int, float] = defaultdict(float)
            for v, pv in dist.items():
                for k, pk in p.items():
                    if v + k < remaining:
                        nxt[v + k] += pv * pk
            dist = nxt
            finished = 1 - sum(dist.values())
            for j, q in enumerate(qs):
                if days_q[j] is None and finished >= q - 1e-9:
                    days_q[j] = n
            if days_q[2] is not None:
                break
    total = {0: 1.0}
    for _ in range(horizon):
        nxt = defaultdict(float)
        for v, pv in total.items():
            for k, pk in p.items():
                nxt[v + k] += pv * pk
        total = nxt
    at_least = [sum(pv for v, pv in total.items() if v >= m) for m in range(max(total) + 2)]
    done_q = [max(m for m, pm in enumerate(at_least) if pm >= q - 1e-9) for q in qs]
    day = timedelta(days=1)
    return {"remaining": remaining, "window_days": window, "horizon_days": horizon,
            **{f"days_p{int(q * 100)}": d for q, d in zip(qs, days_q)},
            **{f"date_p{int(q * 100)}": None if d is None else as_of + d * day for q, d in zip(qs, days_q)},
            **{f"done_in_horizon_p{int(q * 100)}": m for q, m in zip(qs, done_q)}}


def assignees_at(item: TruthItem, t: datetime) -> tuple[str, ...]:
    value = item.initial_assignees
    for at, new in item.assignee_changes:
        if at <= t:
            value = new
    return value


def oracle_people(its: list[TruthItem], as_of: datetime, in_window: Any,
                  hours_by_person: dict[str, float]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """§9: credit 1/|A| to each assignee at resolution; the block and the per-person rows."""
    items: dict[str, float] = defaultdict(float)
    points: dict[str, float] = defaultdict(float)
    unassigned = 0
    for i in its:
        r = resolved(i, as_of)
        if r is None or not in_window(r):
            continue
        people = assignees_at(i, r)
        if not people:
            unassigned += 1
        for person in people:
            items[person] += 1 / len(people)
            points[person] += (points_at(i, r) or 0.0) / len(people)
    total = sum(items.values())
    block: dict[str, Any] = {"assignees": sum(1 for c in items.values() if c > 0), "bus_factor": None,
                             "top_person": None, "top_person_share": None, "unassigned_done": unassigned}
    if total > 0:
        ranked = sorted(items.values(), reverse=True)
        k, acc = 0, 0.0
        while acc < total / 2 - 1e-9:
            acc += ranked[k]
            k += 1
        best = ranked[0]
        block.update(bus_factor=k, top_person=min(p for p, c in items.items() if abs(c - best) < 1e-9),
                     top_person_share=best / total)
    rows = [{"person": p, "items_done": items[p], "points_done": points[p],
             "worklog_hours": hours_by_person.get(p, 0.0)} for p in sorted(items) if items[p] > 0]
    return block, rows


def current_points(item: TruthItem) -> float:
    """§13 sums points at their current value (the plan as it stands), done-ness as of `as_of`."""
    return points_at(item, datetime.max.replace(tzinfo=UTC)) or 0.0


def oracle_versions(truth: Truth, items: list[TruthItem], as_of: datetime) -> list[dict[str, Any]]:
    """§13: each version over the items (any project of its source) whose fix versions name it."""
    out = []
    for v in truth.versions:
        its = [i for i in items if i.source == v.source and v.version_id in i.fix_versions]
        done = [i for i in its if category_at(i, as_of) == "done"]
        out.append({"source": v.source, "project": v.project, "version": v.name, "start": v.start,
                    "release_date": v.release_date, "released": v.released, "items_total": len(its),
                    "items_done": len(done), "points_total": float(sum(current_points(i) for i in its)),
                    "points_done": float(sum(current_points(i) for i in done)),
                    "forecast_date_p85": None if v.released else oracle_forecast(its, as_of)["date_p85"]})
    return sorted(out, key=lambda r: (r["source"], r["project"], r["start"] is None, r["start"] or "",
                                      r["version"]))


def base_url(truth: Truth, source: str) -> str:
    """The Jira site's URL, as the items' browse links carry it."""
    return next(i.url for i in truth.items if i.source == source and i.url).rsplit("/browse/", 1)[0]


def oracle_epics(truth: Truth, items: list[TruthItem], as_of: datetime) -> list[dict[str, Any]]:
    """§13: epics (items at the Epic level, and every epic an item links to) over their items."""
    by_key = {(i.source, i.key): i for i in truth.items}
    keys = {(i.source, i.key) for i in truth.items if i.is_epic} | {
        (i.source, i.epic) for i in truth.items if i.epic is not None}
    out = []
    for source, key in keys:
        epic = by_key.get((source, key))
        its = [i for i in items if i.source == source and i.epic == key]
        done = [i for i in its if category_at(i, as_of) == "done"]
        starts = [t for i in its if (t := started(i, as_of)) is not None]
        out.append({"source": source, "project": epic.project if epic else key.rsplit("-", 1)[0], "epic": key,
                    "summary": epic.summary if epic else "", "items_total": len(its), "items_done": len(done),
                    "points_total": float(sum(current_points(i) for i in its)),
                    "points_done": float(sum(current_points(i) for i in done)),
                    "started": min(starts) if starts else None,
                    "finished": max(r for i in its if (r := resolved(i, as_of)) is not None)
                    if its and len(done) == len(its) else None,
                    "item_url": f"{base_url(truth, source)}/browse/{key}"})
    return sorted(out, key=lambda r: (r["source"], r["project"], r["started"] is None,
                                      r["started"] or datetime.min.replace(tzinfo=UTC), r["epic"]))


def oracle_kpis(kpis: list[dict[str, Any]], truth: Truth, policies: list[dict[str, Any]],
                projects: list[dict[str, Any]], as_of: datetime) -> list[dict[str, Any]]:
    """§10 over the oracle's own project rows; a baseline is the report over its window."""
    def value_of(row: dict[str, Any], figure: str) -> float | None:
        v: Any = row
        for part in figure.split("."):
            v = v.get(part) if isinstance(v, dict) else None
        return None if v is None else float(v)

    out = []
    for k in kpis:
        base_rows: dict[tuple[str, str], dict[str, Any]] = {}
        if k.get("target_change") is not None:
            b = k["baseline"]
            base = oracle_report(truth, policies, as_of=min(b["until"], as_of), since=b["since"], until=b["until"])
            base_rows = {(r["source"], r["project"]): r for r in base["projects"]}
        for row in projects:
            if (k.get("sources") and row["source"] not in k["sources"]) or (
                    k.get("projects") and row["project"] not in k["projects"]):
                continue
            value = value_of(row, k["figure"])
            baseline_value = None
            target = k.get("target")
            target = None if target is None else float(target)
            if k.get("target_change") is not None:
                b_row = base_rows.get((row["source"], row["project"]))
                baseline_value = value_of(b_row, k["figure"]) if b_row else None
                target = None if baseline_value is None else baseline_value * (1 + k["target_change"])
            status = ("no_data" if value is None or target is None
                      else "met" if (value >= target if k["op"] == ">=" else value <= target) else "missed")
            out.append({"name": k["name"], "source": row["source"], "project": row["project"], "figure": k["figure"],
                        "value": value, "target": target, "op": k["op"], "baseline_value": baseline_value,
                        "status": status})
    return sorted(out, key=lambda r: (r["name"], r["source"], r["project"]))


# The scorecard of the end-to-end configuration: an absolute target, a relative one against a
# baseline window, and a figure that has no data (no coverage report is configured).
KPIS: list[dict[str, Any]] = [
    {"name": "bus-factor", "figure": "people.bus_factor", "op": ">=", "target": 2},
    {"name": "coverage", "figure": "line_coverage", "op": ">=", "target": 0.8},
    {"name": "throughput-up", "figure": "throughput_per_week", "op": ">=", "target_change": 0.1,
     "baseline": {"since": datetime(2025, 11, 1, tzinfo=UTC), "until": datetime(2026, 1, 1, tzinfo=UTC)}},
]


def oracle_report(truth: Truth, policies: list[dict[str, Any]], *, as_of: datetime,
                  since: datetime | None = None, until: datetime | None = None,
                  kpis: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    until = until or as_of

    def in_window(t: datetime | None) -> bool:
        return t is not None and (since is None or t >= since) and t < until

    items = [i for i in truth.items if i.created <= as_of]
    by_project: dict[tuple[str, str], list[TruthItem]] = defaultdict(list)
    for i in items:
        by_project[(i.source, i.project)].append(i)
    clocks = {id(i): sla_clocks(i, p, as_of) for i in items if (p := policy_for(i, policies)) is not None}

    projects = []
    people_rows: list[dict[str, Any]] = []
    authors: dict[tuple[str, str, str], float] = defaultdict(float)
    for (source, project), its in sorted(by_project.items()):
        created_in = [i for i in its if in_window(i.created)]
        defects = [i for i in created_in if i.is_defect]
        # (item, started, resolved) of the items resolved in the window
        done_in = [(i, started(i, as_of), r) for i in its if in_window(r := resolved(i, as_of)) and r]
        points_done = sum(points_at(i, r) or 0.0 for i, _, r in done_in)
        start = since if since is not None else min(i.created for i in its)
        weeks = (until - start) / WEEK
        wip_ages = [days(as_of - s) for i in its
                    if category_at(i, as_of) == "in_progress" and (s := started(i, as_of))]
        hours = 0.0
        for i in its:
            for started_at, seconds, author in i.worklogs:
                if in_window(started_at) and started_at <= as_of:
                    hours += seconds / 3600
                    authors[(source, project, author)] += seconds / 3600
        stopped = [c for i in its for c in clocks.get(id(i), []) if c.stopped and in_window(c.stop_at)]
        kloc = truth.kloc.get((source, project))
        people, per_person = oracle_people(its, as_of, in_window, {
            a: h for (s_, p_, a), h in authors.items() if (s_, p_) == (source, project)})
        people_rows += [{"source": source, "project": project, **r} for r in per_person]
        projects.append({
            "source": source, "project": project,
            "project_name": truth.project_names.get((source, project), project),
            "issues_total": len(created_in), "issues_done": len(done_in),
            "defects_total": len(defects),
            "defects_open": sum(1 for i in defects if category_at(i, as_of) != "done"),
            "points_done": float(points_done),
            "defect_density_per_kloc": len(defects) / kloc if kloc else None,
            "defects_per_100_points": 100 * len(defects) / points_done if points_done else None,
            "throughput_per_week": len(done_in) / weeks if weeks > 0 else None,
            "cycle_time_days": stats([days(r - s) for _, s, r in done_in if s is not None]),
            "lead_time_days": stats([days(r - i.created) for i, _, r in done_in]),
            "worklog_hours": hours,
            "wip": len(wip_ages),
            "wip_age_days_p85": percentile(wip_ages, 0.85) if wip_ages else None,
            "sla_compliance": sum(c.status == "met" for c in stopped) / len(stopped) if stopped else None,
            **sprint_moves(truth, items, source, project, as_of),
            "people": people,
            "forecast": oracle_forecast(its, as_of),
            "line_coverage": None, "lines_valid": None,
        })

    sprints = []
    for s in sorted(truth.sprints, key=lambda s: (s.source, s.board, s.start, s.sprint_id)):
        if s.start > as_of:
            continue
        closed = s.complete is not None and s.complete <= as_of
        c = s.complete if closed and s.complete else as_of
        committed = completed = added = removed = 0.0
        for i in items:
            if i.source != s.source:
                continue
            if s.sprint_id in sprints_at(i, s.start):
                committed += points_at(i, s.start) or 0.0
            if s.sprint_id in sprints_at(i, c) and category_at(i, c) == "done":
                completed += points_at(i, c) or 0.0
            # Membership changes as (instant, members before, members after); creation included.
            changes: list[tuple[datetime, tuple[str, ...], tuple[str, ...]]] = [
                (i.created, (), i.initial_sprints)]
            for at, new in i.sprint_changes:
                changes.append((at, changes[-1][2], new))
            during = [(at, old, new) for at, old, new in changes if s.start < at <= c]
            joins = [at for at, old, new in during if s.sprint_id in new and s.sprint_id not in old]
            leaves = [at for at, old, new in during if s.sprint_id in old and s.sprint_id not in new]
            if joins:
                added += points_at(i, joins[0]) or 0.0
            if leaves:
                removed += points_at(i, leaves[0]) or 0.0
        sprints.append({
            "source": s.source, "board": s.board, "sprint_id": s.sprint_id, "name": s.name,
            "state": "closed" if closed else "active", "start": s.start, "end": s.end,
            "complete": s.complete if closed else None,
            "committed_points": committed, "completed_points": completed,
            "added_points": added, "removed_points": removed,
            "scope_change_ratio": (added + removed) / committed if committed else None,
        })

    iterations = []
    origin = datetime.combine(ITERATION_START, time(0), tzinfo=UTC)
    length = timedelta(days=ITERATION_DAYS)
    for source, boards in sorted(truth.trello_boards.items()):
        for board in sorted(boards):
            resolved_cards = [(r, points_at(i, r) or 0.0) for i in items
                              if (i.source, i.project) == (source, board) and (r := resolved(i, as_of))]
            k = 0
            while origin + k * length <= as_of:
                lo, hi = origin + k * length, origin + (k + 1) * length
                done = float(sum(p for r, p in resolved_cards if lo <= r < hi))
                iterations.append({"source": source, "project": board, "start": lo, "end": hi,
                                   "completed_points": done})
                k += 1

    sla = []
    for i in sorted(items, key=lambda i: (i.source, i.project, i.item)):
        if not in_window(i.created):
            continue
        for c in sorted(clocks.get(id(i), []), key=lambda c: c.clock):
            sla.append({"source": i.source, "project": i.project, "item": i.item, "item_url": i.url,
                        "policy": c.policy,
                        "clock": c.clock, "target_hours": c.target / HOUR, "elapsed_hours": c.elapsed / HOUR,
                        "status": c.status, "breached_at": c.breached_at})

    return {
        "schema": "trackpulse.metrics/1",
        "as_of": as_of,
        "window": {"since": since, "until": until},
        "projects": projects,
        "sprints": sprints,
        "iterations": iterations,
        "worklogs_by_author": [{"source": s, "project": p, "author": a, "hours": h}
                               for (s, p, a), h in sorted(authors.items())],
        "sla": sla,
        "people_by_project": people_rows,
        "kpis": oracle_kpis(kpis or [], truth, policies, projects, as_of),
        "versions": oracle_versions(truth, items, as_of),
        "epics": oracle_epics(truth, items, as_of),
    }


# =============================================================================== comparing

def differences(actual: Any, expected: Any, path: str = "$") -> list[str]:
    """Every place where the CLI's JSON differs from the oracle (floats to 1e-9 relative)."""
    if isinstance(expected, datetime):
        if not (isinstance(actual, str) and actual.endswith("Z")):
            return [(f"{path}: {actual!r} is not an ISO 8601 UTC instant with Z "
                     f"(expected {expected.isoformat()})")]
        got = datetime.fromisoformat(actual)
        return [] if got == expected else [f"{path}: {actual} != {expected.isoformat()}"]
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [f"{path}: {actual!r} is not an object"]
        out = []
        if list(actual) != list(expected):
            out.append(f"{path}: keys {list(actual)} != {list(expected)}")
        for k in expected:
            if k in actual:
                out += differences(actual[k], expected[k], f"{path}.{k}")
        return out
    if isinstance(expected, list):
        if not isinstance(actual, list):
            return [f"{path}: {actual!r} is not a list"]
        out = []
        if len(actual) != len(expected):
            out.append(f"{path}: {len(actual)} entries, expected {len(expected)}")
        for n, (a, e) in enumerate(zip(actual, expected)):
            out += differences(a, e, f"{path}[{n}{_label(e)}]")
        return out
    if isinstance(expected, float):
        if not isinstance(actual, float):
            return [f"{path}: {actual!r} is not a float (expected {expected!r})"]
        ok = math.isclose(actual, expected, rel_tol=1e-9, abs_tol=1e-9)
        return [] if ok else [f"{path}: {actual!r} != {expected!r}"]
    if isinstance(expected, bool) or expected is None or isinstance(expected, str):
        same = actual == expected and type(actual) is type(expected)
        return [] if same else [f"{path}: {actual!r} != {expected!r}"]
    if isinstance(expected, int):
        ok = isinstance(actual, int) and not isinstance(actual, bool) and actual == expected
        return [] if ok else [f"{path}: {actual!r} != {expected!r}"]
    raise TypeError(f"{path}: unexpected oracle value {expected!r}")


def _label(entry: Any) -> str:
    if not isinstance(entry, dict):
        return ""
    parts = [str(entry[k]) for k in ("project", "sprint_id", "item", "clock", "author", "person", "version",
                                     "epic", "name") if k in entry]
    if isinstance(entry.get("start"), datetime) and "sprint_id" not in entry:
        parts.append(entry["start"].date().isoformat())
    return " " + "/".join(parts)


def assert_matches_oracle(actual: dict[str, Any], expected: dict[str, Any]) -> None:
    diffs = differences(actual, expected)
    assert not diffs, f"{len(diffs)} differences between `trackpulse metrics --json` and the oracle:\n" + \
        "\n".join(diffs[:60])


# =============================================================================== the worlds

def build_jira_world(seed: int) -> JiraWorld:
    """A generated site, then a few days of life: mutations, a sprint closed and the next started."""
    w = JiraWorld.generate(seed, projects=2, issues_per_project=60, now=NOW)
    w.advance(timedelta(hours=5))
    w.mutate(seed * 10 + 1, fraction=0.12)
    w.advance(timedelta(hours=3))
    board = next(b for b in w.boards.values() if b.project_key == "ABC" and b.type == "scrum")
    active = next(s for s in w.board_sprints(board.id) if s.state == "active")
    w.close_sprint(active.id)  # unfinished issues carried over into the next sprint
    w.advance(timedelta(hours=1))
    following = next(s for s in w.board_sprints(board.id) if s.state == "future")
    w.start_sprint(following.id)
    w.advance(timedelta(hours=2))
    todo = [i for i in w.live_issues() if i.project_key == "ABC" and following.id not in i.sprints]
    for issue in todo[:3]:  # added mid-sprint
        w.add_to_sprint(issue.nid, following.id)
    w.set_story_points(todo[0].nid, 8.0)
    members = [i for i in w.live_issues() if following.id in i.sprints and i.status_category != "done"]
    if members:
        w.advance(timedelta(minutes=30))
        w.set_sprints(members[-1].nid, tuple(x for x in members[-1].sprints if x != following.id))  # removed
    w.advance(timedelta(days=1))  # WINDOW_AS_OF falls in here
    w.mutate(seed * 10 + 2, fraction=0.12)
    w.advance(timedelta(hours=7))
    w.mutate(seed * 10 + 3, fraction=0.12)
    w.advance(timedelta(minutes=5))
    w.mutate_plans(seed * 10 + 3, fraction=0.1)  # reassignments, fix versions, epics, a release
    w.advance(timedelta(minutes=5))
    return w


def build_trello_world(seed: int) -> TrelloWorld:
    w = TrelloWorld.generate(seed, boards=2, cards_per_board=40, actions_per_card=7, now=NOW)
    w.mutate(25)
    w.advance(86400)
    w.mutate(25)
    w.mutate_members(seed * 10 + 1, n=8)
    w.advance(600)
    return w


@dataclass
class Synced:
    """Three simulators synced into one store, with their truth and the config file."""

    config_path: Path
    truths: dict[str, Truth]
    nows: dict[str, datetime]
    policies: list[dict[str, Any]]

    def truth(self, *sources: str) -> Truth:
        out = Truth()
        for s in sources or self.truths:
            out = out.merged(self.truths[s])
        return out


def toml_value(v: Any) -> str:
    if isinstance(v, datetime):
        return iso(v)  # a TOML offset date-time, unquoted
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)  # a JSON string is a TOML basic string
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{json.dumps(k)} = {toml_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(v)


def to_toml(cfg: dict[str, Any]) -> str:
    lines = ["[store]", f"url = {toml_value(cfg['store']['url'])}", ""]
    for src in cfg["sources"]:
        lines.append("[[sources]]")
        lines += [f"{k} = {toml_value(v)}" for k, v in src.items()]
        lines.append("")
    for name, cal in cfg["sla"]["calendars"].items():
        lines.append(f"[sla.calendars.{name}]")
        lines += [f"{k} = {toml_value(v)}" for k, v in cal.items()]
        lines.append("")
    for p in cfg["sla"]["policies"]:
        lines.append("[[sla.policies]]")
        lines += [f"{k} = {toml_value(v)}" for k, v in p.items()]
        lines.append("")
    for k in cfg.get("kpis", []):
        lines.append("[[kpis]]")
        lines += [f"{key} = {toml_value(v)}" for key, v in k.items()]
        lines.append("")
    return "\n".join(lines)


@pytest.fixture(scope="module")
def synced(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synced]:
    tmp = tmp_path_factory.mktemp("e2e")
    cloud, dc, trello = build_jira_world(3), build_jira_world(8), build_trello_world(5)
    boards = sorted(trello.boards)
    with ExitStack() as stack:
        cloud_url = stack.enter_context(serve_in_thread(create_jira_app(cloud, profile="cloud")))
        dc_url = stack.enter_context(serve_in_thread(create_jira_app(dc, profile="dc")))
        trello_url = stack.enter_context(serve_in_thread(create_trello_app(
            trello, key=TRELLO_KEY, token=TRELLO_TOKEN, app_secret=TRELLO_SECRET)))
        policies = sla_policies(boards[0])
        cfg_dict: dict[str, Any] = {
            "store": {"url": f"sqlite:///{tmp}/store.db"},
            "sources": [
                {"name": "jira-cloud", "kind": "jira", "url": cloud_url, "email": "sim@example.com",
                 "token": "sim-token", "projects": ["ABC", "DEF"], "kloc": {"ABC": 12.5}, "max_retries": 2},
                {"name": "jira-dc", "kind": "jira", "url": dc_url, "token": "sim-token",
                 "projects": ["ABC", "DEF"], "max_retries": 2},
                {"name": "team-trello", "kind": "trello", "api_url": trello_url, "key": TRELLO_KEY,
                 "token": TRELLO_TOKEN, "app_secret": TRELLO_SECRET, "boards": boards,
                 "done_lists": DONE_LISTS, "in_progress_lists": IN_PROGRESS_LISTS,
                 "defect_labels": DEFECT_LABELS, "priority_labels": PRIORITY_LABELS, "points_field": "Points",
                 "iteration_days": ITERATION_DAYS, "iteration_start": ITERATION_START.isoformat(),
                 "kloc": {boards[1]: 3.0}, "requests_per_second": 0, "max_retries": 2},
            ],
            "sla": {"calendars": CALENDARS, "policies": policies},
            "kpis": KPIS,
        }
        cfg = parse_config(cfg_dict)
        store = open_store(cfg.store.url)
        try:
            for source in cfg.sources:
                sync_source(store, source, full=True)
            # Later life, read by an incremental sync: plan changes on Jira (an incremental Jira sync
            # cannot see deletions, which `mutate` makes; webhooks and full runs do), more of
            # everything on Trello.
            for n, w in enumerate((cloud, dc)):
                w.advance(timedelta(minutes=20))
                w.mutate_plans(200 + n, fraction=0.08)
                w.advance(timedelta(minutes=5))
            trello.mutate(10)
            trello.mutate_members(300, n=6)
            trello.advance(300)
            for source in cfg.sources:
                sync_source(store, source, full=False)
            # Then plan changes arrive by webhook only, through each connector's apply_webhook.
            apply_jira_plan_webhooks(store, cfg.sources[0], cloud, cloud_url, "cloud", seed=400)
            apply_jira_plan_webhooks(store, cfg.sources[1], dc, dc_url, "dc", seed=401)
            apply_trello_member_webhooks(store, cfg.sources[2], trello, seed=402)
        finally:
            store.dispose()
    config_path = tmp / "trackpulse.toml"
    config_path.write_text(to_toml(cfg_dict), encoding="utf-8")
    truths = {"jira-cloud": jira_truth(cloud, "jira-cloud", cloud_url), "jira-dc": jira_truth(dc, "jira-dc", dc_url),
              "team-trello": trello_truth(trello, "team-trello", boards)}
    truths["jira-cloud"].kloc[("jira-cloud", "ABC")] = 12.5
    truths["team-trello"].kloc[("team-trello", boards[1])] = 3.0
    yield Synced(config_path, truths, {"jira-cloud": cloud.now, "jira-dc": dc.now, "team-trello": trello.now},
                 policies)


def apply_jira_plan_webhooks(store: Any, source: Any, world: JiraWorld, base_url: str, profile: str, *,
                             seed: int) -> None:
    """Plan changes (reassignments, fix versions, epics, a release, a new version) delivered as
    the admin webhook would post them, each rendered at its event as Jira does."""
    renderer = JiraRenderer(world, PROFILES[profile], base_url, api_version=2)
    first = len(world.events)
    world.advance(timedelta(minutes=3))
    world.mutate_plans(seed, fraction=0.08)
    payloads = [jira_webhook_payload(world, renderer, ev) for ev in world.events[first:]]
    world.advance(timedelta(minutes=2))
    assert {p["webhookEvent"] for p in payloads} >= {"jira:issue_updated", "jira:version_created"}
    for n, payload in enumerate(payloads):
        outcome = apply_jira_webhook(store, source, payload, {"X-Atlassian-Webhook-Identifier": f"e2e-{seed}-{n}"})
        assert outcome.outcome in ("applied", "deleted"), outcome


def apply_trello_member_webhooks(store: Any, source: Any, world: TrelloWorld, *, seed: int) -> None:
    actions = world.mutate_members(seed, n=6)
    world.advance(120)
    assert actions
    for action in actions:
        board = world.boards[action["data"]["board"]["id"]]
        outcome = apply_trello_webhook(store, source, {"action": action, "model": board.ref()}, {})
        assert outcome.outcome == "applied", outcome


def iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


def metrics_json(config: Path, *args: str) -> dict[str, Any]:
    """`trackpulse --config FILE metrics --json ARGS` as users run it; stdout holds the JSON alone."""
    exe = Path(sys.executable).with_name("trackpulse")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "trackpulse"]
    proc = subprocess.run([*cmd, "--config", str(config), "metrics", "--json", *args], capture_output=True,
                          text=True, timeout=120, env={**os.environ, "TRACKPULSE_DEBUG": "1"}, check=False)
    assert proc.returncode == 0, f"exit {proc.returncode}: {proc.stderr}"
    report = json.loads(proc.stdout)
    jsonschema.validate(report, SCHEMA, cls=jsonschema.Draft202012Validator)  # the extended contract
    return report


# =============================================================================== the tests

@pytest.mark.parametrize("source", ["jira-cloud", "jira-dc", "team-trello"])
def test_metrics_json_equals_the_oracle_computed_from_the_simulators_events(synced: Synced,
                                                                            source: str) -> None:
    as_of = synced.nows[source]
    report = metrics_json(synced.config_path, "--as-of", iso(as_of), "--source", source)
    expected = oracle_report(synced.truth(source), synced.policies, as_of=as_of, kpis=KPIS)
    # The worlds are rich enough that every section has something to compare.
    assert expected["projects"] and expected["sla"]
    assert expected["sprints"] if source != "team-trello" else expected["iterations"]
    assert any(p["worklog_hours"] for p in expected["projects"]) or source == "team-trello"
    assert {c["status"] for c in expected["sla"]} >= {"met", "breached"}
    if source == "team-trello":  # METRICS.md §1: a card is named by its 24-hex id, linked by its shortLink
        assert all(re.fullmatch(r"[0-9a-f]{24}", c["item"]) for c in report["sla"])
        assert all(re.fullmatch(r"https://trello\.com/c/[A-Za-z0-9]{8}", c["item_url"]) for c in report["sla"])
        assert all(p["project_name"] != p["project"] for p in report["projects"])
    assert_plans_are_rich(synced.truth(source), expected, trello=source == "team-trello")
    assert_matches_oracle(report, expected)


def assert_plans_are_rich(truth: Truth, expected: dict[str, Any], *, trello: bool) -> None:
    """The issue-9 sections have something to compare: people with shared credit on Trello,
    reassigned Jira items, versions released and not, a version with items of two projects,
    epics spanning sprints, one with work still open."""
    assert expected["people_by_project"] and all(p["people"]["assignees"] for p in expected["projects"])
    assert {k["status"] for k in expected["kpis"]} >= {"met", "no_data"}
    if trello:
        assert any(r["items_done"] % 1 for r in expected["people_by_project"]), "no card with two members"
        assert not expected["versions"] and not expected["epics"]
        return
    assert any(len({names for _, names in i.assignee_changes}) > 1 for i in truth.items), "no reassignment"
    assert {v["released"] for v in expected["versions"]} == {True, False}
    by_version: dict[str, set[str]] = defaultdict(set)
    for i in truth.items:
        for v in i.fix_versions:
            by_version[v].add(i.project)
    assert any(len(projects) == 2 for projects in by_version.values()), "no version with items of two projects"
    assert any(e["items_total"] and e["finished"] is None and e["items_done"] for e in expected["epics"])
    sprints_of: dict[str, set[str]] = defaultdict(set)
    for i in truth.items:
        if i.epic:
            sprints_of[i.epic].update(i.initial_sprints, *(new for _, new in i.sprint_changes))
    assert any(len(s) > 1 for s in sprints_of.values()), "no epic spanning sprints"


def test_metrics_window_and_as_of_over_every_source_equal_the_oracle(synced: Synced) -> None:
    report = metrics_json(synced.config_path, "--as-of", iso(WINDOW_AS_OF), "--since", iso(WINDOW_SINCE),
                          "--until", iso(WINDOW_UNTIL))
    expected = oracle_report(synced.truth(), synced.policies, as_of=WINDOW_AS_OF, since=WINDOW_SINCE,
                             until=WINDOW_UNTIL, kpis=KPIS)
    # The evaluation time falls inside the worlds' later life: something happened after it.
    assert any(s["state"] == "active" and s["complete"] is None for s in expected["sprints"])
    assert_matches_oracle(report, expected)


def test_human_tables_name_trello_boards_and_cards_as_people_know_them(synced: Synced) -> None:
    """METRICS.md §7: tables show a board's name and a card's shortLink; the JSON keeps the ids."""
    exe = Path(sys.executable).with_name("trackpulse")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "trackpulse"]
    as_of = synced.nows["team-trello"]
    proc = subprocess.run([*cmd, "--config", str(synced.config_path), "metrics", "--as-of", iso(as_of),
                           "--source", "team-trello"], capture_output=True, text=True, timeout=120, check=False,
                          env={**os.environ, "COLUMNS": "250"})
    assert proc.returncode == 0, proc.stderr
    truth = synced.truth("team-trello")
    for (_, board), name in truth.project_names.items():
        assert name in proc.stdout
        assert board not in proc.stdout
    breached = [i for i in truth.items if i.url]
    assert any(i.url.rsplit("/", 1)[-1] in proc.stdout for i in breached)
    assert not any(i.item in proc.stdout for i in breached)
    report = metrics_json(synced.config_path, "--as-of", iso(as_of), "--source", "team-trello")
    assert {p["project"]: p["project_name"] for p in report["projects"]} == \
        {board: name for (_, board), name in truth.project_names.items()}

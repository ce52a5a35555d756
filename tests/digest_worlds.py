"""Small hand-built metrics worlds for the digest tests, with figures worked out by hand.

The digest `weekly` runs Mondays 09:00 Asia/Shanghai = 01:00 UTC. As of 2026-01-19T01:00Z its
window is [01-12T01:00Z, 01-19T01:00Z) and the previous period [01-05T01:00Z, 01-12T01:00Z).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from trackpulse.config import DigestConfig
from trackpulse.metrics import MetricsInput, SlaPolicy, SlaSettings, SourceSettings
from trackpulse.metrics.frames import CostSettings

AS_OF = datetime(2026, 1, 19, 1, 0, tzinfo=UTC)
SRC = "acme-jira"
STATUSES = [{"source": SRC, "status_id": i, "name": n, "category": c}
            for i, n, c in (("1", "To Do", "todo"), ("2", "In Progress", "in_progress"), ("3", "Done", "done"))]


def digest_config(**overrides: Any) -> DigestConfig:
    values: dict[str, Any] = {"name": "weekly", "cron": "0 9 * * mon", "timezone": "Asia/Shanghai",
                              "language": "en", "period_days": 7}
    values.update(overrides)
    return DigestConfig(**values)


def _issue(project: str, key: str, status: str, created: str, **more: Any) -> dict[str, Any]:
    return {"source": SRC, "project": project, "item_id": key, "key": key, "status_id": status,
            "created": created, "reporter": "rep", **more}


def _mv(key: str, at: str, frm: str | None, to: str) -> dict[str, Any]:
    return {"source": SRC, "item_id": key, "at": at, "from_status_id": frm, "to_status_id": to}


def two_week_records() -> dict[str, Any]:
    """ABC-1 done in the previous period; ABC-2 and ABC-3 done in the window (cycle 2.0 and 2.5 d);
    ABC-4 (a P1 defect) in progress since 01-15 08:00 with both SLA clocks breached in the window;
    DEF-1 (P1 defect) done in the previous period, its clocks breached then; DEF-2 created in the window."""
    return {
        "statuses": STATUSES,
        "items": [
            _issue("ABC", "ABC-1", "3", "2026-01-06T08:00Z", points=3, sprint_ids=("34",)),
            _issue("ABC", "ABC-2", "3", "2026-01-06T10:00Z", points=5, sprint_ids=("35",)),
            _issue("ABC", "ABC-3", "3", "2026-01-13T08:00Z", points=2, sprint_ids=("35",)),
            _issue("ABC", "ABC-4", "2", "2026-01-14T08:00Z", points=1, is_defect=True, priority="P1", type="Bug"),
            _issue("DEF", "DEF-1", "3", "2026-01-08T08:00Z", is_defect=True, priority="P1", type="Bug"),
            _issue("DEF", "DEF-2", "1", "2026-01-12T12:00Z"),
        ],
        "transitions": [
            _mv("ABC-1", "2026-01-07T09:00Z", "1", "2"), _mv("ABC-1", "2026-01-09T09:00Z", "2", "3"),
            _mv("ABC-2", "2026-01-13T09:00Z", "1", "2"), _mv("ABC-2", "2026-01-15T09:00Z", "2", "3"),
            _mv("ABC-3", "2026-01-14T08:00Z", "1", "2"), _mv("ABC-3", "2026-01-16T20:00Z", "2", "3"),
            _mv("ABC-4", "2026-01-15T08:00Z", "1", "2"),
            _mv("DEF-1", "2026-01-10T08:00Z", "1", "3"),
        ],
        "worklogs": [
            {"source": SRC, "item_id": "ABC-2", "author": "Ada Li", "started": "2026-01-13T10:00Z", "seconds": 7200},
            {"source": SRC, "item_id": "ABC-3", "author": "李明", "started": "2026-01-15T10:00Z", "seconds": 5400},
            {"source": SRC, "item_id": "ABC-1", "author": "Bo", "started": "2026-01-08T10:00Z", "seconds": 3600},
        ],
        "sprints": [
            {"source": SRC, "board_id": "12", "sprint_id": "34", "name": "ABC Sprint 1", "state": "closed",
             "start": "2026-01-05T00:00Z", "end": "2026-01-12T00:00Z", "complete": "2026-01-12T00:00Z"},
            {"source": SRC, "board_id": "12", "sprint_id": "35", "name": "ABC Sprint 2", "state": "active",
             "start": "2026-01-12T02:00Z", "end": "2026-01-26T02:00Z"},
        ],
        "boards": [{"source": SRC, "board_id": "12", "name": "ABC board"}],
    }


def two_week_world() -> MetricsInput:
    """The world of `two_week_records` with its P1 SLA policy and CNY costs."""
    return MetricsInput.from_records(
        **two_week_records(),
        sources=[SourceSettings(name=SRC)],
        sla=SlaSettings(policies=(SlaPolicy(name="P1", priorities=("P1",), response_hours=1,
                                            resolution_hours=8),)),
        cost=CostSettings(currency="CNY", default_rate=100.0, budgets={(SRC, "ABC"): 1000.0}),
    )


def many_projects_world(projects: int = 10, items_per_project: int = 30, *, policy: str = "P1") -> MetricsInput:
    """`projects` projects, each with items done over two weeks, work in progress, P1 items whose
    clocks breach (under the SLA policy named `policy`), worklogs by several people and a sprint
    per board: a full-size digest."""
    items, moves, logs, sprints, boards = [], [], [], [], []
    people = ["Ada Li", "Bo Chen", "李明", "王芳", "Carlos Diaz", "张伟"]
    for p in range(projects):
        key = f"P{p:02d}"
        board = str(100 + p)
        boards.append({"source": SRC, "board_id": board, "name": f"{key} board"})
        sprints.append({"source": SRC, "board_id": board, "sprint_id": f"{board}1", "name": f"{key} Sprint 1",
                        "state": "closed", "start": "2026-01-05T00:00Z", "end": "2026-01-12T00:00Z",
                        "complete": "2026-01-12T00:00Z"})
        sprints.append({"source": SRC, "board_id": board, "sprint_id": f"{board}2", "name": f"{key} Sprint 2",
                        "state": "active", "start": "2026-01-12T02:00Z", "end": "2026-01-26T02:00Z"})
        for n in range(items_per_project):
            ik = f"{key}-{n + 1}"
            day = 5 + (n % 13)
            created = f"2026-01-{day:02d}T0{n % 9}:00Z"
            state = ("3", "2", "1")[n % 3]
            sprint = f"{board}1" if day < 12 else f"{board}2"
            items.append(_issue(key, ik, state, created, points=float(1 + n % 5), sprint_ids=(sprint,),
                                priority="P1" if n % 4 == 0 else "P3", is_defect=n % 5 == 0,
                                type="Bug" if n % 5 == 0 else "Story"))
            if state in ("2", "3"):
                moves.append(_mv(ik, f"2026-01-{day:02d}T1{n % 9}:00Z", "1", "2"))
            if state == "3":
                moves.append(_mv(ik, f"2026-01-{min(day + 1 + n % 2, 18):02d}T20:00Z", "2", "3"))
            logs.append({"source": SRC, "item_id": ik, "author": people[n % len(people)],
                         "started": f"2026-01-{day:02d}T12:00Z", "seconds": 1800 * (1 + n % 4)})
    return MetricsInput.from_records(
        statuses=STATUSES, items=items, transitions=moves, worklogs=logs, sprints=sprints, boards=boards,
        sources=[SourceSettings(name=SRC)],
        sla=SlaSettings(policies=(SlaPolicy(name=policy, priorities=("P1",), response_hours=1,
                                            resolution_hours=8),)),
        cost=CostSettings(currency="CNY", default_rate=100.0,
                          budgets={(SRC, f"P{p:02d}"): 5000.0 for p in range(projects)}),
    )


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def write_world(store: Any, inp_records: dict[str, list[dict[str, Any]]]) -> None:
    """Write a world given as `MetricsInput.from_records` keyword lists into a store through the
    connectors' one write path (`apply_bundles`, `upsert_*`), as a Jira sync would leave it."""
    from trackpulse.records import (
        BoardRecord,
        HistoryRecord,
        ItemBundle,
        ItemRecord,
        SprintRecord,
        StatusRecord,
        TransitionRecord,
        WorklogRecord,
    )
    from trackpulse.store.writer import apply_bundles, upsert_boards, upsert_sprints, upsert_statuses

    category = {s["status_id"]: s for s in inp_records["statuses"]}
    bundles = []
    for it in inp_records["items"]:
        key = it["key"]
        moves = [m for m in inp_records["transitions"] if m["item_id"] == key]
        histories = [HistoryRecord(item_id=key, history_id=f"{key}-h{n}", at=_at(m["at"]), author="someone",
                                   raw={}, transitions=[TransitionRecord(at=_at(m["at"]), seq=0,
                                                                         from_status_id=m["from_status_id"],
                                                                         to_status_id=m["to_status_id"])])
                     for n, m in enumerate(moves)]
        logs = [WorklogRecord(worklog_id=f"{key}-w{n}", item_id=key, author=w["author"], author_id=None,
                              started=_at(w["started"]), seconds=w["seconds"], updated=_at(w["started"]))
                for n, w in enumerate(x for x in inp_records["worklogs"] if x["item_id"] == key)]
        status = category[it["status_id"]]
        record = ItemRecord(
            source=SRC, item_id=key, key=key, project=it["project"], type=it.get("type", "Story"),
            status_id=it["status_id"], status_name=status["name"], status_category=status["category"],
            created=_at(it["created"]), updated=_at(it["created"]), raw={}, priority=it.get("priority"),
            is_defect=bool(it.get("is_defect", False)), points=it.get("points"),
            sprint_ids=tuple(it.get("sprint_ids", ())), reporter=it.get("reporter"))
        bundles.append(ItemBundle(item=record, item_id=key, histories=histories, worklogs=logs, comments=[]))
    with store.transaction() as s:
        upsert_statuses(s, SRC, [StatusRecord(x["status_id"], x["name"], x["category"])
                                 for x in inp_records["statuses"]])
        upsert_boards(s, SRC, [BoardRecord(b["board_id"], b["name"], "scrum") for b in inp_records["boards"]])
        upsert_sprints(s, SRC, [SprintRecord(sp["sprint_id"], sp["board_id"], sp["name"], sp["state"],
                                             _at(sp["start"]), _at(sp["end"]),
                                             _at(sp["complete"]) if sp.get("complete") else None)
                                for sp in inp_records["sprints"]])
        apply_bundles(s, SRC, bundles)


def app_config(store_url: str, *, channels: list[dict[str, Any]], language: str = "en",
               projects: list[str] | None = None, timezone: str = "Asia/Shanghai") -> Any:
    """A configuration with the digest `weekly` going to `channels` (their names, in order)."""
    from trackpulse.config import parse_config

    return parse_config({
        "store": {"url": store_url},
        "channels": channels,
        "digests": [{"name": "weekly", "cron": "0 9 * * mon", "timezone": timezone, "language": language,
                     "channels": [c["name"] for c in channels], "projects": projects or []}],
    })


def mail_channel(port: int, name: str = "pmo-mail") -> dict[str, Any]:
    return {"name": name, "kind": "email", "smtp_host": "127.0.0.1", "smtp_port": port, "smtp_security": "none",
            "sender": "trackpulse@example.com", "to": ["pmo@example.com"]}

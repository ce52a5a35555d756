"""The Jira mapping against payloads real Jira servers sent (recorded by DevLake and Perceval).

Expected values are derived from the JSON itself in each test, so the tests state what the
mapping must do with real data, not what it happened to do once.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from trackpulse.connectors.jira import mapping as jm

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT.parent / "shared" / "fixtures"

pytestmark = pytest.mark.skipif(not FIXTURES.is_dir(), reason=f"recorded payloads not found at {FIXTURES}")


def load(rel: str) -> dict[str, Any]:
    return json.loads((FIXTURES / rel).read_text(encoding="utf-8"))


def cloud_mapping(**kw: Any) -> jm.JiraMapping:
    statuses = {
        s.status_id: (s.name, s.category)
        for s in map(jm.map_status, load("jira-cloud/statuses.json")["items"])
    }
    return jm.JiraMapping(
        sprint_field="customfield_10020",
        story_points_field="customfield_10016",
        story_points_name="Story point estimate",
        statuses=statuses,
        **kw,
    )


def test_times_with_hhmm_offsets_become_utc() -> None:
    assert jm.parse_time("2020-06-12T08:13:13.360+0800") == datetime(2020, 6, 12, 0, 13, 13, 360000, UTC)
    assert jm.parse_time("2023-05-29T03:57:06.000+0000") == datetime(2023, 5, 29, 3, 57, 6, tzinfo=UTC)
    assert jm.parse_time("2015-04-11T15:22:00.000+10:00") == datetime(2015, 4, 11, 5, 22, tzinfo=UTC)
    # changelog/bulkfetch's example gives epoch seconds; webhooks give epoch milliseconds
    assert jm.parse_time(1492070429) == datetime(2017, 4, 13, 8, 0, 29, tzinfo=UTC)
    assert jm.parse_time(1492070429000) == jm.parse_time(1492070429)


def test_cloud_board_issues_map_to_items_with_the_payload_status_category() -> None:
    items = load("jira-cloud/board_issues.json")["items"]
    m = cloud_mapping(defect_types=frozenset({"缺陷"}))
    recs = [jm.map_issue("cloud", it, m) for it in items]
    assert len(recs) == 33
    by_id = {r.item_id: r for r in recs}
    for it in items:
        r = by_id[it["id"]]
        f = it["fields"]
        assert r.key == it["key"] and r.project == f["project"]["key"]
        assert r.status_id == f["status"]["id"]
        # 已完成 appears with a `new` category: the category is the truth, not the name
        assert (
            r.status_category
            == {"new": "todo", "indeterminate": "in_progress", "done": "done"}[
                f["status"]["statusCategory"]["key"]
            ]
        )
        assert r.is_defect == (f["issuetype"]["name"] == "缺陷")
        assert r.priority == (f.get("priority") or {}).get("name")
        assert r.reporter == (f.get("reporter") or {}).get("accountId")
        assert r.created == datetime.fromisoformat(f["created"]).astimezone(UTC)
        assert r.points is None  # empty story points are null, not 0
        assert r.sprint_ids == tuple(str(s["id"]) for s in f.get("customfield_10020") or [])
        assert "comment" not in r.raw["fields"]  # comment bodies are never stored
    assert sum(r.status_category == "todo" and r.status_name == "已完成" for r in recs) == 5
    assert sum(r.is_defect for r in recs) == 1


def test_cloud_changelog_histories_give_status_transitions_and_sprint_changes() -> None:
    items = load("jira-cloud/board_issues.json")["items"]
    m = cloud_mapping()
    n_hist = n_status = n_sprint = 0
    for it in items:
        hist, complete = jm.changelog_page(it)
        assert complete  # these embeds hold their whole changelog (total == len)
        for h in hist:
            rec = jm.map_history(it["id"], h, m)
            n_hist += 1
            status_items = [i for i in h["items"] if i["field"] == "status"]
            sprint_items = [i for i in h["items"] if i.get("fieldId") == "customfield_10020"]
            assert [(t.from_status_id, t.to_status_id) for t in rec.transitions] == [
                (i["from"], i["to"]) for i in status_items
            ]
            assert [(c.from_sprint_ids, c.to_sprint_ids) for c in rec.sprint_changes] == [
                (
                    tuple(x.strip() for x in (i["from"] or "").split(",") if x.strip()),
                    tuple(x.strip() for x in (i["to"] or "").split(",") if x.strip()),
                )
                for i in sprint_items
            ]
            n_status += len(rec.transitions)
            n_sprint += len(rec.sprint_changes)
            assert rec.at == datetime.fromisoformat(h["created"]).astimezone(UTC)
    assert n_hist == 522
    expected_status = sum(
        1 for it in items for h in it["changelog"]["histories"] for i in h["items"] if i["field"] == "status"
    )
    assert n_status == expected_status == 165
    assert n_sprint == 21


def test_cloud_issue_changelog_pages_count_status_transitions() -> None:
    pages = load("jira-cloud/issue_changelogs.json")["items"]
    m = cloud_mapping()
    recs = [jm.map_history(str(p["input"]["issue_id"]), p["data"], m) for p in pages]
    expected = sum(1 for p in pages for i in p["data"]["items"] if i["field"] == "status")
    assert sum(len(r.transitions) for r in recs) == expected
    assert len({(r.item_id, r.history_id) for r in recs}) == len(pages)
    # accountId is "" for a deactivated user in this capture: no empty-string ids
    assert all(r.author != "" for r in recs)


def test_cloud_worklogs_sum_to_262500_seconds() -> None:
    items = load("jira-cloud/worklogs.json")["items"]
    # The worklog's own issueId is the truth (DevLake's recorded `input` disagrees for 8 of them).
    recs = [jm.map_worklog(i["data"]) for i in items]
    assert sum(r.seconds for r in recs) == sum(i["data"]["timeSpentSeconds"] for i in items) == 262_500
    assert all(r.item_id == i["data"]["issueId"] for r, i in zip(recs, items, strict=True))
    assert all(r.started.tzinfo is not None and r.author for r in recs)


def test_cloud_sprints_and_statuses_catalogue() -> None:
    sprints = [jm.map_sprint(s) for s in load("jira-cloud/sprints.json")["items"]]
    assert len(sprints) == 30
    raw = load("jira-cloud/sprints.json")["items"]
    for rec, s in zip(sprints, raw, strict=True):
        assert rec.sprint_id == str(s["id"]) and rec.state == s["state"].lower()
        assert rec.board_id == str(s["originBoardId"])
        assert (rec.complete is None) == (s.get("completeDate") is None)
    statuses = [jm.map_status(s) for s in load("jira-cloud/statuses.json")["items"]]
    cats = {s["id"]: s["statusCategory"]["key"] for s in load("jira-cloud/statuses.json")["items"]}
    assert len(statuses) == 53
    for rec in statuses:
        assert (
            rec.category
            == {"new": "todo", "indeterminate": "in_progress", "done": "done"}[cats[rec.status_id]]
        )


def test_server_issues_use_user_key_and_utc_offsets() -> None:
    items = load("jira-server/board_issues.json")["items"]
    m = jm.JiraMapping(deployment="Server")
    recs = [jm.map_issue("dc", it, m) for it in items]
    assert len(recs) == 22
    for it, r in zip(items, recs, strict=True):
        assert r.reporter == it["fields"]["reporter"]["key"]
        assert r.assignee == (it["fields"].get("assignee") or {}).get("key")
        assert r.updated == datetime.fromisoformat(it["fields"]["updated"]).astimezone(UTC)
        assert r.is_defect == (it["fields"]["issuetype"]["name"] in m.defect_types)
        hist, complete = jm.changelog_page(it)
        assert complete and len(hist) == it["changelog"]["total"]
        for h in hist:
            rec = jm.map_history(it["id"], h, m)
            assert len(rec.transitions) == sum(1 for i in h["items"] if i["field"] == "status")


def test_server_fields_have_no_story_points_or_sprint_field() -> None:
    fields = load("jira-server/fields.json")["items"]
    sp, _name, candidates, sprint, _ = jm.discover_fields(fields)
    assert sp is None and sprint is None and candidates == ()


def test_perceval_server_search_pages_and_fields() -> None:
    p1, p2 = load("perceval-jira/jira_issues_page_1.json"), load("perceval-jira/jira_issues_page_2.json")
    m = jm.JiraMapping(deployment="Server")
    recs = [jm.map_issue("dc", it, m) for it in p1["issues"] + p2["issues"]]
    assert len(recs) == p1["total"] == 3
    assert [r.key for r in recs] == [it["key"] for it in p1["issues"] + p2["issues"]]
    assert all(
        r.assignee == it["fields"]["assignee"]["key"] for r, it in zip(recs, p1["issues"], strict=False)
    )
    comments = load("perceval-jira/jira_comments_issue_page_1.json")
    crecs = [jm.map_comment(c, "1") for c in comments["comments"]]
    assert [c.author for c in crecs] == [jm.user_id(c["author"]) for c in comments["comments"]]
    fields = json.loads((FIXTURES / "perceval-jira/jira_fields.json").read_text())
    sp, *_ = jm.discover_fields(fields)
    named = [f["id"] for f in fields if f["name"].lower() in ("story points", "story point estimate")]
    assert sp == (named[0] if named else None)


def test_data_center_sprint_strings_from_the_agile_spec_parse() -> None:
    spec = (FIXTURES / "specs/jira-software-agile.openapi.json").read_text()
    strings = [
        s.replace("\\n", "")
        for s in re.findall(r"com\.atlassian\.greenhopper\.service\.sprint\.Sprint@[^\]]*\]", spec)
    ]
    assert strings, "the agile spec's Sprint toString examples"
    refs = jm.sprint_refs(strings)
    assert [r["id"] for r in refs] == [re.search(r"\[id=(\d+)", s).group(1) for s in strings]  # type: ignore[union-attr]
    assert {r["state"] for r in refs} <= {"closed", "future", "active"}
    first = jm.map_sprint({**refs[0]})
    assert first.state == "closed" and first.start == datetime(2016, 6, 6, 11, 30, 53, 537000, UTC)


def test_data_center_sprint_names_with_commas_and_nulls() -> None:
    text = (
        "com.atlassian.greenhopper.service.sprint.Sprint@4263b21c[id=444,rapidViewId=158,state=ACTIVE,"
        "name=Shredders, Sprint 5,startDate=2018-04-30T00:01:00.000-07:00,endDate=<null>,"
        "completeDate=<null>,sequence=444,goal=]"
    )
    (ref,) = jm.sprint_refs([text])
    assert ref["id"] == "444" and ref["boardId"] == "158" and ref["state"] == "active"
    assert ref["name"] == "Shredders, Sprint 5"
    rec = jm.map_sprint(ref)
    assert rec.end is None and rec.start == datetime(2018, 4, 30, 7, 1, tzinfo=UTC)


def test_sprint_changelog_id_lists_and_story_point_strings() -> None:
    assert jm.sprint_id_list("76, 79") == ("76", "79")
    assert jm.sprint_id_list("") == () and jm.sprint_id_list(None) == ()
    m = jm.JiraMapping(
        story_points_field="customfield_10016",
        story_points_name="Story Points",
        sprint_field="customfield_10020",
    )
    h = {
        "id": "1",
        "created": "2024-01-02T03:04:05.000+0100",
        "items": [
            {
                "field": "Story Points",
                "fieldtype": "custom",
                "from": None,
                "fromString": "3",
                "to": None,
                "toString": "5",
            },
            {
                "field": "Sprint",
                "fieldtype": "custom",
                "from": "76",
                "fromString": "S1",
                "to": "76, 79",
                "toString": "S1, S2",
            },
        ],
    }
    rec = jm.map_history("9", h, m)  # DC items: no fieldId, matched by name
    assert [(e.from_points, e.to_points) for e in rec.estimate_changes] == [(3.0, 5.0)]
    assert [(c.from_sprint_ids, c.to_sprint_ids) for c in rec.sprint_changes] == [(("76",), ("76", "79"))]


def test_story_points_field_discovery_prefers_board_estimation() -> None:
    fields = [
        {"id": "customfield_10016", "name": "Story point estimate", "schema": {"type": "number"}},
        {"id": "customfield_10028", "name": "Story Points", "schema": {"type": "number"}},
        {
            "id": "customfield_10020",
            "name": "Sprint",
            "schema": {"type": "array", "custom": jm.SPRINT_SCHEMA},
        },
    ]
    sp, name, cands, sprint, _ = jm.discover_fields(fields, ["customfield_10028"])
    assert (sp, name, sprint) == ("customfield_10028", "Story Points", "customfield_10020")
    assert set(cands) == {"customfield_10016", "customfield_10028"}
    assert jm.discover_fields(fields)[0] == "customfield_10016"
    assert jm.discover_fields(fields, [], "customfield_99")[0] == "customfield_99"

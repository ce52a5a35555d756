"""The dashboard over plain HTTP (no browser): CSV export, chart downloads, definitions served
offline, escaping in the raw HTML, the login's refusals, and the cache a webhook invalidates."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator

import httpx
import pytest
from dashboard_support import SCRIPT_KEY, TOKEN, WEBHOOK_SECRET, Served, served_world

TABS = ["/", "/sprints", "/flow", "/schedule", "/people", "/sync"]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with served_world(tmp_path_factory.mktemp("dash-http")) as s:
        yield s


@pytest.fixture
def browser_like(served: Served) -> Iterator[httpx.Client]:
    """A client holding a session cookie from the login form (as a browser would)."""
    with httpx.Client(base_url=served.base, timeout=60) as http:
        r = http.post("/login", data={"token": TOKEN})
        assert r.status_code == 303 and r.headers["location"] == "/"
        yield http


def bearer() -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKEN}"}


def test_metrics_api_exports_a_section_as_csv_with_the_report_figures(served: Served) -> None:
    report = httpx.get(f"{served.base}/api/metrics", headers=bearer()).json()
    r = httpx.get(f"{served.base}/api/metrics", params={"format": "csv", "section": "sprints"}, headers=bearer())
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [(x["name"], float(x["completed_points"])) for x in rows] == \
        [(s["name"], s["completed_points"]) for s in report["sprints"]]
    projects = list(csv.DictReader(io.StringIO(httpx.get(f"{served.base}/api/metrics", params={"format": "csv"},
                                                         headers=bearer()).text)))
    assert "cycle_time_days_p85" in projects[0]
    assert httpx.get(f"{served.base}/api/metrics", params={"format": "xml"}, headers=bearer()).status_code == 400
    assert httpx.get(f"{served.base}/api/metrics", params={"format": "csv", "section": "nope"},
                     headers=bearer()).status_code == 400
    assert httpx.get(f"{served.base}/api/metrics", params={"format": "csv"}).status_code == 401


def test_each_chart_downloads_as_png_and_svg(browser_like: httpx.Client) -> None:
    page = browser_like.get("/flow").text
    slugs = sorted(set(re.findall(r'href="/charts/([a-z0-9-]+)\.svg', page)))
    assert slugs == ["cfd", "cycle-time", "throughput", "wip-age"]
    for slug in slugs:
        png = browser_like.get(f"/charts/{slug}.png")
        assert png.status_code == 200 and png.content[:8] == b"\x89PNG\r\n\x1a\n"
        svg = browser_like.get(f"/charts/{slug}.svg?lang=zh")
        assert svg.status_code == 200 and svg.headers["content-type"].startswith("image/svg+xml")
        assert svg.text.startswith("<svg")
    assert browser_like.get("/charts/velocity-0.gif").status_code == 404
    assert browser_like.get("/charts/nope.svg").status_code == 404
    assert httpx.get(f"{browser_like.base_url}/charts/cfd.png").status_code == 303  # not signed in: to login


def test_pages_reference_only_assets_trackpulse_serves_and_link_each_figure_to_its_definition(
        browser_like: httpx.Client) -> None:
    for path in TABS:
        html = browser_like.get(path).text
        assert "<script" not in html
        for ref in re.findall(r'(?:src|href)="([^"]+)"', html):
            assert ref.startswith(("/", "?", "#", "http://127.0.0.1", "https://trello.com/")), ref
        for anchor in re.findall(r'href="/docs/metrics#([a-z0-9]+)"', html):
            assert f'id="{anchor}"' in browser_like.get("/docs/metrics").text
    assert browser_like.get("/static/dashboard.css").headers["content-type"].startswith("text/css")


def test_a_script_in_an_item_key_is_escaped_in_the_page(browser_like: httpx.Client, served: Served) -> None:
    html = browser_like.get("/").text
    assert SCRIPT_KEY not in html
    assert "ABC-&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_login_refuses_a_wrong_token_with_one_message_and_sets_a_strict_httponly_cookie(served: Served) -> None:
    answers = [httpx.post(f"{served.base}/login", data={"token": t}) for t in ("", "x", TOKEN[:-1], TOKEN + "x")]
    assert {r.status_code for r in answers} == {401}
    assert len({re.sub(r"\s+", " ", r.text) for r in answers}) == 1  # the same page whatever was wrong
    assert all("set-cookie" not in r.headers for r in answers)
    good = httpx.post(f"{served.base}/login", data={"token": TOKEN})
    cookie = good.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and TOKEN not in cookie
    # A forged or tampered cookie opens nothing.
    value = cookie.split(";")[0].split("=", 1)[1]
    forged = value[:-1] + ("0" if value[-1] != "0" else "1")
    assert httpx.get(f"{served.base}/", cookies={"tp_session": forged}).status_code == 303
    assert httpx.get(f"{served.base}/", cookies={"tp_session": value}).status_code == 200


def test_a_webhook_invalidates_the_cached_dashboard(browser_like: httpx.Client, served: Served) -> None:
    from trackpulse.simulator.jira_render import JiraRenderer
    from trackpulse.simulator.jira_world import PROFILES
    from trackpulse.simulator.webhooks import jira_build_delivery, jira_deliver, jira_webhook_payload

    before = browser_like.get("/").text
    wip = re.findall(r'<section class="card" id="wip">.*?</section>', before, re.DOTALL)[0]
    keys = re.findall(r'rel="noreferrer">([A-Z]+-\d+)</a>', wip)
    assert keys
    issue = next(i for i in served.world.live_issues() if i.key == keys[0])
    world = served.world
    seen = len(world.events)
    world.add_transition(issue.nid, world.projects[issue.project_key].workflow.done)
    renderer = JiraRenderer(world, PROFILES["cloud"], served.jira_url, api_version=2)
    statuses = []
    for ev in world.events[seen:]:
        payload = jira_webhook_payload(world, renderer, ev)
        delivery = jira_build_delivery(payload, f"{served.base}/webhooks/jira/acme", secret=WEBHOOK_SECRET)
        statuses.append(jira_deliver(delivery.url, delivery))
    assert statuses and set(statuses) <= {200, 202}
    assert served.app.state.webhooks.wait_idle(30)
    after = browser_like.get("/").text
    wip_after = re.findall(r'<section class="card" id="wip">.*?</section>', after, re.DOTALL)[0]
    assert f">{keys[0]}</a>" not in wip_after



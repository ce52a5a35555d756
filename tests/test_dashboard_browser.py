"""The dashboard in a real headless Chromium (Debian's, driven by Playwright) against the app
served by uvicorn on 127.0.0.1 over a synced Jira simulator world."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from dashboard_support import (
    SCRIPT_KEY,
    TOKEN,
    Served,
    chromium,
    login,
    needs_chromium,
    screenshot_dir,
    served_world,
)

pytestmark = needs_chromium
TABS = ["overview", "sprints", "flow", "schedule", "people", "sync"]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with served_world(tmp_path_factory.mktemp("dash")) as s:
        yield s


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as b:
        yield b


@pytest.fixture
def page(browser: Any, served: Served) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    page = context.new_page()
    page.tp_urls = []  # type: ignore[attr-defined]
    page.tp_errors = []  # type: ignore[attr-defined]
    page.on("request", lambda r: page.tp_urls.append(r.url))
    page.on("framenavigated", lambda f: page.tp_urls.append(f.url))
    page.on("console", lambda m: page.tp_errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: page.tp_errors.append(str(e)))
    yield page
    context.close()


def report(served: Served) -> dict[str, Any]:
    r = httpx.get(f"{served.base}/api/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    r.raise_for_status()
    return r.json()  # type: ignore[no-any-return]


def test_login_with_a_wrong_token_is_refused_and_the_right_one_leads_to_the_overview(page: Any, served: Served) -> None:
    page.goto(served.base + "/")
    assert urlsplit(page.url).path == "/login"
    login(page, served.base, token=TOKEN + "x")
    assert page.locator("#login-error").is_visible()
    assert urlsplit(page.url).path == "/login"
    login(page, served.base, token=TOKEN[:-1])  # a prefix is refused with the very same message
    first = page.locator("#login-error").inner_text()
    login(page, served.base, token="")
    assert urlsplit(page.url).path == "/login"
    login(page, served.base)
    assert urlsplit(page.url).path == "/"
    assert page.locator("#tab-overview.on").count() == 1
    assert page.locator("#kpis, #breaches").count() == 2
    assert first == "Sign-in failed. Check the token and try again."


def test_every_tab_renders_in_both_languages_with_no_console_errors_and_no_request_leaving_localhost(
        page: Any, served: Served) -> None:
    login(page, served.base)
    shots = screenshot_dir()
    for lang in ("en", "zh"):
        page.goto(f"{served.base}/?lang={lang}")
        for tab in TABS:
            page.click(f"#tab-{tab}")
            page.wait_for_load_state("load")
            assert page.locator("#tab-body").get_attribute("data-tab") == tab
            assert page.locator(f"#tab-{tab}.on").count() == 1
            page.screenshot(path=str(shots / f"dashboard-{tab}-{lang}.png"), full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})  # a phone
    for tab in ("overview", "sprints"):
        page.goto(f"{served.base}/{'' if tab == 'overview' else tab}?lang=en")
        assert page.evaluate("document.documentElement.scrollWidth") <= 390 + 1  # no sideways scrolling
        page.screenshot(path=str(shots / f"dashboard-{tab}-en-phone.png"), full_page=True)
    assert page.tp_errors == []
    hosts = {urlsplit(u).hostname for u in page.tp_urls if u.startswith("http")}
    assert hosts == {"127.0.0.1"}
    for tab in TABS:
        for lang in ("en", "zh"):
            assert (shots / f"dashboard-{tab}-{lang}.png").stat().st_size > 10_000


def test_switching_to_chinese_shows_chinese_labels_in_page_and_charts_and_survives_a_reload(
        page: Any, served: Served) -> None:
    login(page, served.base)
    page.goto(served.base + "/sprints?lang=en")
    page.click("#lang-switch")
    page.wait_for_load_state("load")
    assert page.locator("#tab-sprints").inner_text() == "冲刺"
    assert "承诺" in page.locator("#chart-velocity-0").text_content()  # the chart's legend, drawn as SVG text
    page.goto(served.base + "/flow")  # no ?lang= any more: the cookie remembers
    page.reload()
    assert page.locator("#tab-flow").inner_text() == "流动"
    assert "累积流" in (page.locator("#chart-cfd").text_content() or "")
    page.click("#lang-switch")
    page.wait_for_load_state("load")
    assert page.locator("#tab-flow").inner_text() == "Flow"


def test_window_selector_changes_the_window_the_figures_cover(page: Any, served: Served) -> None:
    login(page, served.base)
    page.select_option("#window", "90d")
    page.click("#apply")
    page.wait_for_load_state("load")
    assert "window=90d" in page.url
    assert page.locator("#window").input_value() == "90d"
    page.click("#tab-flow")
    page.wait_for_load_state("load")
    assert "window=90d" in page.url  # tabs keep the selection
    page.select_option("#window", "custom")
    page.fill("input[name=since]", "2026-01-01")
    page.fill("input[name=until]", "2026-01-31")
    page.click("#apply")
    page.wait_for_load_state("load")
    sub = page.locator("header .sub").first.inner_text()
    assert "2026-01-01T00:00:00Z" in sub and "2026-02-01T00:00:00Z" in sub


def test_velocity_bars_match_the_report_sprints(page: Any, served: Served) -> None:
    data = report(served)
    login(page, served.base)
    page.goto(served.base + "/sprints")
    boards: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for s in data["sprints"]:
        boards.setdefault((s["source"], s["board"]), []).append(s)
    assert len(boards) >= 2
    for i, (_, rows) in enumerate(sorted(boards.items())):
        closed = sorted((s for s in rows if s["state"] == "closed"), key=lambda s: s["start"])[-6:]
        if not closed:
            continue
        marks = page.eval_on_selector_all(
            f"#chart-velocity-{i} .tp-mark",
            "els => els.map(e => ({series: e.dataset.series, sprint: e.dataset.sprint, value: +e.dataset.value,"
            " h: e.getBBox().height}))")
        assert len(marks) == 2 * len(closed)
        for kind in ("committed", "completed"):
            bars = [m for m in marks if m["series"] == kind]
            assert [b["sprint"] for b in bars] == [s["name"] for s in closed]
            assert [b["value"] for b in bars] == [s[f"{kind}_points"] for s in closed]
        # The drawn heights are proportional to the values: one scale for every bar of the chart.
        scales = [m["h"] / m["value"] for m in marks if m["value"] > 0]
        assert max(scales) == pytest.approx(min(scales), rel=0.01)


def test_a_breach_row_links_to_the_item_and_a_script_key_is_shown_escaped(page: Any, served: Served) -> None:
    login(page, served.base)
    rows = page.eval_on_selector_all("#breaches tbody tr td a", "as => as.map(a => [a.textContent, a.href])")
    assert rows
    assert any(text == SCRIPT_KEY for text, _ in rows)  # shown as text, not run
    normal = next((text, href) for text, href in rows if text != SCRIPT_KEY)
    assert normal[1] == f"{served.jira_url}/browse/{normal[0]}"
    assert page.eval_on_selector_all("script", "s => s.length") == 0
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.content()
    assert page.tp_errors == []


def test_token_stays_out_of_urls_the_cookie_is_httponly_strict_and_the_api_still_needs_the_bearer(
        page: Any, served: Served) -> None:
    login(page, served.base)
    for tab in TABS:
        page.click(f"#tab-{tab}")
        page.wait_for_load_state("load")
    page.click("#tab-flow")
    page.wait_for_load_state("load")
    with page.expect_download() as download:  # a chart download link too
        page.click("a[href^='/charts/cfd.png']")
    assert download.value.suggested_filename == "trackpulse-cfd.png"
    assert all(TOKEN not in u for u in page.tp_urls)
    [cookie] = [c for c in page.context.cookies() if c["name"] == "tp_session"]
    assert cookie["httpOnly"] is True and cookie["sameSite"] == "Strict"
    assert TOKEN not in cookie["value"]
    assert page.evaluate("document.cookie") == ""  # nothing readable by scripts
    # The API takes the bearer token only: not the browser's session cookie, not ?token=.
    api = page.request.get(served.base + "/api/metrics")
    assert api.status == 401
    assert httpx.get(served.base + "/api/metrics", params={"token": TOKEN}).status_code == 401
    assert httpx.get(served.base + "/api/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    # Logging out ends the session: the same cookie no longer opens the dashboard.
    page.goto(served.base + "/")
    page.click("#logout")
    page.wait_for_load_state("load")
    assert urlsplit(page.url).path == "/login"
    r = httpx.get(served.base + "/", cookies={"tp_session": cookie["value"]})
    assert r.status_code == 303 and r.headers["location"] == "/login"


def test_a_legacy_token_link_is_redirected_to_the_same_page_without_the_token(page: Any, served: Served) -> None:
    page.goto(f"{served.base}/flow?token={TOKEN}&window=90d")
    assert urlsplit(page.url).path == "/flow"
    assert TOKEN not in page.url and "window=90d" in page.url
    assert page.locator("#tab-flow.on").count() == 1




def test_gantt_bars_match_the_synced_worlds_versions_and_epics(page: Any, served: Served) -> None:
    """The Schedule tab over the store synced from the Jira simulator (its versions and epics):
    one labelled bar per version and epic of the report."""
    data = report(served)
    assert data["versions"] and data["epics"]
    missing: list[str] = []
    page.on("response", lambda r: missing.append(r.url) if r.status == 404 else None)
    login(page, served.base)
    page.goto(served.base + "/schedule")
    page.wait_for_load_state("networkidle")
    bars = page.eval_on_selector_all("#chart-gantt .tp-mark[data-start]",
                                     "els => els.map(e => ({label: e.dataset.label, start: e.dataset.start}))")
    labels = [b["label"] for b in bars]
    drawn_versions = [v for v in data["versions"] if v["start"] or v["release_date"]]
    for v in drawn_versions:
        assert any(label == f"{v['project']} {v['version']}" for label in labels), (v, labels)
    for e in data["epics"]:
        if e["started"]:
            assert any(label.startswith(e["epic"]) for label in labels), (e, labels)
    assert len(bars) >= len(drawn_versions)
    assert missing == []

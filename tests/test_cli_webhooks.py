"""`trackpulse webhooks register`: Trello webhooks per board and a Jira admin webhook, once each."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_cli_commands import SIM_EMAIL, SIM_TOKEN, run_cli
from test_trello_support import APP_SECRET, KEY, TOKEN

from trackpulse.config import load_config
from trackpulse.server.app import close_app, create_app
from trackpulse.simulator.jira_app import create_jira_app
from trackpulse.simulator.jira_world import JiraWorld
from trackpulse.simulator.runner import serve_in_thread
from trackpulse.simulator.trello_app import create_trello_app
from trackpulse.simulator.trello_world import TrelloWorld
from trackpulse.store.db import open_store

ENV = {"JIRA_API_TOKEN": SIM_TOKEN, "JIRA_WEBHOOK_SECRET": "s3cret", "TRELLO_TOKEN": TOKEN}


@pytest.fixture
def world_and_config(tmp_path: Path) -> Iterator[tuple[object, object, Path, str]]:
    jira_world = JiraWorld.generate(seed=2, projects=1, issues_per_project=5, closed_sprints=1)
    trello_world = TrelloWorld.generate(3, boards=2, cards_per_board=3, actions_per_card=2)
    jira_app = create_jira_app(jira_world, profile="cloud", email=SIM_EMAIL, token=SIM_TOKEN)
    trello_app = create_trello_app(trello_world, key=KEY, token=TOKEN, app_secret=APP_SECRET)
    boards = ", ".join(f'"{b}"' for b in trello_world.boards)
    config = tmp_path / "tp.toml"
    with serve_in_thread(jira_app) as jira_url, serve_in_thread(trello_app) as trello_url:
        config.write_text(f"""
[store]
url = "sqlite:///{tmp_path}/tp.db"

[[sources]]
name = "acme"
kind = "jira"
url = "{jira_url}"
email = "{SIM_EMAIL}"
token = "${{JIRA_API_TOKEN}}"
projects = ["ABC"]
webhook_secret = "${{JIRA_WEBHOOK_SECRET}}"

[[sources]]
name = "team"
kind = "trello"
api_url = "{trello_url}"
key = "{KEY}"
token = "${{TRELLO_TOKEN}}"
app_secret = "{APP_SECRET}"
boards = [{boards}]
requests_per_second = 0
""", encoding="utf-8")
        import os

        old = {k: os.environ.get(k) for k in ENV}
        os.environ.update(ENV)
        try:
            cfg = load_config(str(config))
        finally:
            for k, v in old.items():
                os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
        store = open_store(cfg.store.url)
        app = create_app(cfg, store)
        # `serve` must answer Trello's HEAD check at the callback URL while registering.
        with serve_in_thread(app) as public:
            yield jira_app, trello_app, tmp_path, public
        close_app(app)
        store.dispose()


def test_register_creates_each_webhook_once_with_the_public_callback(world_and_config) -> None:  # type: ignore[no-untyped-def]
    jira_app, trello_app, cwd, public = world_and_config
    first = run_cli("--config", "tp.toml", "webhooks", "register", "--url", public, "--json", cwd=cwd, env=ENV)
    assert first.returncode == 0, first.stderr
    rows = json.loads(first.stdout)["registrations"]
    assert [(r["source"], r["created"]) for r in rows] == [("acme", True), ("team", True), ("team", True)]
    assert rows[0]["callback_url"] == f"{public}/webhooks/jira/acme"
    assert {r["callback_url"] for r in rows[1:]} == {f"{public}/webhooks/trello/team"}
    (reg,) = jira_app.state.world.webhooks.values()
    # The admin webhook signs with the source's secret and carries worklog and sprint events too.
    assert reg.secret == "s3cret" and reg.url == f"{public}/webhooks/jira/acme"
    assert {"jira:issue_deleted", "worklog_created", "sprint_closed"} <= set(reg.events)

    again = run_cli("--config", "tp.toml", "webhooks", "register", "--url", public, "--json", cwd=cwd, env=ENV)
    assert again.returncode == 0, again.stderr
    assert [r["created"] for r in json.loads(again.stdout)["registrations"]] == [False, False, False]
    assert len(trello_app.state.sim.webhooks) == 2 and len(jira_app.state.world.webhooks) == 1


def test_register_without_a_public_url_is_a_config_error(world_and_config) -> None:  # type: ignore[no-untyped-def]
    _, _, cwd, _ = world_and_config
    r = run_cli("--config", "tp.toml", "webhooks", "register", cwd=cwd, env=ENV)
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "server.public_url" in r.stderr

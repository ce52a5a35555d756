"""`trackpulse demo`: the whole product, offline, on the built-in simulators.

It starts a Jira Cloud, a Jira Data Center and a Trello simulator on free loopback ports,
writes a real configuration (with a secrets file) pointing at them, and then runs what an
operator would: a full sync, an incremental sync after the trackers changed, signed webhook
deliveries into an in-process `serve`, then `status` and `metrics`. Everything goes through
the same code paths as production (config loading, connectors over HTTP, the webhook
endpoint with signature checks); only the trackers are simulated.

Human output goes to stdout, or to stderr with `--json`, which prints only the metrics
report on stdout.
"""

from __future__ import annotations

import os
import random
import secrets
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import tomli_w
from rich.console import Console
from rich.table import Table

from trackpulse import demo_alerts
from trackpulse.config import AppConfig, JiraSourceConfig, load_config
from trackpulse.errors import TrackpulseError
from trackpulse.store.db import Store, open_store

CONFIG_NAME = "trackpulse.toml"
SECRETS_NAME = "secrets.env"
DB_NAME = "trackpulse-demo.db"
DEMO_DIGEST = "weekly-pmo"
DIGEST_PREVIEW_DIR = "digest-preview"
JIRA_EVENTS = [
    "jira:issue_created", "jira:issue_updated", "jira:issue_deleted", "comment_created", "comment_updated",
    "comment_deleted", "worklog_created", "worklog_updated", "worklog_deleted", "sprint_created",
    "sprint_updated", "sprint_started", "sprint_closed",
]


class DemoFailed(TrackpulseError):
    """A step of the demo did not do what it should (exit 1)."""


@dataclass
class RunningSim:
    name: str
    url: str
    app: Any
    world: Any


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def _serve(app: Any, port: int = 0) -> Iterator[str]:
    from trackpulse.simulator.runner import BackgroundServer

    server = BackgroundServer(app, "127.0.0.1", port)
    try:
        yield server.start()
    finally:
        server.stop()


# ----------------------------------------------------------------------------- setup


def _secrets() -> dict[str, str]:
    # Fresh per run: nothing predictable ends up in a file, even for simulators.
    names = ["JIRA_CLOUD_TOKEN", "JIRA_DC_TOKEN", "JIRA_CLOUD_WEBHOOK_SECRET", "JIRA_DC_WEBHOOK_SECRET",
             "TRELLO_KEY", "TRELLO_TOKEN", "TRELLO_APP_SECRET", "API_TOKEN"]
    return {f"TRACKPULSE_DEMO_{n}": secrets.token_urlsafe(24) for n in names}


def _start_simulators(stack: ExitStack, issues: int, sec: dict[str, str]) -> dict[str, RunningSim]:
    from trackpulse.simulator.jira_app import create_jira_app
    from trackpulse.simulator.jira_world import JiraWorld
    from trackpulse.simulator.trello_app import create_trello_app
    from trackpulse.simulator.trello_world import TrelloWorld

    per_project = max(5, issues // 2)
    cloud_world = JiraWorld.generate(seed=11, projects=2, issues_per_project=per_project)
    dc_world = JiraWorld.generate(seed=12, projects=2, issues_per_project=per_project)
    trello_world = TrelloWorld.generate(seed=13, boards=2, cards_per_board=max(5, issues // 4))
    cloud = create_jira_app(cloud_world, profile="cloud", email="demo@example.com",
                            token=sec["TRACKPULSE_DEMO_JIRA_CLOUD_TOKEN"])
    dc = create_jira_app(dc_world, profile="dc", token=sec["TRACKPULSE_DEMO_JIRA_DC_TOKEN"])
    trello = create_trello_app(trello_world, key=sec["TRACKPULSE_DEMO_TRELLO_KEY"],
                               token=sec["TRACKPULSE_DEMO_TRELLO_TOKEN"],
                               app_secret=sec["TRACKPULSE_DEMO_TRELLO_APP_SECRET"])
    return {
        "jira-cloud": RunningSim("Jira Cloud", stack.enter_context(_serve(cloud)), cloud, cloud_world),
        "jira-dc": RunningSim("Jira Data Center", stack.enter_context(_serve(dc)), dc, dc_world),
        "trello": RunningSim("Trello", stack.enter_context(_serve(trello)), trello, trello_world),
    }


def _write_config(directory: Path, sims: dict[str, RunningSim], port: int, sec: dict[str, str],
                  extra: dict[str, Any] | None = None) -> Path:
    secrets_path = directory / SECRETS_NAME
    secrets_path.write_text("".join(f"{k}={v}\n" for k, v in sec.items()), encoding="utf-8")
    os.chmod(secrets_path, 0o600)
    config: dict[str, Any] = {
        "secrets_file": str(secrets_path),
        "store": {"url": f"sqlite:///{directory / DB_NAME}"},
        "server": {"host": "127.0.0.1", "port": port, "token": "${TRACKPULSE_DEMO_API_TOKEN}",
                   "public_url": f"http://127.0.0.1:{port}"},
        "schedule": {"sync_every_minutes": 5},
        "sources": [
            {"name": "jira-cloud", "kind": "jira", "url": sims["jira-cloud"].url, "email": "demo@example.com",
             "token": "${TRACKPULSE_DEMO_JIRA_CLOUD_TOKEN}", "projects": sorted(sims["jira-cloud"].world.projects),
             "webhook_secret": "${TRACKPULSE_DEMO_JIRA_CLOUD_WEBHOOK_SECRET}", "kloc": {"ABC": 120.5}},
            # No email: a Bearer personal access token, as on Data Center.
            {"name": "jira-dc", "kind": "jira", "url": sims["jira-dc"].url, "token": "${TRACKPULSE_DEMO_JIRA_DC_TOKEN}",
             "projects": sorted(sims["jira-dc"].world.projects),
             "webhook_secret": "${TRACKPULSE_DEMO_JIRA_DC_WEBHOOK_SECRET}"},
            {"name": "trello", "kind": "trello", "api_url": sims["trello"].url,
             "key": "${TRACKPULSE_DEMO_TRELLO_KEY}", "token": "${TRACKPULSE_DEMO_TRELLO_TOKEN}",
             "app_secret": "${TRACKPULSE_DEMO_TRELLO_APP_SECRET}", "boards": list(sims["trello"].world.boards),
             "done_lists": ["Done"], "in_progress_lists": ["Doing", "Review"], "defect_labels": ["bug"],
             "priority_labels": ["P1", "P2", "P3"], "points_field": "Points", "iteration_days": 14,
             "iteration_start": "2026-01-05"},
        ],
        "sla": {
            "calendars": {"business": {"timezone": "UTC", "days": ["mon", "tue", "wed", "thu", "fri"],
                                       "hours": ["09:00-12:00", "13:00-18:00"]}},
            "policies": [
                {"name": "urgent", "priorities": ["Highest", "High", "P1"], "response_hours": 8,
                 "resolution_hours": 96},
                {"name": "standard", "response_hours": 16, "resolution_hours": 80, "calendar": "business",
                 "pause_statuses": ["Waiting for customer"]},
            ],
        },
        # Previewed by the demo (no channels: nothing is sent); `trackpulse digest weekly-pmo --preview`.
        "digests": [{"name": DEMO_DIGEST, "cron": "0 9 * * mon", "timezone": "Asia/Shanghai", "language": "zh",
                     "channels": [], "period_days": 7}],
    }
    config.update(extra or {})
    # Written from data (tomli-w quotes and escapes), so a URL or name can never break the file.
    text = ("# Written by `trackpulse demo`: a real configuration pointing at the built-in simulators.\n"
            f"# While `trackpulse demo --keep-serving` runs, try: trackpulse --config {directory / CONFIG_NAME} status\n\n"
            + tomli_w.dumps(config))
    path = directory / CONFIG_NAME
    path.write_text(text, encoding="utf-8")
    return path


# ----------------------------------------------------------------------------- steps


def _sync(cfg: AppConfig, store: Store, *, full: bool, json_output: bool, console: Console, title: str) -> None:
    from trackpulse.jobs.sync import sync_all
    from trackpulse.progress import progress_for
    from trackpulse.views import sync_summary_table

    with progress_for(json_output) as progress:
        results, errors = sync_all(cfg, store, full=full, progress=progress)
    console.print(sync_summary_table(results, title=title))
    if errors:
        raise DemoFailed("demo: " + "; ".join(e.one_line() for e in errors))


def _change_jira(world: Any, rng: random.Random, n: int) -> None:
    """What a few hours of a team's work look like: new issues, moves, work logged, a deletion."""
    from trackpulse.simulator.jira_world import STATUSES

    world.advance(timedelta(hours=3))
    projects = sorted(world.projects)
    for i in range(max(1, n // 4)):
        world.create_issue(projects[i % len(projects)], issue_type="Bug" if i % 2 else "Story",
                           summary=f"Demo change {i + 1}", priority="High" if i % 3 == 0 else "Medium")
    live = sorted(world.live_issues(), key=lambda issue: issue.nid)
    for issue in rng.sample(live, min(n, len(live))):
        flow = world.projects[issue.project_key].workflow
        category = STATUSES[issue.status].category
        if category == "new":
            world.add_transition(issue.id, flow.in_progress)
        elif category == "indeterminate":
            world.add_transition(issue.id, flow.done)
            world.add_worklog(issue.id, rng.choice([1800, 3600, 7200]))
        else:
            world.add_comment(issue.id, "Verified in staging")
    world.delete_issue(rng.choice(live).id)


def _register_webhooks(sims: dict[str, RunningSim], cfg: AppConfig, public_url: str) -> None:
    for name in ("jira-cloud", "jira-dc"):
        src = cfg.source(name)
        assert isinstance(src, JiraSourceConfig) and src.webhook_secret is not None
        secret = src.webhook_secret.get_secret_value()
        sims[name].world.register_webhook("trackpulse demo", f"{public_url}/webhooks/jira/{name}", JIRA_EVENTS,
                                          secret=secret)
    from trackpulse.connectors.trello import register_webhooks

    trello = cfg.source("trello")
    assert trello.kind == "trello"
    # Trello checks the callback with a HEAD request before it creates each webhook.
    register_webhooks(trello, f"{public_url}/webhooks/trello/trello")


def _deliver_webhooks(sims: dict[str, RunningSim], app: Any, public_url: str, rng: random.Random) -> Table:
    """Change the trackers a little and let them push the changes; show what the server did."""
    from trackpulse.simulator.webhooks import jira_build_delivery, jira_deliver

    rows: list[tuple[str, str, str]] = []
    for name in ("jira-cloud", "jira-dc"):
        _change_jira(sims[name].world, rng, 4)
        hub = sims[name].app.state.webhooks
        statuses = hub.flush()
        rows.append((name, "signed deliveries", _statuses(statuses)))
        if hub.delivered:  # Jira retries a delivery with the same identifier: recognised, applied once
            first = hub.delivered[0]
            rows.append((name, "same delivery again", _statuses([jira_deliver(first.url, first)])))
    forged = jira_build_delivery({"webhookEvent": "jira:issue_deleted", "issue": {"id": "10000"}},
                                 f"{public_url}/webhooks/jira/jira-cloud", secret="not-the-secret")
    rows.append(("jira-cloud", "forged signature", _statuses([jira_deliver(forged.url, forged)])))
    trello_sim = sims["trello"].app.state.sim
    sims["trello"].world.mutate(12)
    rows.append(("trello", "signed deliveries", _statuses(trello_sim.deliver_webhooks())))
    if not app.state.webhooks.wait_idle(60):
        raise DemoFailed("demo: the webhook queue did not drain within 60 s")
    table = Table(title="webhooks")
    for col in ("source", "what", "answers"):
        table.add_column(col)
    for row in rows:
        table.add_row(*row)
    return table


def _statuses(statuses: list[int]) -> str:
    if not statuses:
        return "none"
    counts: dict[int, int] = {}
    for s in statuses:
        counts[s] = counts.get(s, 0) + 1
    labels = {200: "duplicate", 202: "accepted", 401: "rejected", 0: "unreachable"}
    return ", ".join(f"{n} × {s} {labels.get(s, '')}".rstrip() for s, n in sorted(counts.items()))


def _delivery_outcomes(store: Store) -> tuple[int, int, int]:
    import sqlalchemy as sa
    from sqlmodel import col

    from trackpulse.store.models import WebhookDelivery

    with store.session() as s:
        total = s.execute(sa.select(sa.func.count()).select_from(WebhookDelivery)).scalar_one()
        done = s.execute(sa.select(sa.func.count()).select_from(WebhookDelivery)
                         .where(col(WebhookDelivery.processed_at).is_not(None))).scalar_one()
        failed = s.execute(sa.select(sa.func.count()).select_from(WebhookDelivery)
                           .where(col(WebhookDelivery.error).is_not(None))).scalar_one()
    return int(total), int(done), int(failed)


def _print_metrics(report: dict[str, Any], extras: dict[str, Any], console: Console) -> None:
    """The report's tables, with SLA clocks counted rather than listed one by one."""
    from trackpulse.metrics import render

    console.print(render.project_table(report))
    if report["sprints"]:
        console.print(render.sprint_table(report, extras))
    if report["iterations"]:
        console.print(render.iteration_table(report))
    counts: dict[tuple[str, str, str], dict[str, int]] = {}
    for clock in report["sla"]:
        key = (clock["source"], clock["policy"], clock["clock"])
        counts.setdefault(key, {})[clock["status"]] = counts.get(key, {}).get(clock["status"], 0) + 1
    table = Table(title="SLA clocks (`trackpulse metrics` lists each one)")
    statuses = ("met", "breached", "at_risk", "ongoing")
    for col in ("source", "policy", "clock", *statuses):
        table.add_column(col, justify="right" if col in statuses else "left")
    for (source, policy, clock), by_status in sorted(counts.items()):
        table.add_row(source, policy, clock, *(str(by_status.get(st, 0)) for st in statuses))
    console.print(table)


# ----------------------------------------------------------------------------- the demo


def run_demo(*, directory: Path, issues: int = 200, keep_serving: bool = False, json_output: bool = False) -> None:
    from trackpulse.reports import build_status, compute_report_and_extras
    from trackpulse.server.app import close_app, create_app
    from trackpulse.views import print_json as _print_json
    from trackpulse.views import status_table

    stream = sys.stderr if json_output else sys.stdout
    # Wide enough for the metrics tables when the output goes to a file or a CI log.
    console = Console(stderr=json_output, highlight=False, width=None if stream.isatty() else 160)
    started = time.perf_counter()
    directory = directory.expanduser().resolve()
    directory.mkdir(parents=True, exist_ok=True)
    for leftover in (DB_NAME, DB_NAME + "-wal", DB_NAME + "-shm"):
        (directory / leftover).unlink(missing_ok=True)
    sec = _secrets()
    rng = random.Random(7)

    with ExitStack() as stack:
        console.rule("[bold]trackpulse demo[/bold]: Jira Cloud, Jira Data Center and Trello, simulated offline")
        sims = _start_simulators(stack, issues, sec)
        for key, sim in sims.items():
            console.print(f"  {sim.name} simulator at {sim.url} (source [bold]{key}[/bold])")
        receivers = demo_alerts.start_receivers(stack)
        sec.update(demo_alerts.secrets_of(receivers))
        port = _free_port()
        public_url = f"http://127.0.0.1:{port}"
        config_path = _write_config(directory, sims, port, sec, demo_alerts.config_of(receivers))
        console.print(f"  configuration {config_path} (secrets in {directory / SECRETS_NAME})")
        cfg = load_config(str(config_path))
        store = open_store(cfg.store.url)
        stack.callback(store.dispose)

        console.rule("1. full sync")
        _sync(cfg, store, full=True, json_output=json_output, console=console, title="full sync")

        console.rule("2. the trackers change, then an incremental sync")
        for name in ("jira-cloud", "jira-dc"):
            _change_jira(sims[name].world, rng, 12)
        sims["trello"].world.mutate(25)
        _sync(cfg, store, full=False, json_output=json_output, console=console, title="incremental sync")

        console.rule("3. webhooks into `trackpulse serve`")
        app = create_app(cfg, store)
        stack.callback(lambda: close_app(app))
        stack.enter_context(_serve(app, port))
        _register_webhooks(sims, cfg, public_url)
        console.print(_deliver_webhooks(sims, app, public_url, rng))
        total, done, failed = _delivery_outcomes(store)
        console.print(f"  {total} deliveries stored, {done} applied, {failed} failed")
        if failed:
            raise DemoFailed(f"demo: {failed} webhook deliveries could not be applied (see `status`)")

        console.rule("4. status")
        console.print(status_table(build_status(cfg, store)))

        console.rule("5. metrics")
        # The simulated trackers live on their own clock; evaluate as of their "now".
        as_of = max(sim.world.now for sim in sims.values())
        report, extras = compute_report_and_extras(cfg, store, as_of=_aware(as_of))
        _print_metrics(report, extras, console)

        console.rule("6. alerts: chat, e-mail and comments on the items")
        demo_alerts.run_alerts(cfg, store, receivers, {"jira-cloud": sims["jira-cloud"].world,
                                                       "trello": sims["trello"].world}, _aware(as_of), console)
        if json_output:
            _print_json(report)

        console.rule("7. digest preview")
        preview = _digest_preview(cfg, store, as_of=_aware(as_of), directory=directory)
        console.print(f"  digest {DEMO_DIGEST!r} (zh) for the week before {_aware(as_of):%Y-%m-%d %H:%M} UTC: "
                      f"open {preview}")
        console.print(f"demo finished in {time.perf_counter() - started:.1f} s; "
                      f"config and store in {directory}")

        if keep_serving:
            token = sec["TRACKPULSE_DEMO_API_TOKEN"]
            console.rule("serving (Ctrl-C to stop)")
            console.print(f"  dashboard   {public_url}/?token={token}")
            console.print(f"  API         curl -H 'Authorization: Bearer {token}' {public_url}/api/status")
            console.print(f"  Prometheus  curl -H 'Authorization: Bearer {token}' {public_url}/metrics")
            for sim in sims.values():
                console.print(f"  {sim.name:<17} {sim.url}")
            console.print(f"  CLI         trackpulse --config {config_path} metrics")
            try:
                while True:
                    time.sleep(1)
            except KeyboardInterrupt:
                console.print("stopped")


def _digest_preview(cfg: AppConfig, store: Store, *, as_of: datetime, directory: Path) -> Path:
    """The demo digest's e-mail as files (what `trackpulse digest NAME --preview` writes): the
    HTML with its PNG charts beside it, in `directory`/digest-preview/; returns the HTML's path."""
    from trackpulse.digests.build import build_digest
    from trackpulse.digests.content import build_content
    from trackpulse.digests.mail import render_mail, write_preview

    content = build_content(build_digest(cfg, store, DEMO_DIGEST, as_of=as_of))
    written = write_preview(render_mail(content), directory / DIGEST_PREVIEW_DIR / f"{DEMO_DIGEST}.html")
    return Path(written[0])


def _aware(ts: datetime) -> datetime:

    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)

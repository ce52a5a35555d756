"""The `trackpulse` command line (INTERFACE.md is its contract).

Every command loads the configuration, does its work through the library modules and
turns our exceptions into one line on stderr with the exit status the interface
promises: 0 success, 1 the work failed, 2 bad usage or bad configuration. `--json`
output is written to stdout alone; progress bars and messages go to stderr.
"""

from __future__ import annotations

import importlib
import os
import sys
import traceback
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from trackpulse import __version__
from trackpulse.config import AppConfig, config_path, load_config
from trackpulse.errors import ConfigError, TrackpulseError
from trackpulse.views import print_json as _print_json
from trackpulse.views import status_table, sync_summary_table

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

# Help texts: rich mode keeps single newlines, so each paragraph is one line here.
app = typer.Typer(
    name="trackpulse",
    help=(
        "Sync Jira and Trello into a local store, receive their webhooks and compute delivery metrics.\n\n"
        "Start with [bold]trackpulse demo[/bold] (offline, built-in simulators), or "
        "[bold]trackpulse init[/bold] to write a trackpulse.toml for your own trackers."
    ),
    epilog=(
        "[bold]Examples:[/bold]\n\n"
        "  trackpulse demo\n\n"
        "  trackpulse init && $EDITOR trackpulse.toml && trackpulse check\n\n"
        "  trackpulse --config /etc/trackpulse.toml sync --source acme-jira\n\n"
        "  trackpulse metrics --json --since 2026-01-01 > report.json\n\n"
        "Exit status: 0 success, 1 the work failed (tracker down, sync error), "
        "2 bad usage or bad configuration."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)

# Human output goes to stdout (tables) and stderr (notes, progress); JSON bypasses rich entirely.
out = Console(highlight=False, width=None if sys.stdout.isatty() else 200)
err = Console(stderr=True, highlight=False, soft_wrap=True)


class UsageProblem(TrackpulseError):
    """Bad usage the parser cannot see (an existing file, an unwritable folder)."""

    exit_code = EXIT_USAGE


def _version(value: bool) -> None:
    if value:
        print(f"trackpulse {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    config: Annotated[
        str | None,
        typer.Option(
            "--config", "-c", metavar="FILE",
            help="Configuration file. Default: $TRACKPULSE_CONFIG, then ./trackpulse.toml.",
        ),
    ] = None,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    ctx.obj = {"config": config}


def _config_arg(ctx: typer.Context) -> str | None:
    obj = ctx.find_root().obj or {}
    value: str | None = obj.get("config")
    return value


def _cfg(ctx: typer.Context) -> AppConfig:
    return load_config(_config_arg(ctx))





def _no_sources() -> ConfigError:
    return ConfigError("no [[sources]] configured; add one (see config.example.toml)", key="sources")


# --------------------------------------------------------------------------- init


@app.command(
    epilog="[bold]Examples:[/bold]\n\n  trackpulse init\n\n  trackpulse --config ops/trackpulse.toml init --force",
)
def init(
    ctx: typer.Context,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
) -> None:
    """Write a commented trackpulse.toml to start from (to --config FILE if given).

    Secrets are written as ${ENV_VAR} references, never as values: set the variables (or a secrets file), edit the sources and run [bold]trackpulse check[/bold].
    """
    path = config_path(_config_arg(ctx))
    if path.exists() and not force:
        raise UsageProblem(f"{path} already exists; pass --force to overwrite it")
    template = resources.files("trackpulse").joinpath("init_template.toml").read_text(encoding="utf-8")
    try:
        path.write_text(template, encoding="utf-8")
    except OSError as exc:
        raise UsageProblem(f"cannot write {path}: {exc.strerror}") from None
    err.print(f"wrote {path}: edit the sources, set the environment variables it names, "
              f"then run `trackpulse check`", markup=False)


# --------------------------------------------------------------------------- check


@app.command(
    epilog="[bold]Examples:[/bold]\n\n  trackpulse check\n\n  trackpulse check --source acme-jira --json",
)
def check(
    ctx: typer.Context,
    source: Annotated[str | None, typer.Option("--source", "-s", help="Check only this source.")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print the results as JSON on stdout.")] = False,
) -> None:
    """Reach every source and verify its credentials and permissions.

    Exits 1 when any source fails; each failure is one line on stderr naming the source and URL.
    """
    from trackpulse.connectors.registry import open_connector

    cfg = _cfg(ctx)
    sources = [cfg.source(source)] if source else list(cfg.sources)
    if not sources:
        raise _no_sources()
    rows: list[dict[str, Any]] = []
    for src in sources:
        try:
            with open_connector(src) as connector:
                result = connector.check()
            rows.append({"source": src.name, "kind": src.kind, "ok": result.ok, "deployment": result.deployment,
                         "user": result.user, "details": list(result.details), "error": None})
            if not result.ok:
                err.print(f"source {src.name}: check failed: {'; '.join(result.details) or 'no details'}",
                          markup=False)
        except TrackpulseError as exc:
            rows.append({"source": src.name, "kind": src.kind, "ok": False, "deployment": None, "user": None,
                         "details": [], "error": exc.one_line()})
            err.print(exc.one_line(), markup=False)
    if json_output:
        _print_json({"sources": rows})
    else:
        table = Table(title="trackpulse check")
        for col in ("source", "kind", "ok", "deployment", "user", "details"):
            table.add_column(col, overflow="fold")
        for r in rows:
            table.add_row(r["source"], r["kind"], "[green]yes[/green]" if r["ok"] else "[red]NO[/red]",
                          r["deployment"] or "-", r["user"] or "-", "; ".join(r["details"]) or r["error"] or "")
        out.print(table)
    if not all(r["ok"] for r in rows):
        raise typer.Exit(EXIT_FAILED)


# --------------------------------------------------------------------------- sync


def sync_result_json(r: Any) -> dict[str, Any]:
    return {"source": r.source, "kind": r.kind, "full": r.full, "items": r.items, "histories": r.histories,
            "worklogs": r.worklogs, "comments": r.comments, "deleted": r.deleted, "requests": r.requests,
            "requests_per_item": r.requests_per_item, "seconds": round(r.seconds, 3), "cursor": r.cursor,
            "notes": list(r.notes)}


@app.command(
    epilog=(
        "[bold]Examples:[/bold]\n\n  trackpulse sync\n\n  trackpulse sync --source acme-jira\n\n"
        "  trackpulse sync --full            # also removes what the trackers deleted\n\n"
        "  trackpulse sync --json | jq '.results[].requests'"
    ),
)
def sync(
    ctx: typer.Context,
    source: Annotated[str | None, typer.Option("--source", "-s", help="Sync only this source.")] = None,
    full: Annotated[bool, typer.Option(
        "--full", help="Re-read everything and remove from the store what the tracker no longer has.")] = False,
    json_output: Annotated[bool, typer.Option("--json", help="Print the run summary as JSON on stdout.")] = False,
) -> None:
    """Pull changes from the trackers into the store (incremental by default).

    Incremental runs start from cursors taken from the tracker's own clock; a run that fails part-way keeps what it committed and the next run resumes from there.

    Exits 1 when any source fails (one line on stderr per failure); the other sources are still synced.
    """
    from trackpulse.jobs.sync import sync_all
    from trackpulse.progress import progress_for
    from trackpulse.store.db import open_store

    cfg = _cfg(ctx)
    if source:
        cfg.source(source)  # an unknown name is a usage error before anything is touched
    if not cfg.sources:
        raise _no_sources()
    store = open_store(cfg.store.url)
    try:
        with progress_for(json_output) as progress:
            results, errors = sync_all(cfg, store, source_name=source, full=full, progress=progress)
    finally:
        store.dispose()
    for e in errors:
        err.print(e.one_line(), markup=False)
    if json_output:
        _print_json({"results": [sync_result_json(r) for r in results],
                     "errors": [e.one_line() for e in errors]})
    elif results:
        out.print(sync_summary_table(results))
    if errors:
        raise typer.Exit(EXIT_FAILED)


# --------------------------------------------------------------------------- status


@app.command(
    epilog="[bold]Examples:[/bold]\n\n  trackpulse status\n\n  trackpulse status --json | jq '.sources[].last_error'",
)
def status(
    ctx: typer.Context,
    json_output: Annotated[bool, typer.Option("--json", help="Print the status as JSON on stdout.")] = False,
) -> None:
    """Per source: last sync, cursors, counts per entity and the last error (reads the store only)."""
    from trackpulse.reports import build_status
    from trackpulse.store.db import open_store

    cfg = _cfg(ctx)
    store = open_store(cfg.store.url)
    try:
        report = build_status(cfg, store)
        from trackpulse.jobs.runner import describe

        report["jobs"] = describe(cfg, store)  # the schedule: last and next run, holder, last error
    finally:
        store.dispose()
    if json_output:
        _print_json(report)
    else:
        out.print(status_table(report))
        if report["jobs"]:
            from trackpulse.views import jobs_table

            out.print(jobs_table(report["jobs"]))


# --------------------------------------------------------------------------- metrics


@app.command(
    epilog=(
        "[bold]Examples:[/bold]\n\n  trackpulse metrics\n\n"
        "  trackpulse metrics --since 2026-01-01 --until 2026-04-01\n\n"
        "  trackpulse metrics --as-of 2026-03-31T18:00:00Z --source acme-jira --json\n\n"
        "  trackpulse metrics --csv out/      # also one CSV file per table"
    ),
)
def metrics(
    ctx: typer.Context,
    json_output: Annotated[bool, typer.Option("--json", help="Print exactly the JSON report on stdout.")] = False,
    as_of: Annotated[str | None, typer.Option(
        "--as-of", metavar="TS",
        help="Evaluate as of this instant (ISO 8601, default now); only history up to it counts.")] = None,
    since: Annotated[str | None, typer.Option("--since", metavar="TS", help="Window start (inclusive).")] = None,
    until: Annotated[str | None, typer.Option(
        "--until", metavar="TS", help="Window end (exclusive; default --as-of).")] = None,
    source: Annotated[str | None, typer.Option("--source", "-s", help="Only this source.")] = None,
    csv_dir: Annotated[Path | None, typer.Option(
        "--csv", metavar="DIR", help="Also write each table as a CSV file in DIR.")] = None,
) -> None:
    """Delivery metrics: per-project figures, sprint velocity, iterations, worklogs by author, SLA clocks.

    Every figure is defined in docs/metrics.md. Timestamps are ISO 8601 dates or instants; without a zone they are UTC.
    """
    from trackpulse.metrics import render
    from trackpulse.reports import compute_report, compute_report_and_extras, parse_instant
    from trackpulse.store.db import open_store

    as_of_ts = parse_instant(as_of, "option --as-of")
    since_ts = parse_instant(since, "option --since")
    until_ts = parse_instant(until, "option --until")
    if since_ts and until_ts and since_ts >= until_ts:
        raise UsageProblem(f"option --since ({since}) must be before --until ({until})")
    cfg = _cfg(ctx)
    if source:
        cfg.source(source)
    store = open_store(cfg.store.url)
    sources = [source] if source else None
    extras: dict[str, Any] | None = None
    try:
        if json_output and csv_dir is None:
            report = compute_report(cfg, store, as_of=as_of_ts, since=since_ts, until=until_ts, sources=sources)
        else:
            report, extras = compute_report_and_extras(cfg, store, as_of=as_of_ts, since=since_ts, until=until_ts,
                                                       sources=sources)
    finally:
        store.dispose()
    if csv_dir is not None:
        try:
            written = render.write_csv(report, extras, csv_dir)
        except OSError as exc:
            raise UsageProblem(f"option --csv: cannot write to {csv_dir}: {exc.strerror}") from None
        err.print(f"wrote {len(written)} CSV files to {csv_dir}", markup=False)
    if json_output:
        _print_json(report)
    else:
        render.render_report(report, extras, out)


# --------------------------------------------------------------------------- alerts

alerts_app = typer.Typer(help="Alert rules: evaluate and deliver (ACTIONS.md \"Alert rules\").",
                         no_args_is_help=False, invoke_without_command=True)
app.add_typer(alerts_app, name="alerts")


@alerts_app.callback(
    epilog="[bold]Examples:[/bold]\n\n  trackpulse alerts\n\n  trackpulse alerts --dry-run --json",
)
def alerts(
    ctx: typer.Context,
    as_of: Annotated[str | None, typer.Option(
        "--as-of", metavar="TS", help="Evaluate as of this instant (ISO 8601, default now).")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Evaluate and show; write and deliver nothing.")] = False,
    json_output: Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout.")] = False,
) -> None:
    """Evaluate every alert rule, record new alerts and deliver what is due."""
    if ctx.invoked_subcommand is not None:
        return
    from trackpulse.alerts import evaluate_and_dispatch
    from trackpulse.i18n import t
    from trackpulse.reports import parse_instant
    from trackpulse.store.db import open_store

    as_of_ts = parse_instant(as_of, "option --as-of")
    cfg = _cfg(ctx)
    store = open_store(cfg.store.url)
    try:
        result = evaluate_and_dispatch(cfg, store, as_of=as_of_ts, dry_run=dry_run)
    finally:
        store.dispose()
    doc = result.as_json()
    if json_output:
        _print_json(doc)
        return
    lang = cfg.alerts.language
    table = Table(title=t("alerts.title_dry_run" if dry_run else "alerts.title_run", lang, as_of=doc["as_of"]))
    for col_key in ("col_rule", "col_subject", "col_state"):
        table.add_column(t(f"alerts.{col_key}", lang))
    for c in doc["conditions"]:
        table.add_row(c["rule"], c["subject"], t(f"alerts.state_{c['state']}", lang))
    out.print(table)
    failed = result.dispatch.failed if result.dispatch else 0
    if failed:
        raise typer.Exit(EXIT_FAILED)


# --------------------------------------------------------------------------- serve


@app.command(
    epilog=(
        "[bold]Examples:[/bold]\n\n  trackpulse serve\n\n  trackpulse serve --host 0.0.0.0 --port 8787\n\n"
        "Endpoints: POST /webhooks/jira/{source}; HEAD and POST /webhooks/trello/{source}; "
        "GET / (dashboard); GET /api/status; GET /api/metrics; GET /metrics (Prometheus); GET /healthz."
    ),
)
def serve(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option("--host", help="Bind address (default server.host).")] = None,
    port: Annotated[int | None, typer.Option("--port", help="Port (default server.port).")] = None,
    no_schedule: Annotated[bool, typer.Option(
        "--no-schedule", help="Do not run the periodic sync (schedule.sync_every_minutes).")] = False,
) -> None:
    """Serve webhooks, the API, the dashboard and Prometheus metrics, and sync on a schedule.

    The API, dashboard and /metrics need server.token (Authorization: Bearer <token>); webhooks are verified with each source's webhook secret.
    """
    from trackpulse.server.app import run_server

    cfg = _cfg(ctx)
    run_server(cfg, host=host or cfg.server.host, port=port if port is not None else cfg.server.port,
               schedule=not no_schedule, announce=err)


# --------------------------------------------------------------------------- webhooks

webhooks_app = typer.Typer(
    help="Register trackpulse's webhook endpoints with the trackers; re-queue stored deliveries.",
    no_args_is_help=True, rich_markup_mode="rich",
)
app.add_typer(webhooks_app, name="webhooks")


def _callback_url(cfg: AppConfig, src: Any, base: str | None) -> str:
    url = cfg.webhook_url(src, base)
    if url is None:
        raise ConfigError("set server.public_url (the address trackers reach `serve` at) or pass --url",
                          key="server.public_url")
    return url


@webhooks_app.command(
    "retry",
    epilog=("[bold]Examples:[/bold]\n\n  trackpulse webhooks retry\n\n  trackpulse webhooks retry --failed\n\n"
            "A running `serve` picks the re-queued deliveries up within seconds; a stopped one when it starts."),
)
def webhooks_retry(
    ctx: typer.Context,
    failed: Annotated[bool, typer.Option(
        "--failed", help="Also re-queue deliveries marked failed (after fixing what made them fail).")] = False,
    source: Annotated[str | None, typer.Option("--source", "-s", help="Only this source.")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print the count as JSON.")] = False,
) -> None:
    """Make stored webhook deliveries due now: pending ones skip their backoff; with --failed, failed ones
    are tried again from their first attempt."""
    from trackpulse.server.webhook_queue import requeue
    from trackpulse.store.db import open_store

    cfg = _cfg(ctx)
    if source:
        cfg.source(source)
    store = open_store(cfg.store.url)
    try:
        n = requeue(store, failed=failed, source=source)
    finally:
        store.dispose()
    if json_output:
        _print_json({"requeued": n})
    else:
        out.print(f"re-queued {n} webhook deliver{'y' if n == 1 else 'ies'}")


@webhooks_app.command(
    "register",
    epilog=(
        "[bold]Examples:[/bold]\n\n  trackpulse webhooks register\n\n"
        "  trackpulse webhooks register --source team-trello --url https://tp.example.com\n\n"
        "Trello first sends a HEAD to the callback URL: `trackpulse serve` must be reachable there. "
        "Jira admin webhooks need an administrator's token; without one, register the URL printed here "
        "in Jira (Settings → System → WebHooks) with the source's webhook_secret."
    ),
)
def webhooks_register(
    ctx: typer.Context,
    source: Annotated[str | None, typer.Option("--source", "-s", help="Only this source.")] = None,
    url: Annotated[str | None, typer.Option(
        "--url", help="Public base URL of `trackpulse serve` (default server.public_url).")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print the registrations as JSON.")] = False,
) -> None:
    """Create (once) a Trello webhook per configured board and a Jira admin webhook per Jira source."""
    cfg = _cfg(ctx)
    sources = [cfg.source(source)] if source else list(cfg.sources)
    if not sources:
        raise _no_sources()
    rows: list[dict[str, Any]] = []
    failures: list[TrackpulseError] = []
    for src in sources:
        try:
            callback = _callback_url(cfg, src, url)
            if src.kind == "trello":
                from trackpulse.connectors.trello import register_webhooks

                for r in register_webhooks(src, callback):
                    rows.append({"source": src.name, "target": f"board {r.board_id}", "callback_url": callback,
                                 "webhook": r.webhook_id, "created": r.created})
            else:
                from trackpulse.connectors.jira import register_webhook

                j = register_webhook(src, callback)
                rows.append({"source": src.name, "target": "admin webhook", "callback_url": callback,
                             "webhook": j.webhook, "created": j.created})
        except TrackpulseError as exc:
            if exc.exit_code == EXIT_USAGE:
                raise
            failures.append(exc)
    if json_output:
        _print_json({"registrations": rows, "errors": [e.one_line() for e in failures]})
    else:
        table = Table(title="webhooks")
        for col in ("source", "target", "callback URL", "webhook", "created"):
            table.add_column(col)
        for r in rows:
            table.add_row(r["source"], r["target"], r["callback_url"], r["webhook"], "yes" if r["created"] else "existed")
        out.print(table)
    for e in failures:
        err.print(e.one_line(), markup=False)
    if failures:
        raise typer.Exit(EXIT_FAILED)


# --------------------------------------------------------------------------- demo


@app.command(
    epilog=(
        "[bold]Examples:[/bold]\n\n  trackpulse demo\n\n  trackpulse demo --issues 2000 --dir /tmp/tp-demo\n\n"
        "  trackpulse demo --keep-serving     # then open the printed dashboard URL\n\n"
        "  trackpulse demo --json > report.json"
    ),
)
def demo(
    directory: Annotated[Path, typer.Option(
        "--dir", help="Where to write the demo config and SQLite store (replaced on each run).")] = Path(
        "trackpulse-demo"),
    issues: Annotated[int, typer.Option(
        "--issues", min=10, max=100_000, help="Issues per simulated Jira (Trello gets a share).")] = 200,
    keep_serving: Annotated[bool, typer.Option(
        "--keep-serving", help="Keep the server and simulators up; print their URLs and the dashboard token.",
    )] = False,
    json_output: Annotated[bool, typer.Option("--json", help="Print the metrics report as JSON on stdout.")] = False,
) -> None:
    """The whole product offline: built-in Jira Cloud, Jira Data Center and Trello simulators with a SQLite store.

    Runs a full sync, changes the simulated trackers, runs an incremental sync, delivers signed webhooks to an in-process server, then prints status and metrics. Needs no network and no configuration (the global --config is not used).
    """
    from trackpulse.demo import run_demo

    run_demo(directory=directory, issues=issues, keep_serving=keep_serving, json_output=json_output)


# --------------------------------------------------------------------------- digest

from trackpulse.cli_alerts import CHANNELS_EPILOG as _CHANNELS_EPILOG
from trackpulse.cli_alerts import HISTORY_EPILOG as _HISTORY_EPILOG
from trackpulse.cli_alerts import channels_app as _channels_app
from trackpulse.cli_alerts import history as _alerts_history

alerts_app.command("history", epilog=_HISTORY_EPILOG)(_alerts_history)
app.add_typer(_channels_app, name="channels", epilog=_CHANNELS_EPILOG)
from trackpulse.cli_digest import EPILOG as _DIGEST_EPILOG
from trackpulse.cli_digest import digest as _digest

app.command("digest", epilog=_DIGEST_EPILOG)(_digest)


# --------------------------------------------------------------------------- entry point


def _parser_errors(name: str) -> tuple[type[BaseException], ...]:
    """The parser's exception class under every name it may have: recent typer releases vendor
    click as `typer._click`, older ones raise click's own classes."""
    found: list[type[BaseException]] = []
    for module in ("typer._click.exceptions", "typer", "click.exceptions"):
        try:
            cls = getattr(importlib.import_module(module), name, None)
        except ImportError:
            continue
        if isinstance(cls, type) and issubclass(cls, BaseException) and cls not in found:
            found.append(cls)
    return tuple(found)


_NO_ARGS = _parser_errors("NoArgsIsHelpError")
_USAGE = _parser_errors("UsageError")
_ABORT = _parser_errors("Abort")
_CLICK = _parser_errors("ClickException")


def _fail(message: str, code: int) -> NoReturn:
    sys.stderr.write(" ".join(message.split()) + "\n")
    sys.stderr.flush()
    sys.exit(code)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry: run the app and map every outcome to the promised exit status."""
    try:
        rv = app(args=argv, prog_name="trackpulse", standalone_mode=False)
    except _NO_ARGS as exc:
        ctx = getattr(exc, "ctx", None)
        if ctx is not None:
            sys.stdout.write(ctx.get_help() + "\n")
        sys.exit(EXIT_USAGE)
    except _USAGE as exc:
        ctx = getattr(exc, "ctx", None)
        where = ctx.command_path if ctx is not None else "trackpulse"
        _fail(f"{where}: {exc.format_message()} (see `{where} --help`)", EXIT_USAGE)  # type: ignore[attr-defined]
    except _ABORT:
        _fail("interrupted", EXIT_FAILED)
    except _CLICK as exc:
        _fail(exc.format_message(), getattr(exc, "exit_code", EXIT_FAILED))  # type: ignore[attr-defined]
    except TrackpulseError as exc:
        _fail(exc.one_line(), exc.exit_code)
    except KeyboardInterrupt:
        _fail("interrupted", EXIT_FAILED)
    except Exception as exc:  # noqa: BLE001 - a bug: still one line, the traceback on request
        if os.environ.get("TRACKPULSE_DEBUG"):
            traceback.print_exc()
        _fail(f"internal error: {type(exc).__name__}: {exc} (set TRACKPULSE_DEBUG=1 for a traceback)",
              EXIT_FAILED)
    sys.exit(rv if isinstance(rv, int) else EXIT_OK)


if __name__ == "__main__":
    main()

"""`trackpulse alerts history` and `trackpulse channels test NAME` (ACTIONS.md "CLI").

History reads the ledger and the outbox only: the alert, each of its deliveries, their status,
tries and the service's answer (already redacted when stored, so no URL token or secret can
show). `channels test` sends one short message through the channel's real code path and exits
1 with the service's answer when it is refused.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from trackpulse.cli import EXIT_FAILED, _cfg, _print_json, err, out

HISTORY_EPILOG = ("[bold]Examples:[/bold]\n\n  trackpulse alerts history\n\n"
                  "  trackpulse alerts history --json --limit 500")
CHANNELS_EPILOG = "[bold]Examples:[/bold]\n\n  trackpulse channels test team-dingtalk"

channels_app = typer.Typer(help="Chat and e-mail channels (ACTIONS.md \"Channels\").", no_args_is_help=True)


def history(
    ctx: typer.Context,
    json_output: Annotated[bool, typer.Option("--json", help="Print the history as JSON on stdout.")] = False,
    limit: Annotated[int, typer.Option("--limit", metavar="N", min=1,
                                       help="Show the newest N alerts (default 50).")] = 50,
) -> None:
    """What went out and what failed, and why: alerts newest first, with every delivery."""
    from trackpulse.delivery.history import history_rows
    from trackpulse.i18n import t
    from trackpulse.store.db import open_store

    cfg = _cfg(ctx)
    store = open_store(cfg.store.url)
    try:
        rows = history_rows(store, limit)
    finally:
        store.dispose()
    if json_output:
        _print_json({"schema": "trackpulse.alerts-history/1", "alerts": rows})
        return
    lang = cfg.alerts.language
    table = Table(title=t("alerts.title_history", lang))
    for key in ("col_opened", "col_rule", "col_subject", "col_target", "col_status", "col_attempts", "col_answer"):
        table.add_column(t(f"alerts.{key}", lang), overflow="fold")
    style = {"sent": "green", "failed": "red"}
    for a in rows:
        first = True
        for d in a["deliveries"] or [None]:
            cells = [a["opened_at"] or "", a["rule"], a["subject"]] if first else ["", "", ""]
            first = False
            if d is None:
                table.add_row(*cells, "—", "", "", "")
                continue
            status = t(f"alerts.status_{d['status']}", lang)
            table.add_row(*cells, f"{d['kind']} {d['target']}",
                          f"[{style[d['status']]}]{status}[/]" if d["status"] in style else status,
                          str(d["attempts"]), d["answer"] or "")
    out.print(table)


@channels_app.command("test", epilog=CHANNELS_EPILOG)
def channels_test(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="The \\[\\[channels]] entry's name.")],
) -> None:
    """Send a short test message to channel NAME; exit 1 with the service's answer if it is refused."""
    from trackpulse.channels import open_channel
    from trackpulse.i18n import t
    from trackpulse.outcomes import Sent

    cfg = _cfg(ctx)
    channel_cfg = cfg.channel(name)
    lang = channel_cfg.language
    channel = open_channel(channel_cfg)
    try:
        message = channel.render_markdown(t("channels.test_title", lang),
                                          t("channels.test_body", lang, channel=name, kind=channel_cfg.kind), lang)
        outcome = channel.send(message, delivery_id=f"channels-test-{name}")
    finally:
        channel.close()
    if isinstance(outcome, Sent):
        out.print(t("channels.test_sent", lang, name=name, kind=channel_cfg.kind), markup=False)
        return
    err.print(f"error: channel {name} ({channel_cfg.kind}): {outcome.answer}", markup=False)
    raise typer.Exit(EXIT_FAILED)

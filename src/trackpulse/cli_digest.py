"""`trackpulse digest NAME [--as-of TS] [--preview FILE] [--json] [--send]` (ACTIONS.md).

Without options it prints the digest's plain-text part. `--preview` writes the HTML (charts as
PNG files beside it), `--json` prints `trackpulse.digest/1` alone on stdout, `--send` delivers
it now as a firing of the current minute (so a second `--send` in that minute sends nothing)
through the alerts outbox: a message the service refuses for now stays pending there and is
retried by the next `trackpulse alerts` or `serve`; a refusal for good exits 1.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from trackpulse.cli import EXIT_FAILED, UsageProblem, _cfg, _print_json, err, out
from trackpulse.i18n import t
from trackpulse.outcomes import Outcome, RetryAfter, Sent

EPILOG = (
    "[bold]Examples:[/bold]\n\n  trackpulse digest weekly-pmo --preview out.html\n\n"
    "  trackpulse digest weekly-pmo --as-of 2026-11-23T01:00:00Z --json\n\n"
    "  trackpulse digest weekly-pmo --send"
)


def digest(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="The \\[\\[digests]] entry's name.")],
    as_of: Annotated[str | None, typer.Option(
        "--as-of", metavar="TS", help="End of the digest's window (ISO 8601, default now).")] = None,
    preview: Annotated[Path | None, typer.Option(
        "--preview", metavar="FILE", help="Write the HTML e-mail to FILE (charts as PNG files beside it).")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print the digest's figures (trackpulse.digest/1).")] = False,
    send: Annotated[bool, typer.Option("--send", help="Deliver it now to the digest's channels.")] = False,
) -> None:
    """Build a digest: its window [as_of - period_days, as_of) compared with the period before.

    Every figure is the docs/metrics.md figure for the window, filtered by the digest's sources and projects.
    """
    from trackpulse.digests.build import build_digest, digest_json
    from trackpulse.digests.content import build_content
    from trackpulse.digests.mail import render_mail, render_text, write_preview
    from trackpulse.digests.send import send_digest
    from trackpulse.reports import parse_instant
    from trackpulse.store.db import open_store

    as_of_ts = parse_instant(as_of, "option --as-of")
    cfg = _cfg(ctx)
    lang = cfg.digest(name).language  # an unknown name is a configuration error before the store is opened
    store = open_store(cfg.store.url)
    try:
        data = build_digest(cfg, store, name, as_of=as_of_ts)
        content = build_content(data)
        if preview is not None:
            try:
                written = write_preview(render_mail(content), preview)
            except OSError as exc:
                raise UsageProblem(f"option --preview: cannot write {preview}: {exc.strerror}") from None
            err.print(t("digests.cli.preview_written", lang, path=written[0], n=len(written) - 1), markup=False)
        if json_output:
            _print_json(digest_json(data))
        elif preview is None and not send:
            out.print(render_text(content), markup=False, highlight=False)
        if send:
            now = datetime.now(UTC).replace(second=0, microsecond=0)
            result = send_digest(cfg, store, name, scheduled_for=now, as_of=data.as_of, data=data)
            if not result.sent:
                err.print(t("digests.cli.already_sent", lang, name=name, firing=result.scheduled_local), markup=False)
            for channel, outcome in result.outcomes.items():
                err.print(_outcome_line(name, channel, outcome, lang), markup=False)
            if result.failed:
                raise typer.Exit(EXIT_FAILED)
    finally:
        store.dispose()


def _outcome_line(name: str, channel: str, outcome: Outcome, lang: str) -> str:
    if isinstance(outcome, Sent):
        return t("digests.cli.channel_sent", lang, name=name, channel=channel)
    if isinstance(outcome, RetryAfter):
        return t("digests.cli.channel_pending", lang, name=name, channel=channel, seconds=f"{outcome.seconds:.0f}",
                 answer=outcome.answer)
    return t("digests.cli.channel_failed", lang, name=name, channel=channel, answer=outcome.answer)

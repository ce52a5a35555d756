"""Progress bars: drawn per source and entity on a terminal, absent with --json or when piped."""

from __future__ import annotations

import io

from rich.console import Console

from trackpulse.progress import QuietProgress, RichProgress, progress_for


def test_bars_show_source_entity_and_counts() -> None:
    buf = io.StringIO()
    console = Console(file=buf, force_terminal=True, width=120)
    with RichProgress(console) as progress:
        progress.begin("acme", "issues", total=10)
        progress.advance("acme", "issues", 4)
        progress.begin("acme", "worklogs")  # size unknown up front
        progress.advance("acme", "worklogs", 3)
        progress.end("acme", "worklogs")
        progress.advance("acme", "issues", 6)
        progress.end("acme", "issues")
    text = buf.getvalue()
    assert "acme" in text and "issues" in text and "worklogs" in text
    assert "10/10" in text and "3/3" in text


def test_no_bars_with_json_or_without_a_terminal() -> None:
    assert isinstance(progress_for(True, force=True), QuietProgress)
    assert isinstance(progress_for(False, force=False), QuietProgress)
    assert isinstance(progress_for(False, force=True), RichProgress)

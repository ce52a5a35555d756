"""Rich progress bars for sync runs: the CLI's implementation of `sync_api.Progress`.

One bar per (source, entity) showing count, total when the connector knows it, rate and
elapsed time. Bars are drawn on stderr so `--json` and piped stdout stay clean, and only
when stderr is a terminal: cron logs and CI get no control characters.
"""

from __future__ import annotations

import sys
import threading
from types import TracebackType
from typing import Self

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text

from trackpulse.sync_api import NoProgress


class _RateColumn(ProgressColumn):
    """Items per second: what users compare between incremental and full runs."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        if speed is None:
            return Text("    -/s", style="progress.data.speed")
        return Text(f"{speed:7.1f}/s", style="progress.data.speed")


class RichProgress:
    """Thread-safe: connectors fetch with several workers and report from each."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.fields[source]}[/bold] {task.fields[entity]:<12}"),
            BarColumn(),
            MofNCompleteColumn(),
            _RateColumn(),
            TimeElapsedColumn(),
            console=self.console,
            transient=False,
        )
        self._tasks: dict[tuple[str, str], TaskID] = {}
        self._counts: dict[tuple[str, str], int] = {}
        self._lock = threading.Lock()

    def __enter__(self) -> Self:
        self._progress.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._progress.stop()

    def _task(self, source: str, entity: str, total: int | None = None) -> TaskID:
        key = (source, entity)
        task = self._tasks.get(key)
        if task is None:
            task = self._progress.add_task("", total=total, source=source, entity=entity)
            self._tasks[key] = task
        return task

    def begin(self, source: str, entity: str, total: int | None = None) -> None:
        with self._lock:
            task = self._task(source, entity, total)
            if total is not None:
                self._progress.update(task, total=total)

    def advance(self, source: str, entity: str, n: int = 1) -> None:
        with self._lock:
            self._counts[(source, entity)] = self._counts.get((source, entity), 0) + n
            self._progress.advance(self._task(source, entity), n)

    def end(self, source: str, entity: str) -> None:
        with self._lock:
            task = self._task(source, entity)
            done = self._counts.get((source, entity), 0)
            # An entity of unknown size (or an over-estimated one) ends as a full bar at the count reached.
            self._progress.update(task, total=done, completed=done)
            self._progress.stop_task(task)


class QuietProgress(NoProgress):
    """No output; a context manager so callers treat both kinds alike."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


def progress_for(json_output: bool, *, force: bool | None = None) -> RichProgress | QuietProgress:
    """Bars on an interactive terminal; nothing with --json or when output is redirected."""
    interactive = sys.stderr.isatty() and sys.stdout.isatty() if force is None else force
    if json_output or not interactive:
        return QuietProgress()
    return RichProgress()

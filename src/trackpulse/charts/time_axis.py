"""Date axes in the reader's convention (11-20 / 11月20日) and ISO instants from the report."""

from __future__ import annotations

from datetime import UTC, datetime

from matplotlib.axes import Axes
from matplotlib.dates import AutoDateLocator, DateFormatter


def parse_instant(text: str) -> datetime:
    ts = datetime.fromisoformat(text)  # Python 3.11 reads a trailing Z
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def date_axis(ax: Axes, lang: str) -> None:
    ax.xaxis.set_major_locator(AutoDateLocator(minticks=3, maxticks=7))
    ax.xaxis.set_major_formatter(DateFormatter("%m月%d日" if lang == "zh" else "%m-%d", tz=UTC))

"""How a chart leaves matplotlib: PNG bytes for mail, SVG text for the dashboard, and the
shared look (Okabe–Ito palette, 600 px wide at 2x, opaque white background).

Every chart module builds a `matplotlib.figure.Figure` directly (never pyplot, which keeps
global figure references and is not thread-safe in `serve`) through `new_figure`.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager

import matplotlib as mpl
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.backends.backend_svg import FigureCanvasSVG
from matplotlib.figure import Figure

from trackpulse.charts.fonts import font_families

# Okabe & Ito (2008), "Color Universal Design": distinguishable with every common colour-vision deficiency.
OKABE_ITO = {
    "orange": "#E69F00", "sky": "#56B4E9", "green": "#009E73", "yellow": "#F0E442",
    "blue": "#0072B2", "vermillion": "#D55E00", "purple": "#CC79A7", "black": "#000000", "grey": "#999999",
}
CYCLE = [OKABE_ITO[c] for c in ("blue", "orange", "green", "vermillion", "sky", "purple", "yellow", "black")]

WIDTH_PX = 600  # the e-mail column
DPI = 100
SCALE = 2  # PNGs at 1200 px for sharp rendering on high-density screens, shown at 600 px
HEIGHT_PX = 320


def style(lang: str) -> dict[str, object]:
    """rcParams for one chart: fonts for `lang`, sizes legible at 600 px, the palette."""
    return {
        "font.family": font_families(lang),
        "axes.unicode_minus": False,  # CJK faces lack U+2212
        "font.size": 9,
        "axes.titlesize": 11,
        "axes.labelsize": 9,
        "legend.fontsize": 8,
        "xtick.labelsize": 8,
        "ytick.labelsize": 8,
        "axes.prop_cycle": mpl.cycler(color=CYCLE),
        "axes.spines.top": False,
        "axes.spines.right": False,
        "figure.facecolor": "white",
        "axes.facecolor": "white",
        "savefig.facecolor": "white",
        "svg.fonttype": "none",  # SVG text stays text: the browser's CJK font draws it
    }


@contextmanager
def chart_style(lang: str) -> Iterator[None]:
    """rcParams for building and saving one chart; rc_context is thread-local enough for
    our use because each chart is built and saved inside one call."""
    with mpl.rc_context(style(lang)):
        yield


def new_figure(height_px: int = HEIGHT_PX) -> Figure:
    fig = Figure(figsize=(WIDTH_PX / DPI, height_px / DPI), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def to_png(fig: Figure, lang: str) -> bytes:
    """PNG bytes at twice the layout width (shown at 600 px in the mail)."""
    buf = io.BytesIO()
    with chart_style(lang):
        fig.savefig(buf, format="png", dpi=DPI * SCALE)
    return buf.getvalue()


def to_svg(fig: Figure, lang: str) -> str:
    buf = io.StringIO()
    with chart_style(lang):
        FigureCanvasSVG(fig)
        fig.savefig(buf, format="svg")
        FigureCanvasAgg(fig)
    return buf.getvalue()


def empty_note(fig: Figure, text: str) -> Figure:
    """A figure that says there is nothing to draw (instead of blank axes)."""
    ax = fig.add_subplot()
    ax.set_axis_off()
    ax.text(0.5, 0.5, text, ha="center", va="center", color=OKABE_ITO["grey"], transform=ax.transAxes)
    return fig

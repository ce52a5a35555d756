"""Cost against budget per project (the extras' `cost` rows): the cost bar over the budget
bar, projects without a budget drawn without one."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from trackpulse.charts.output import OKABE_ITO, chart_style, empty_note, new_figure
from trackpulse.i18n import t


def cost_chart(cost: Sequence[Mapping[str, Any]], lang: str, *, currency: str = "", title: str = "") -> Figure:
    rows = [r for r in cost if (r["cost"] or 0) > 0 or r["budget"] is not None]
    with chart_style(lang):
        fig = new_figure(max(200, 70 + 26 * len(rows)))
        if not rows:
            return empty_note(fig, t("charts.no_cost", lang))
        ax = fig.add_subplot()
        y = np.arange(len(rows))[::-1]
        labels = [f"{r['project']}" for r in rows]
        ax.barh(y, [r["budget"] or 0.0 for r in rows], 0.8, color=OKABE_ITO["grey"], alpha=0.35,
                label=t("charts.budget", lang))
        ax.barh(y, [r["cost"] or 0.0 for r in rows], 0.4,
                color=[OKABE_ITO["vermillion"] if r["budget"] is not None and (r["cost"] or 0) > r["budget"]
                       else OKABE_ITO["blue"] for r in rows], label=t("charts.cost", lang))
        ax.set_yticks(y, labels)
        unit = currency or (rows[0].get("currency") or "")
        ax.set_xlabel(t("charts.amount", lang, currency=unit))
        ax.set_title(title or t("charts.cost_title", lang))
        ax.legend(loc="lower right", frameon=False)
        return fig

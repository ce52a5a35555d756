"""What an alert says, in English or Chinese: one sentence per `when`, and the post-back comment.

The comment is kept as neutral segments `(text, bold)` so each tracker renders it its own way
(ADF on Jira Cloud, wiki markup on Data Center, Markdown on Trello). Its last segment is the
marker (the alert's stable id) by which a retry finds a comment an earlier attempt posted.
"""

from __future__ import annotations

from trackpulse.channels.base import AlertView
from trackpulse.i18n import Lang, fmt_date, fmt_number, t

Segment = tuple[str, bool]


def _figure(view: AlertView, value: float | None, lang: Lang) -> str:
    if value is None:
        return t("common.na", lang)
    if view.when in ("sla_breached", "sla_at_risk"):
        return t("common.hours", lang, value=fmt_number(value, lang, digits=2))
    if view.when == "wip_age_above":
        return t("common.days", lang, value=fmt_number(value, lang, digits=1))
    if view.when == "budget_burn_above":
        return f"{value * 100:.1f}%"
    return fmt_number(value, lang, digits=2)


def describe(view: AlertView, lang: Lang) -> str:
    """One sentence: which figure, its value and its target."""
    clock = t(f"common.{view.clock}", lang) if view.clock in ("response", "resolution") else (view.clock or "")
    return t(f"alerts.{view.when}", lang, policy=view.policy or "", clock=clock,
             value=_figure(view, view.value, lang), target=_figure(view, view.target, lang),
             project=view.project or "", source=view.source)


def marker(alert_id: str, lang: Lang) -> str:
    return t("alerts.marker", lang, id=alert_id)


def comment_segments(view: AlertView, lang: Lang) -> list[Segment]:
    """The post-back comment: the rule in bold, the figure against its target, the marker."""
    when = fmt_date(view.at, lang, with_time=True) + " UTC"
    return [(t("alerts.comment_title", lang, rule=view.rule), True), (" " + describe(view, lang), False),
            (f" ({when})", False), ("\n" + marker(view.id, lang), False)]

"""What an alert says, in English or Chinese, before any service's markup is applied.

Every channel builds its message from these pieces (a title, and per alert a subject label, a
link, a sentence and a details line) so the words are the same on DingTalk, Slack and e-mail,
and every word comes from the `channels` catalogue (locales/channels.toml).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from trackpulse.channels.base import AlertView
from trackpulse.i18n import Lang, fmt_date, fmt_number, t

_KNOWN_WHEN = frozenset({
    "sla_breached", "sla_at_risk", "wip_age_above", "defect_density_above", "defects_open_above",
    "velocity_drop", "budget_burn_above", "kpi_missed", "sync_failed",
})
_HOURS = frozenset({"sla_breached", "sla_at_risk"})
_DAYS = frozenset({"wip_age_above"})
_PERCENT = frozenset({"budget_burn_above"})
_BOARD = frozenset({"velocity_drop"})


@dataclass(frozen=True)
class AlertWords:
    """One alert in words: `label` (what people call the subject), `url` (may be None),
    `sentence` (what happened) and `details` (rule, source, since when)."""

    label: str
    url: str | None
    sentence: str
    details: str


def _kind(when: str) -> str:
    return when if when in _KNOWN_WHEN else "other"


def _figure(alert: AlertView, value: float | None, lang: Lang) -> str:
    if value is None:
        return t("common.na", lang)
    if alert.when in _HOURS:
        return t("common.hours", lang, value=fmt_number(value, lang))
    if alert.when in _DAYS:
        return t("common.days", lang, value=fmt_number(value, lang))
    if alert.when in _PERCENT:
        return f"{fmt_number(value * 100, lang, digits=0)}%"
    return fmt_number(value, lang, digits=2 if abs(value) < 10 else 1)


def what(when: str, lang: Lang) -> str:
    """The short name of what fired ("SLA breached" / "SLA 已违约")."""
    return t(f"channels.what.{_kind(when)}", lang)


def title(alerts: Sequence[AlertView], lang: Lang) -> str:
    """The message title: the one alert's kind and subject, or the number of alerts."""
    if len(alerts) == 1:
        a = alerts[0]
        return t("channels.title_one", lang, what=f"{what(a.when, lang)} · {words(a, lang).label}")
    return t("channels.title_many", lang, count=len(alerts))


def words(alert: AlertView, lang: Lang) -> AlertWords:
    if alert.item:
        label = alert.item_label or alert.item
    elif alert.project:
        label = t("channels.subject.board" if alert.when in _BOARD else "channels.subject.project", lang,
                  name=alert.project)
    else:
        label = t("channels.subject.source", lang, name=alert.source)
    clock = t(f"common.{alert.clock}", lang) if alert.clock in ("response", "resolution") else (alert.clock or "")
    sentence = t(f"channels.line.{_kind(alert.when)}", lang, clock=clock, policy=alert.policy or "",
                 value=_figure(alert, alert.value, lang), target=_figure(alert, alert.target, lang))
    details = t("channels.details", lang, rule=alert.rule, source=alert.source,
                at=fmt_date(alert.at, lang, with_time=True) + " UTC")
    return AlertWords(label=label, url=alert.url, sentence=" ".join(sentence.split()), details=details)


def more(count: int, lang: Lang) -> str:
    return t("channels.more", lang, count=count)

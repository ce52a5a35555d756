"""The zh/en message catalogue every user-facing string goes through (alerts, digests, server).

Messages live in `trackpulse/locales/<domain>.toml`, one file per domain (`server`, `alerts`,
`digests`, `dashboard`, `charts` …), each with an `[en]` and a `[zh]` table of the same keys.
A key is addressed as `"<domain>.<key>"`. Values are `str.format` templates. Every key must
exist in both languages: `tests/test_i18n.py` checks it, so a zh reader never meets English.
Numbers and dates are formatted per language by `fmt_number` and `fmt_date`.
"""

from __future__ import annotations

import tomllib
from datetime import datetime
from functools import lru_cache
from importlib import resources
from typing import Any, Literal

Lang = Literal["en", "zh"]
LANGUAGES: tuple[Lang, ...] = ("en", "zh")


@lru_cache(maxsize=1)
def catalogue() -> dict[Lang, dict[str, str]]:
    """Every message of every domain, per language: {"en": {"alerts.title": "…"}, "zh": {…}}."""
    out: dict[Lang, dict[str, str]] = {"en": {}, "zh": {}}
    folder = resources.files("trackpulse").joinpath("locales")
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".toml"):
            continue
        domain = entry.name[: -len(".toml")]
        data = tomllib.loads(entry.read_text(encoding="utf-8"))
        for lang in LANGUAGES:
            for key, value in _flatten(data.get(lang, {})).items():
                out[lang][f"{domain}.{key}"] = value
    return out


def _flatten(table: dict[str, Any], prefix: str = "") -> dict[str, str]:
    flat: dict[str, str] = {}
    for key, value in table.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = str(value)
    return flat


def t(key: str, lang: str = "en", /, **params: Any) -> str:
    """The message `key` in `lang`, formatted with `params`. An unknown key raises KeyError:
    a missing translation is a bug the catalogue test catches, not a silent English fallback."""
    messages = catalogue()["zh" if lang == "zh" else "en"]
    template = messages[key]
    return template.format(**params) if params else template


def fmt_number(value: float | None, lang: str = "en", *, digits: int = 1) -> str:
    """A figure for people: thousands grouped, `digits` decimals for floats, an em dash for null."""
    if value is None:
        return "—"
    if isinstance(value, int) or float(value).is_integer() and digits == 0:
        return f"{int(value):,}"
    return f"{value:,.{digits}f}"


def fmt_date(value: datetime | None, lang: str = "en", *, with_time: bool = False) -> str:
    """A date (and time) in the reader's convention: 2026-11-20 / 2026年11月20日."""
    if value is None:
        return "—"
    if lang == "zh":
        text = f"{value.year}年{value.month}月{value.day}日"
        return text + (f" {value:%H:%M}" if with_time else "")
    return value.strftime("%Y-%m-%d %H:%M" if with_time else "%Y-%m-%d")

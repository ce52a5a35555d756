"""The message catalogue: every key in both languages, no zh message left in English."""

from __future__ import annotations

import re

from trackpulse.i18n import catalogue, fmt_date, t

# Names that stay as they are in every language.
PROPER_NAMES = {"trackpulse"}


def test_every_key_exists_in_english_and_chinese() -> None:
    cat = catalogue()
    assert set(cat["en"]) == set(cat["zh"]), set(cat["en"]) ^ set(cat["zh"])


def test_chinese_messages_are_translated_and_keep_the_same_placeholders() -> None:
    cat = catalogue()
    for key, en in cat["en"].items():
        zh = cat["zh"][key]
        assert set(re.findall(r"{(\w+)", en)) == set(re.findall(r"{(\w+)", zh)), key
        # A zh string identical to a non-trivial English one is an untranslated copy.
        if re.search(r"[A-Za-z]{4,}", re.sub(r"{\w+}", "", en)) and en not in PROPER_NAMES:
            assert zh != en, f"{key} is not translated"


def test_messages_format_in_both_languages() -> None:
    assert t("common.hours", "en", value="1.5") == "1.5 h"
    assert t("common.hours", "zh", value="1.5") == "1.5 小时"


def test_dates_follow_the_reader_convention() -> None:
    from datetime import UTC, datetime

    d = datetime(2026, 11, 20, 9, 5, tzinfo=UTC)
    assert fmt_date(d, "en") == "2026-11-20"
    assert fmt_date(d, "zh") == "2026年11月20日"

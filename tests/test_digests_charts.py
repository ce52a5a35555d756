"""Chinese digests draw Chinese glyphs, not boxes: the font matplotlib resolves for each Chinese
label is the registered CJK file (not DejaVu Sans from a stale font cache) and that font has a
real glyph (not .notdef) for every character; English and Chinese digests carry the same figures."""

from __future__ import annotations

import logging
import re
import warnings
from typing import Any

import pytest
from digest_worlds import AS_OF, digest_config, many_projects_world
from matplotlib import font_manager
from matplotlib.collections import Collection
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.text import Text

from trackpulse.charts import register_cjk_font, to_png
from trackpulse.charts.output import chart_style
from trackpulse.digests import build_from_input, digest_json
from trackpulse.digests.content import DigestContent, build_content

CJK = re.compile(r"[\u3400-\u9fff\uff00-\uffef]")


@pytest.fixture(scope="module")
def contents() -> dict[str, DigestContent]:
    world = many_projects_world(3, items_per_project=18)
    return {lang: build_content(build_from_input(world, digest_config(language=lang), as_of=AS_OF))
            for lang in ("en", "zh")}


def test_the_cjk_font_file_is_registered_and_found_by_its_family_without_the_font_cache() -> None:
    cjk = register_cjk_font()
    assert cjk is not None, "no CJK font installed: apt-get install fonts-noto-cjk (see README, Fonts)"
    found = font_manager.findfont(font_manager.FontProperties(family=cjk.family), fallback_to_default=False)
    assert found == cjk.path


def _texts(fig: Figure, lang: str) -> list[Text]:
    with chart_style(lang):  # tick labels are made when the figure is drawn, as in to_png
        fig.canvas.draw()
    return [tx for tx in fig.findobj(Text) if tx.get_visible() and tx.get_text().strip()]


def test_every_chinese_label_of_every_chart_is_drawn_with_the_cjk_font_and_real_glyphs(
        contents: dict[str, DigestContent], caplog: pytest.LogCaptureFixture) -> None:
    cjk = register_cjk_font()
    assert cjk is not None
    chinese_labels = 0
    for spec in contents["zh"].charts:
        fig = spec.build()
        for tx in _texts(fig, "zh"):
            text = tx.get_text()
            if not CJK.search(text):
                continue
            chinese_labels += 1
            path = font_manager.findfont(tx.get_fontproperties(), fallback_to_default=False)
            assert path == cjk.path, (spec.key, text, path)
            font = font_manager.get_font(path)
            missing = [ch for ch in set(text) if not ch.isspace() and font.get_char_index(ord(ch)) == 0]
            assert not missing, (spec.key, text, missing)  # index 0 is .notdef, the tofu box
        with warnings.catch_warnings(record=True) as seen, caplog.at_level(logging.WARNING, "matplotlib"):
            warnings.simplefilter("always")
            to_png(fig, "zh")
        assert not [w for w in seen if "missing from font" in str(w.message)], spec.key
        assert "missing from font" not in caplog.text and "findfont" not in caplog.text, spec.key
    assert chinese_labels >= 3 * len(contents["zh"].charts) // 2


def test_english_charts_draw_chinese_names_through_the_cjk_fallback(contents: dict[str, DigestContent]) -> None:
    hours = next(s for s in contents["en"].charts if s.key == "hours")
    fig = hours.build()
    assert any(CJK.search(tx.get_text()) for tx in _texts(fig, "en"))  # 李明, 王芳, 张伟 log hours
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        to_png(fig, "en")
    assert not [w for w in seen if "missing from font" in str(w.message)]


def _numbers(fig: Figure) -> list[Any]:
    """What a chart says in numbers: bar geometry, line data and scatter offsets, axis by axis."""
    out: list[Any] = []
    for ax in fig.axes:
        out.append([(round(p.get_x(), 9), round(p.get_width(), 9), round(p.get_height(), 9))
                    for p in ax.patches if isinstance(p, Rectangle)])
        out.append([line.get_xydata().round(9).tolist() for line in ax.get_lines()])
        out.append([c.get_offsets().round(9).tolist() if hasattr(c.get_offsets(), "round") else []  # type: ignore[union-attr]
                    for c in ax.collections if isinstance(c, Collection)])
    return out


def test_english_and_chinese_digests_have_the_same_figures(contents: dict[str, DigestContent]) -> None:
    world = many_projects_world(3, items_per_project=18)
    en = digest_json(build_from_input(world, digest_config(language="en"), as_of=AS_OF))
    zh = digest_json(build_from_input(world, digest_config(language="zh"), as_of=AS_OF))
    assert en == zh
    assert [(h.key, h.value, h.change) for h in contents["en"].headlines] == \
        [(h.key, h.value, h.change) for h in contents["zh"].headlines]
    assert [(tb.key, tb.total_rows) for tb in contents["en"].tables] == \
        [(tb.key, tb.total_rows) for tb in contents["zh"].tables]
    en_charts = {s.key: s for s in contents["en"].charts}
    zh_charts = {s.key: s for s in contents["zh"].charts}
    assert en_charts.keys() == zh_charts.keys()
    for key, spec in en_charts.items():
        assert _numbers(spec.build()) == _numbers(zh_charts[key].build()), key

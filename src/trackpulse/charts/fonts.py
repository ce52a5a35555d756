"""The CJK font the charts draw Chinese labels with, registered explicitly at start-up.

Matplotlib finds fonts through a cache file (`~/.cache/matplotlib/fontlist-v*.json`) built the
first time it ran; a font installed after that is silently ignored (DejaVu Sans draws boxes)
until the cache is deleted. So we never rely on the cache: `register_cjk_font()` looks for the
font FILE in the places Debian's `fonts-noto-cjk` (or `fonts-wqy-microhei`) installs it, adds
it with `font_manager.fontManager.addfont`, and the charts name its family explicitly.
`TRACKPULSE_CJK_FONT` may point at another .ttf/.ttc/.otf file.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path

from matplotlib import font_manager

# Debian/Ubuntu paths first (what .ci/run installs), then common ones elsewhere.
CANDIDATE_FILES = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJKsc-Regular.otf",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/google-noto-cjk/NotoSansCJK-Regular.ttc",
    "/System/Library/Fonts/PingFang.ttc",
)
# A .ttc holds several faces; these are the Simplified Chinese ones we ask for by name.
PREFERRED_FAMILIES = ("Noto Sans CJK SC", "WenQuanYi Micro Hei", "WenQuanYi Zen Hei", "PingFang SC")
LATIN_FAMILY = "DejaVu Sans"


@dataclass(frozen=True)
class CjkFont:
    path: str
    family: str


_lock = threading.Lock()
_registered: CjkFont | None = None
_searched = False


def register_cjk_font() -> CjkFont | None:
    """Add the first CJK font file found to matplotlib's font manager (once per process) and
    return its path and family; None when no CJK font is installed (Chinese would be tofu)."""
    global _registered, _searched
    with _lock:
        if _searched:
            return _registered
        _searched = True
        override = os.environ.get("TRACKPULSE_CJK_FONT")
        for candidate in ((override,) if override else ()) + CANDIDATE_FILES:
            if not candidate or not Path(candidate).is_file():
                continue
            font_manager.fontManager.addfont(candidate)
            family = _family_in(candidate)
            if family:
                _registered = CjkFont(candidate, family)
                break
        return _registered


def _family_in(path: str) -> str | None:
    """The preferred family name of the faces matplotlib read from `path`."""
    names = {f.name for f in font_manager.fontManager.ttflist if os.path.realpath(f.fname) == os.path.realpath(path)}
    for family in PREFERRED_FAMILIES:
        if family in names:
            return family
    return min(names) if names else None


def font_families(lang: str) -> list[str]:
    """The `font.family` list for a chart in `lang`: the CJK family first for Chinese, with
    DejaVu Sans behind it (matplotlib falls back glyph by glyph along the list)."""
    cjk = register_cjk_font()
    if cjk is None:
        return [LATIN_FAMILY]
    # English charts keep the CJK face as a fallback: people's names may be Chinese.
    return [cjk.family, LATIN_FAMILY] if lang == "zh" else [LATIN_FAMILY, cjk.family]

"""`trackpulse demo` leaves a digest preview (the HTML and its PNG charts) in its directory and
prints where; the configuration it writes previews the same digest with `trackpulse digest`."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("TRACKPULSE_", "JIRA_", "TRELLO_"))}


def _pngs_of(html_path: Path) -> list[Path]:
    html = html_path.read_text(encoding="utf-8")
    sources = re.findall(r'src="([^"]+)"', html)
    assert sources and not any(s.startswith(("cid:", "data:", "http")) for s in sources)
    return [html_path.parent / s for s in sources]


def test_demo_writes_a_chinese_digest_preview_and_prints_its_path(tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "trackpulse", "demo", "--issues", "20", "--dir", "demo"],
                       cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=180, check=False)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    preview = tmp_path / "demo" / "digest-preview" / "weekly-pmo.html"
    assert str(preview) in r.stdout.replace("\n", "")
    assert "交付摘要" in preview.read_text(encoding="utf-8")
    pngs = _pngs_of(preview)
    assert len(pngs) >= 5 and all(p.read_bytes().startswith(b"\x89PNG") for p in pngs)

    out = tmp_path / "again" / "digest.html"
    again = subprocess.run([sys.executable, "-m", "trackpulse", "--config", str(tmp_path / "demo" / "trackpulse.toml"),
                            "digest", "weekly-pmo", "--preview", str(out)], cwd=tmp_path, env=_env(),
                           capture_output=True, text=True, timeout=120, check=False)
    assert again.returncode == 0, again.stderr
    assert len(_pngs_of(out)) >= 5

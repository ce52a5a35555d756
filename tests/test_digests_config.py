"""A digest's configuration mistakes are configuration errors (exit 2) naming the key and the value."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from trackpulse.config import parse_config
from trackpulse.errors import ConfigError


def _digest(**more: Any) -> dict[str, Any]:
    return {"digests": [{"name": "weekly-pmo", "cron": "0 9 * * mon", "timezone": "Asia/Shanghai", **more}]}


@pytest.mark.parametrize(("entry", "key", "words"), [
    ({"sections": ["kpis", "burndown"]}, "digests[0](weekly-pmo).sections[1]", "'burndown' is not allowed"),
    ({"language": "fr"}, "digests[0](weekly-pmo).language", "'fr' is not allowed"),
    ({"channels": ["pmo-mail"]}, "digests[0].channels", "unknown channel 'pmo-mail'"),
    ({"timezone": "Shanghai"}, "digests[0](weekly-pmo).timezone", "unknown time zone 'Shanghai'"),
    ({"cron": "0 9 * *"}, "digests[0](weekly-pmo).cron", "bad cron expression"),
    ({"period_days": 0}, "digests[0](weekly-pmo).period_days", "greater than 0"),
    ({"section": ["kpis"]}, "digests[0](weekly-pmo).section", "unknown key"),
])
def test_a_bad_digest_entry_is_a_config_error_naming_the_key(entry: dict[str, Any], key: str, words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(_digest(**entry))
    assert caught.value.key == key
    assert words in str(caught.value) and key in str(caught.value)


def test_digest_command_with_an_unknown_section_exits_2_naming_the_key(tmp_path: Path) -> None:
    (tmp_path / "tp.toml").write_text(f"""
[store]
url = "sqlite:///{tmp_path}/tp.db"

[[digests]]
name = "weekly-pmo"
cron = "0 9 * * mon"
language = "zh"
sections = ["kpis", "velocity"]
""", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRACKPULSE_", "JIRA_", "TRELLO_"))}
    r = subprocess.run([sys.executable, "-m", "trackpulse", "--config", str(tmp_path / "tp.toml"), "digest",
                        "weekly-pmo", "--json"], cwd=tmp_path, env=env, capture_output=True, text=True,
                       timeout=60, check=False)
    assert r.returncode == 2, r.stderr
    assert "digests[0](weekly-pmo).sections[1]" in r.stderr and "'velocity'" in r.stderr
    assert r.stdout == ""


def test_digest_command_for_an_unknown_digest_exits_2_naming_the_digests_key(tmp_path: Path) -> None:
    (tmp_path / "tp.toml").write_text(f'[store]\nurl = "sqlite:///{tmp_path}/tp.db"\n', encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRACKPULSE_", "JIRA_", "TRELLO_"))}
    r = subprocess.run([sys.executable, "-m", "trackpulse", "--config", str(tmp_path / "tp.toml"), "digest",
                        "weekly-pmo"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
                       check=False)
    assert r.returncode == 2 and "key digests" in r.stderr and "'weekly-pmo'" in r.stderr

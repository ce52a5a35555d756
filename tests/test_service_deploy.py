"""The deploy files: the systemd unit verifies, the image builds (where the tools run)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_the_systemd_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed here")
    unit = tmp_path / "trackpulse.service"
    unit.write_text((ROOT / "deploy" / "trackpulse.service").read_text(encoding="utf-8"), encoding="utf-8")
    done = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr


def test_the_docker_image_builds_and_runs_serve_as_a_non_root_user() -> None:
    if shutil.which("docker") is None or subprocess.run(["docker", "info"], capture_output=True, check=False,
                                                        timeout=30).returncode != 0:
        pytest.skip("no Docker engine runs here (docker info fails)")
    done = subprocess.run(["docker", "build", "-t", "trackpulse:test", str(ROOT)], capture_output=True, text=True,
                          timeout=900, check=False)
    assert done.returncode == 0, done.stderr
    user = subprocess.run(["docker", "run", "--rm", "--entrypoint", "id", "trackpulse:test", "-u"],
                          capture_output=True, text=True, timeout=120, check=False)
    assert user.stdout.strip() != "0"


def test_the_compose_file_runs_postgresql_and_two_serve_replicas() -> None:
    text = (ROOT / "deploy" / "compose.yaml").read_text(encoding="utf-8")
    assert "image: postgres:" in text and "replicas: 2" in text

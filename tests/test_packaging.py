"""Packaging and shipped files: the package list, the example configuration, the init template, CI."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
import typing
from importlib import resources
from pathlib import Path

import pytest
from pydantic import BaseModel

from trackpulse.config import AppConfig, parse_config

ROOT = Path(__file__).resolve().parents[1]


def _pyproject() -> dict[str, typing.Any]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def _package_of(directory: Path, package_dirs: dict[str, str]) -> str | None:
    for package, folder in sorted(package_dirs.items(), key=lambda kv: -len(kv[1])):
        base = (ROOT / folder).resolve()
        if directory == base or base in directory.parents:
            rel = directory.relative_to(base).parts
            return ".".join((package, *rel))
    return None


def test_every_python_package_is_listed_in_pyproject() -> None:
    setuptools_cfg = _pyproject()["tool"]["setuptools"]
    listed = set(setuptools_cfg["packages"])
    package_dirs: dict[str, str] = setuptools_cfg["package-dir"]
    found = set()
    for folder in ("src/trackpulse", "connectors", "jobs"):
        for init in (ROOT / folder).rglob("__init__.py"):
            if "__pycache__" in init.parts:
                continue
            name = _package_of(init.parent.resolve(), package_dirs)
            assert name, f"{init} is under no package-dir of pyproject.toml"
            found.add(name)
    assert found - listed == set(), f"packages missing from pyproject.toml [tool.setuptools] packages: {found - listed}"
    assert listed - found == set(), f"listed packages with no __init__.py: {listed - found}"


def test_console_script_points_at_the_cli() -> None:
    assert _pyproject()["project"]["scripts"]["trackpulse"] == "trackpulse.cli:main"


def _field_names(model: type[BaseModel], seen: set[type[BaseModel]] | None = None) -> set[str]:
    """Every key a configuration file can contain, nested models included."""
    seen = seen or set()
    seen.add(model)
    names: set[str] = set()
    for name, field in model.model_fields.items():
        names.add(name)
        stack: list[typing.Any] = [field.annotation]
        while stack:
            tp = stack.pop()
            if isinstance(tp, type) and issubclass(tp, BaseModel):
                if tp not in seen:
                    names |= _field_names(tp, seen)
                continue
            stack.extend(typing.get_args(tp))
    return names


DUMMY_ENV = {"JIRA_EMAIL": "a@example.com", "JIRA_API_TOKEN": "t", "JIRA_WEBHOOK_SECRET": "w", "TRELLO_KEY": "k",
             "TRELLO_TOKEN": "t", "TRELLO_APP_SECRET": "s", "TRACKPULSE_API_TOKEN": "a",
             "DINGTALK_WEBHOOK": "https://oapi.dingtalk.com/robot/send?access_token=x", "DINGTALK_SECRET": "SEC1",
             "SMTP_USER": "u", "SMTP_PASSWORD": "p"}


def test_config_example_parses_with_its_variables_set(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for k, v in DUMMY_ENV.items():
        monkeypatch.setenv(k, v)
    data = tomllib.loads((ROOT / "config.example.toml").read_text(encoding="utf-8"))
    secrets = tmp_path / "secrets.env"
    secrets.write_text("# none\n")
    data["secrets_file"] = str(secrets)  # the example's path does not exist on a test machine
    cfg = parse_config(data, path="config.example.toml")
    assert [s.kind for s in cfg.sources] == ["jira", "trello"]


def test_config_example_documents_every_key_of_the_configuration() -> None:
    text = (ROOT / "config.example.toml").read_text(encoding="utf-8")
    documented = set(re.findall(r"^\s*#?\s*([A-Za-z_]+)\s*=", text, flags=re.MULTILINE))
    documented |= set(re.findall(r"^\s*\[+([A-Za-z_.]+)", text, flags=re.MULTILINE))  # tables: [store], [[sources]]
    documented |= {part for name in list(documented) for part in name.split(".")}
    missing = _field_names(AppConfig) - documented
    assert not missing, f"config.example.toml does not mention: {sorted(missing)}"


def test_init_template_is_shipped_and_parses(monkeypatch: pytest.MonkeyPatch) -> None:
    for k, v in DUMMY_ENV.items():
        monkeypatch.setenv(k, v)
    text = resources.files("trackpulse").joinpath("init_template.toml").read_text(encoding="utf-8")
    parse_config(tomllib.loads(text), path="init_template.toml")


def test_ci_script_runs_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    command = re.search(r"^(python3 -m venv \.venv && .*pytest.*)$", readme, flags=re.MULTILINE)
    assert command, "README.md has no one-line test command"
    assert command.group(1).strip() in ci
    assert os.access(ROOT / ".ci" / "run", os.X_OK)
    assert "set -euo pipefail" in ci


@pytest.mark.skipif(os.environ.get("TRACKPULSE_SLOW_TESTS") != "1",
                    reason="slow, needs a package index for the build backend; .ci/run sets TRACKPULSE_SLOW_TESTS=1")
def test_pip_install_of_the_project_ships_every_module_and_data_file(tmp_path: Path) -> None:
    """A real (non-editable) `pip install .` into a fresh venv. The build backend comes from the
    package index; the runtime dependencies from this environment, through PYTHONPATH."""
    import shutil
    import sysconfig

    # Build from a copy: setuptools leaves build/ and egg-info folders in the tree it builds.
    source = tmp_path / "src-copy"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache", "trackpulse-demo"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    build = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--no-deps",
                            "--disable-pip-version-check", str(source)], cwd=tmp_path, capture_output=True, text=True,
                           check=False)
    assert build.returncode == 0, build.stdout + build.stderr
    env = {**os.environ, "PYTHONPATH": sysconfig.get_paths()["purelib"]}
    r = subprocess.run([str(venv / "bin" / "trackpulse"), "--version"], capture_output=True, text=True,
                       cwd=tmp_path, env=env, check=False)
    assert r.returncode == 0 and r.stdout.startswith("trackpulse"), r.stderr
    probe = (
        "import trackpulse, trackpulse.connectors.jira, trackpulse.connectors.trello, trackpulse.jobs.sync, "
        "trackpulse.server.app, trackpulse.demo, trackpulse.store.db;"
        "from importlib import resources; from pathlib import Path;"
        "assert 'site-packages' in trackpulse.__file__, trackpulse.__file__;"
        "assert resources.files('trackpulse').joinpath('init_template.toml').is_file();"
        "assert list((Path(trackpulse.store.db.__file__).parent / 'migrations' / 'versions').glob('0001_*.py'))"
    )
    r = subprocess.run([str(venv / "bin" / "python"), "-c", probe], capture_output=True, text=True, cwd=tmp_path,
                       env=env, check=False)
    assert r.returncode == 0, r.stderr

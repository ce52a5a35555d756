"""Configuration: the TOML file of INTERFACE.md, validated at load.

`${NAME}` in any string is replaced from the environment, then from the secrets file
(`secrets_file` key or `$TRACKPULSE_SECRETS_FILE`, lines `NAME=value`). Every error
names the file, the key and, for a missing variable, the variable. Secrets stay in
`SecretStr` fields so they never appear in reprs or logs.
"""

from __future__ import annotations

import os
import re
import tomllib
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from trackpulse.errors import ConfigError

DEFAULT_CONFIG_NAME = "trackpulse.toml"
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_NAME = re.compile(r"^[A-Za-z0-9_-]+$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StoreConfig(_Strict):
    url: str = "sqlite:///trackpulse.db"


class ServerConfig(_Strict):
    host: str = "127.0.0.1"
    port: int = 8787
    token: SecretStr | None = None  # bearer token for the API and dashboard (webhooks use signatures)
    public_url: str | None = None  # how trackers reach us, for webhook registration


class _SourceBase(_Strict):
    name: str
    timeout_seconds: float = 30.0
    max_retries: int = 8
    concurrency: int = Field(default=4, ge=1, le=32)
    # Proactive pacing below the tracker's limits; 0 disables it.
    requests_per_second: float = Field(default=0.0, ge=0)

    @field_validator("name")
    @classmethod
    def _name_ok(cls, v: str) -> str:
        if not _NAME.match(v):
            raise ValueError("use letters, digits, '-' and '_' only")
        return v


class JiraSourceConfig(_SourceBase):
    kind: Literal["jira"]
    url: str
    email: str | None = None
    token: SecretStr
    projects: list[str] = []
    jql: str | None = None
    defect_types: list[str] = ["Bug", "Defect", "缺陷"]
    story_points_field: str = "auto"
    webhook_secret: SecretStr | None = None
    kloc: dict[str, float] = {}
    overlap_minutes: float = Field(default=5.0, ge=0)
    page_size: int = Field(default=100, ge=1, le=5000)

    @model_validator(mode="after")
    def _scope(self) -> JiraSourceConfig:
        if not self.projects and not self.jql:
            raise ValueError("set `projects` or `jql` (which issues to sync)")
        if not self.url.startswith(("http://", "https://")):
            raise ValueError(f"url {self.url!r} must start with http:// or https://")
        return self


class TrelloSourceConfig(_SourceBase):
    kind: Literal["trello"]
    api_url: str = "https://api.trello.com"
    key: SecretStr
    token: SecretStr
    app_secret: SecretStr | None = None
    boards: list[str]
    done_lists: list[str] = ["Done"]
    in_progress_lists: list[str] = ["Doing", "In Progress", "Review"]
    defect_labels: list[str] = ["bug", "defect", "缺陷"]
    priority_labels: list[str] = []
    points_field: str = "Points"
    hours_field: str | None = None
    iteration_days: int = Field(default=14, ge=1)
    iteration_start: date | None = None
    kloc: dict[str, float] = {}
    callback_url: str | None = None  # the URL Trello posts to, as registered (signature input)
    requests_per_second: float = Field(default=9.0, ge=0)  # under Trello's 100 per 10 s per token

    @field_validator("boards")
    @classmethod
    def _boards(cls, v: list[str]) -> list[str]:
        if not v:
            raise ValueError("list at least one board id")
        return v


SourceConfig = Annotated[JiraSourceConfig | TrelloSourceConfig, Field(discriminator="kind")]


class CalendarConfig(_Strict):
    timezone: str = "UTC"
    days: list[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]] = ["mon", "tue", "wed", "thu", "fri"]
    hours: list[str] = ["09:00-17:00"]
    holidays: list[date] = []

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown IANA time zone {v!r}") from exc
        return v

    @field_validator("hours")
    @classmethod
    def _hours(cls, v: list[str]) -> list[str]:
        for r in v:
            if not re.match(r"^\d\d:\d\d-\d\d:\d\d$", r):
                raise ValueError(f"hour range {r!r} must look like 09:00-12:00")
        return v


class SlaPolicyConfig(_Strict):
    name: str
    priorities: list[str] = []
    types: list[str] = []
    projects: list[str] = []
    response_hours: float | None = None
    resolution_hours: float | None = None
    calendar: str = "24x7"
    pause_statuses: list[str] = []
    at_risk_ratio: float = Field(default=0.8, gt=0, le=1)


class SlaConfig(_Strict):
    calendars: dict[str, CalendarConfig] = {}
    policies: list[SlaPolicyConfig] = []

    @model_validator(mode="after")
    def _calendars_exist(self) -> SlaConfig:
        for i, p in enumerate(self.policies):
            if p.calendar != "24x7" and p.calendar not in self.calendars:
                raise ValueError(f"policies[{i}].calendar {p.calendar!r} is neither 24x7 nor a calendar above")
        return self


class CostConfig(_Strict):
    currency: str = "USD"
    default_rate: float = 0.0
    rates: dict[str, float] = {}  # per person (display name), per hour
    budgets: dict[str, float] = {}  # "source/project" -> amount


class ScheduleConfig(_Strict):
    sync_every_minutes: float = 15.0


class AppConfig(_Strict):
    secrets_file: str | None = None
    store: StoreConfig = StoreConfig()
    server: ServerConfig = ServerConfig()
    sources: list[SourceConfig] = []
    sla: SlaConfig = SlaConfig()
    costs: CostConfig = CostConfig()
    schedule: ScheduleConfig = ScheduleConfig()

    @model_validator(mode="after")
    def _unique(self) -> AppConfig:
        seen: set[str] = set()
        for s in self.sources:
            if s.name in seen:
                raise ValueError(f"source name {s.name!r} is used twice")
            seen.add(s.name)
        return self

    def webhook_url(self, src: JiraSourceConfig | TrelloSourceConfig, public_url: str | None = None) -> str | None:
        """The URL a tracker posts this source's webhooks to (Trello signs it): a Trello
        source's registered `callback_url`, else `public_url` (or `server.public_url`) plus
        the source's path; None when neither is known."""
        if isinstance(src, TrelloSourceConfig) and src.callback_url and not public_url:
            return src.callback_url
        root = public_url or self.server.public_url
        return f"{root.rstrip('/')}/webhooks/{src.kind}/{src.name}" if root else None

    def source(self, name: str) -> JiraSourceConfig | TrelloSourceConfig:
        for s in self.sources:
            if s.name == name:
                return s
        raise ConfigError(f"no source named {name!r} (have: {', '.join(s.name for s in self.sources) or 'none'})",
                          key="sources")


def _read_secrets_file(path: Path) -> dict[str, str]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"secrets file {path} cannot be read: {exc.strerror}", key="secrets_file") from exc
    values: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        k, v = line.split("=", 1)
        values[k.strip().removeprefix("export ").strip()] = v.strip().strip('"').strip("'")
    return values


def _interpolate(value: Any, key: str, lookup: dict[str, str], path: str) -> Any:
    if isinstance(value, str):
        def repl(m: re.Match[str]) -> str:
            name = m.group(1)
            if name in os.environ:
                return os.environ[name]
            if name in lookup:
                return lookup[name]
            raise ConfigError(f"environment variable {name} is not set", key=key, path=path)

        return _ENV_REF.sub(repl, value)
    if isinstance(value, dict):
        return {k: _interpolate(v, f"{key}.{k}" if key else k, lookup, path) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v, f"{key}[{i}]", lookup, path) for i, v in enumerate(value)]
    return value


def _loc(loc: tuple[Any, ...], data: dict[str, Any]) -> str:
    parts: list[str] = []
    node: Any = data
    for p in loc:
        if isinstance(p, int):
            parts[-1:] = [f"{parts[-1]}[{p}]"] if parts else [f"[{p}]"]
            # name the source by its name when we can: it is what users recognise
            if isinstance(node, list) and p < len(node) and isinstance(node[p], dict) and "name" in node[p]:
                parts[-1] += f"({node[p]['name']})"
            node = node[p] if isinstance(node, list) and p < len(node) else None
        elif p in ("jira", "trello") and parts and parts[-1].startswith("sources"):
            continue  # the discriminator tag pydantic adds to union errors
        else:
            parts.append(str(p))
            node = node.get(p) if isinstance(node, dict) else None
    return ".".join(parts)


def parse_config(data: dict[str, Any], *, path: str = "<config>") -> AppConfig:
    secrets: dict[str, str] = {}
    secrets_path = data.get("secrets_file") or os.environ.get("TRACKPULSE_SECRETS_FILE")
    if secrets_path:
        secrets = _read_secrets_file(Path(str(secrets_path)).expanduser())
    data = _interpolate(data, "", secrets, path)
    try:
        return AppConfig.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = _loc(tuple(err["loc"]), data) or "(top level)"
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key (check its spelling against config.example.toml)"
        elif err["type"] == "missing":
            msg = "required key is missing"
        raise ConfigError(msg, key=key, path=path) from None


def config_path(explicit: str | None) -> Path:
    return Path(explicit or os.environ.get("TRACKPULSE_CONFIG") or DEFAULT_CONFIG_NAME)


def load_config(explicit: str | None = None) -> AppConfig:
    path = config_path(explicit)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError("file not found (run `trackpulse init` to write one, or pass --config)",
                          path=str(path)) from None
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}", path=str(path)) from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"not valid TOML: {exc}", path=str(path)) from None
    return parse_config(data, path=str(path))

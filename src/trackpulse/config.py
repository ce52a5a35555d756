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
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
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


def _check_name(v: str) -> str:
    if not _NAME.match(v):
        raise ValueError("use letters, digits, '-' and '_' only")
    return v


# The names users refer to each other by (sources, channels, rules, digests): one rule for all.
Name = Annotated[str, AfterValidator(_check_name)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StoreConfig(_Strict):
    url: str = "sqlite:///trackpulse.db"


class ServerConfig(_Strict):
    host: str = "127.0.0.1"
    port: int = 8787
    token: SecretStr | None = None  # bearer token for the API and dashboard (webhooks use signatures)
    public_url: str | None = None  # how trackers reach us, for webhook registration
    language: Literal["en", "zh"] = "en"  # dashboard and server messages
    # A webhook delivery that fails for a transient cause (store busy, lock timeout) is tried
    # again after webhook_retry_seconds, doubling each time, at most webhook_max_attempts times.
    webhook_max_attempts: int = Field(default=5, ge=1)
    webhook_retry_seconds: float = Field(default=30.0, gt=0)


class _SourceBase(_Strict):
    name: Name
    timeout_seconds: float = 30.0
    max_retries: int = 8
    concurrency: int = Field(default=4, ge=1, le=32)
    # Proactive pacing below the tracker's limits; 0 disables it.
    requests_per_second: float = Field(default=0.0, ge=0)
    sync_every_minutes: float | None = Field(default=None, gt=0)  # overrides [schedule] for this source


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
    # Issues per search page. Data Center serves up to `jira.search.views.default.max` (1000
    # unless its admin changed it; we use what it says it used); Cloud bulk-fetches at most 100
    # of them at a time whatever this says.
    page_size: int = Field(default=1000, ge=1, le=5000)

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


def _check_timezone(v: str) -> str:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(v)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {v!r} (use an IANA name such as 'Asia/Shanghai')") from exc
    return v


def cron_trigger(expression: str, timezone: str) -> Any:
    """APScheduler's CronTrigger for five fields (minute hour day month weekday) or six, with a
    leading seconds field (short periods for tests and demos)."""
    from zoneinfo import ZoneInfo

    from apscheduler.triggers.cron import CronTrigger

    fields = expression.split()
    if len(fields) == 6:
        second, minute, hour, day, month, dow = fields
        return CronTrigger(second=second, minute=minute, hour=hour, day=day, month=month, day_of_week=dow,
                           timezone=ZoneInfo(timezone))
    return CronTrigger.from_crontab(expression, timezone=ZoneInfo(timezone))


def _check_cron(v: str) -> str:
    try:
        cron_trigger(v, "UTC")
    except ValueError as exc:
        raise ValueError(f"bad cron expression {v!r} (five fields: minute hour day month weekday, "
                         f"or six with leading seconds): {exc}") from exc
    return v


class ScheduleConfig(_Strict):
    sync_every_minutes: float = Field(default=15.0, gt=0)
    full_sync_cron: str | None = "0 3 * * sun"  # weekly --full; null disables it
    timezone: str = "UTC"
    misfire_grace_minutes: float = Field(default=360.0, ge=0)
    shutdown_grace_seconds: float = Field(default=30.0, gt=0)
    lease_seconds: float = Field(default=60.0, gt=0)  # a run's lease; renewed while it runs

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        return _check_timezone(v)

    @field_validator("full_sync_cron")
    @classmethod
    def _cron(cls, v: str | None) -> str | None:
        return None if v is None else _check_cron(v)


Language = Literal["en", "zh"]


class _ChannelBase(_Strict):
    name: Name
    language: Language = "en"
    mention: list[str] = []
    timeout_seconds: float = Field(default=10.0, gt=0)


class _WebhookChannelBase(_ChannelBase):
    url: SecretStr  # incoming-webhook URLs carry their token: secret, never logged or stored


class SlackChannelConfig(_WebhookChannelBase):
    kind: Literal["slack"]


class TeamsChannelConfig(_WebhookChannelBase):
    kind: Literal["teams"]


class DingTalkChannelConfig(_WebhookChannelBase):
    kind: Literal["dingtalk"]
    secret: SecretStr | None = None


class FeishuChannelConfig(_WebhookChannelBase):
    kind: Literal["feishu"]
    secret: SecretStr | None = None


class WeComChannelConfig(_WebhookChannelBase):
    kind: Literal["wecom"]


class WebhookChannelConfig(_WebhookChannelBase):
    kind: Literal["webhook"]
    secret: SecretStr | None = None  # Standard Webhooks "whsec_<base64>"


class EmailChannelConfig(_ChannelBase):
    kind: Literal["email"]
    smtp_host: str
    smtp_port: int = 587
    smtp_security: Literal["starttls", "ssl", "none"] = "starttls"
    username: str | None = None
    password: SecretStr | None = None
    sender: str
    to: list[str] = Field(min_length=1)


ChannelConfig = Annotated[
    SlackChannelConfig | TeamsChannelConfig | DingTalkChannelConfig | FeishuChannelConfig
    | WeComChannelConfig | WebhookChannelConfig | EmailChannelConfig,
    Field(discriminator="kind"),
]

AlertWhen = Literal[
    "sla_breached", "sla_at_risk", "wip_age_above", "defect_density_above", "defects_open_above",
    "velocity_drop", "budget_burn_above", "kpi_missed", "sync_failed",
]
ITEM_RULES: frozenset[str] = frozenset({"sla_breached", "sla_at_risk", "wip_age_above"})


class AlertRuleConfig(_Strict):
    name: Name
    when: AlertWhen
    channels: list[str] = []
    post_back: list[Literal["comment", "label"]] = []
    label: str | None = None  # the label post_back adds; default: the rule's name
    sources: list[str] = []
    projects: list[str] = []
    policies: list[str] = []
    clocks: list[Literal["response", "resolution"]] = []
    threshold: float = 0.0

    @model_validator(mode="after")
    def _post_back_on_items_only(self) -> AlertRuleConfig:
        if self.post_back and self.when not in ITEM_RULES:
            raise ValueError(f"post_back needs an item rule ({', '.join(sorted(ITEM_RULES))}), "
                             f"not {self.when!r}")
        return self

    @property
    def label_name(self) -> str:
        return self.label or self.name


class AlertsConfig(_Strict):
    language: Language = "en"  # language of post-back comments
    # How long a dispatcher holds the deliveries it took: a process killed mid-delivery leaves
    # them to the next dispatcher after this, which checks for its marker before posting again.
    delivery_lease_seconds: float = Field(default=120.0, gt=0)
    rules: list[AlertRuleConfig] = []


DIGEST_SECTIONS = ("kpis", "projects", "sprints", "sla", "forecast", "effort", "people")


class DigestConfig(_Strict):
    name: Name
    cron: str
    timezone: str = "UTC"
    channels: list[str] = []
    language: Language = "en"
    sources: list[str] = []
    projects: list[str] = []
    period_days: float = Field(default=7.0, gt=0)
    sections: list[Literal["kpis", "projects", "sprints", "sla", "forecast", "effort", "people"]] = \
        list(DIGEST_SECTIONS)  # type: ignore[arg-type]

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        return _check_timezone(v)

    @field_validator("cron")
    @classmethod
    def _cron(cls, v: str) -> str:
        return _check_cron(v)


class BaselineConfig(_Strict):
    since: datetime
    until: datetime


KPI_FIGURES = (
    "sla_compliance", "defect_density_per_kloc", "defects_per_100_points", "defects_open",
    "throughput_per_week", "wip", "wip_age_days_p85", "worklog_hours", "line_coverage", "people.bus_factor",
)
_KPI_STAT = re.compile(r"^(cycle_time_days|lead_time_days)\.(count|mean|p50|p85|p95)$")


class KpiConfig(_Strict):
    name: str
    figure: str
    op: Literal[">=", "<="]
    target: float | None = None
    target_change: float | None = None
    baseline: BaselineConfig | None = None
    sources: list[str] = []
    projects: list[str] = []

    @field_validator("figure")
    @classmethod
    def _figure(cls, v: str) -> str:
        if v not in KPI_FIGURES and not _KPI_STAT.match(v):
            raise ValueError(f"unknown figure {v!r} (one of {', '.join(KPI_FIGURES)}, "
                             "or cycle_time_days.p85, lead_time_days.p50 …)")
        return v

    @model_validator(mode="after")
    def _one_target(self) -> KpiConfig:
        if (self.target is None) == (self.target_change is None):
            raise ValueError("give exactly one of target or target_change")
        if self.target_change is not None and self.baseline is None:
            raise ValueError("target_change needs baseline = {since, until}")
        return self


class CoverageConfig(_Strict):
    source: str
    project: str
    path: str


class MetricsConfig(_Strict):
    forecast_window_days: int = Field(default=56, ge=1)
    forecast_horizon_days: int = Field(default=14, ge=1)


class AppConfig(_Strict):
    secrets_file: str | None = None
    store: StoreConfig = StoreConfig()
    server: ServerConfig = ServerConfig()
    sources: list[SourceConfig] = []
    sla: SlaConfig = SlaConfig()
    costs: CostConfig = CostConfig()
    schedule: ScheduleConfig = ScheduleConfig()
    metrics: MetricsConfig = MetricsConfig()
    channels: list[ChannelConfig] = []
    alerts: AlertsConfig = AlertsConfig()
    digests: list[DigestConfig] = []
    kpis: list[KpiConfig] = []
    coverage: list[CoverageConfig] = []

    @model_validator(mode="after")
    def _unique(self) -> AppConfig:
        for what, names in (("source", [s.name for s in self.sources]),
                            ("channel", [c.name for c in self.channels]),
                            ("alert rule", [r.name for r in self.alerts.rules]),
                            ("digest", [d.name for d in self.digests]),
                            ("kpi", [k.name for k in self.kpis])):
            seen: set[str] = set()
            for n in names:
                if n in seen:
                    raise ValueError(f"{what} name {n!r} is used twice")
                seen.add(n)
        channels = {c.name for c in self.channels}
        for i, r in enumerate(self.alerts.rules):
            for c in r.channels:
                if c not in channels:
                    raise ConfigError(f"alert rule {r.name!r} names unknown channel {c!r} "
                                      f"(have: {', '.join(sorted(channels)) or 'none'})",
                                      key=f"alerts.rules[{i}].channels")
        for i, d in enumerate(self.digests):
            for c in d.channels:
                if c not in channels:
                    raise ConfigError(f"digest {d.name!r} names unknown channel {c!r} "
                                      f"(have: {', '.join(sorted(channels)) or 'none'})",
                                      key=f"digests[{i}].channels")
        return self

    def channel(self, name: str) -> ChannelConfig:
        for c in self.channels:
            if c.name == name:
                return c
        raise ConfigError(f"no channel named {name!r} (have: {', '.join(c.name for c in self.channels) or 'none'})",
                          key="channels")

    def digest(self, name: str) -> DigestConfig:
        for d in self.digests:
            if d.name == name:
                return d
        raise ConfigError(f"no digest named {name!r} (have: {', '.join(d.name for d in self.digests) or 'none'})",
                          key="digests")

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
    except ConfigError as exc:  # a cross-section check that knows its key; add the file
        raise ConfigError(exc.detail, key=exc.key, path=path) from None
    except ValidationError as exc:
        err = exc.errors()[0]
        key = _loc(tuple(err["loc"]), data) or "(top level)"
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key (check its spelling against config.example.toml)"
        elif err["type"] == "missing":
            msg = "required key is missing"
        elif err["type"] == "literal_error":  # say which value is wrong, not only what is allowed
            msg = f"{err['input']!r} is not allowed: {msg[:1].lower()}{msg[1:]}"
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

"""`trackpulse channels test`, configuration errors of channels and rules, and secrets.

Secrets (webhook URLs carrying tokens, signing secrets, SMTP passwords) must appear neither in
logs, nor in `alerts history`, nor anywhere in the store, whatever the services answered.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from trackpulse.connectors.jira import open_connector

from trackpulse.alerts import evaluate_and_dispatch
from trackpulse.config import parse_config
from trackpulse.delivery.history import history_rows
from trackpulse.errors import ConfigError
from trackpulse.simulator.chat_receivers import ChatReceivers
from trackpulse.simulator.jira_app import create_jira_app
from trackpulse.simulator.jira_world import JiraWorld
from trackpulse.simulator.runner import serve_in_thread
from trackpulse.simulator.smtp import SmtpReceiver
from trackpulse.store.db import open_store
from trackpulse.sync_api import NoProgress

SMTP_PASSWORD = "smtp-password-Xq7!"


@pytest.fixture
def receivers() -> Iterator[tuple[ChatReceivers, dict[str, str]]]:
    rec = ChatReceivers()
    with serve_in_thread(rec.app()) as base:
        yield rec, rec.urls(base)


def cli(tmp: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("TRACKPULSE_", "JIRA_", "TRELLO_"))}
    return subprocess.run([sys.executable, "-m", "trackpulse", "--config", "tp.toml", *args], cwd=tmp,
                          env={**clean, **(env or {})}, capture_output=True, text=True, timeout=60, check=False)


def test_channels_test_sends_one_message_and_a_refusal_exits_1_with_the_services_answer(
        tmp_path: Path, receivers: tuple[ChatReceivers, dict[str, str]]) -> None:
    rec, urls = receivers
    (tmp_path / "tp.toml").write_text("""
[[channels]]
name = "team-dingtalk"
kind = "dingtalk"
url = "${DINGTALK_URL}"
secret = "${DINGTALK_SECRET}"
language = "zh"
""", encoding="utf-8")
    env = {"DINGTALK_URL": urls["dingtalk"], "DINGTALK_SECRET": rec.dingtalk_secret}
    ok = cli(tmp_path, "channels", "test", "team-dingtalk", env=env)
    assert ok.returncode == 0, ok.stderr
    assert rec.count("dingtalk") == 1 and "trackpulse" in json.dumps(rec.received["dingtalk"][0], ensure_ascii=False)

    rec.mode("dingtalk", "refuse")
    refused = cli(tmp_path, "channels", "test", "team-dingtalk", env=env)
    assert refused.returncode == 1
    assert "team-dingtalk" in refused.stderr and "300005" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    for secret in (rec.token, rec.dingtalk_secret):
        assert secret not in refused.stderr + refused.stdout

    unknown = cli(tmp_path, "channels", "test", "nope", env=env)
    assert unknown.returncode == 2 and "nope" in unknown.stderr


@pytest.mark.parametrize("config, names", [
    ({"channels": [], "alerts": {"rules": [{"name": "late", "when": "sla_breached", "channels": ["ghost"]}]}},
     ("late", "ghost", "channels")),
    ({"channels": [{"name": "team", "kind": "slack"}]}, ("team", "url")),
    ({"channels": [{"name": "team", "kind": "dingtalk", "url": "${NOT_SET_ANYWHERE}"}]},
     ("NOT_SET_ANYWHERE", "url")),
])
def test_a_bad_channel_or_rule_is_a_configuration_error_naming_it_and_the_key(config: dict[str, Any],
                                                                               names: tuple[str, ...]) -> None:
    os.environ.pop("NOT_SET_ANYWHERE", None)
    with pytest.raises(ConfigError) as caught:
        parse_config(config)
    text = caught.value.one_line()
    for name in names:
        assert name in text, text


def test_secrets_never_reach_logs_history_or_the_store(
        tmp_path: Path, receivers: tuple[ChatReceivers, dict[str, str]], caplog: pytest.LogCaptureFixture) -> None:
    rec, urls = receivers
    world = JiraWorld.generate(seed=5, projects=1, issues_per_project=10, closed_sprints=2)
    with serve_in_thread(create_jira_app(world, profile="cloud", email="sim@example.com", token="sim-token")) as url, \
            SmtpReceiver() as smtp:
        cfg = parse_config({
            "store": {"url": f"sqlite:///{tmp_path}/tp.db"},
            "sources": [{"name": "acme", "kind": "jira", "url": url, "email": "sim@example.com",
                         "token": "sim-token", "projects": ["ABC"]}],
            "sla": {"policies": [{"name": "p1", "resolution_hours": 1}]},
            "channels": [
                {"name": "ding", "kind": "dingtalk", "url": urls["dingtalk"], "secret": rec.dingtalk_secret},
                {"name": "lark", "kind": "feishu", "url": urls["feishu"], "secret": "a-wrong-feishu-secret"},
                {"name": "hook", "kind": "webhook", "url": urls["webhook"], "secret": rec.webhook_secret},
                {"name": "slack", "kind": "slack", "url": urls["slack"]},
                {"name": "wecom", "kind": "wecom", "url": urls["wecom"]},
                {"name": "mail", "kind": "email", "smtp_host": smtp.host, "smtp_port": smtp.port,
                 "smtp_security": "none", "username": "pmo", "password": SMTP_PASSWORD,
                 "sender": "tp@example.com", "to": ["pmo@example.com"]},
            ],
            "alerts": {"rules": [{"name": "late", "when": "sla_breached", "clocks": ["resolution"],
                                  "channels": ["ding", "lark", "hook", "slack", "wecom", "mail"],
                                  "post_back": ["comment"]}]},
        })
        rec.mode("slack", "refuse")  # answers carry the service's words: they must be redacted
        rec.mode("wecom", "refuse")
        store = open_store(cfg.store.url)
        try:
            open_connector(cfg.sources[0]).sync(store, full=True, progress=NoProgress())
            caplog.set_level(logging.DEBUG)
            with httpx.Client() as http:
                result = evaluate_and_dispatch(cfg, store, as_of=world.now, http=http)
            assert result.dispatch is not None and result.dispatch.sent and result.dispatch.failed
            history = json.dumps(history_rows(store, 1000), ensure_ascii=False)
            dump = []
            with store.engine.connect() as conn:
                meta = sa.MetaData()
                meta.reflect(conn)
                for table in meta.tables.values():
                    dump.extend(str(row) for row in conn.execute(sa.select(table)))
        finally:
            store.dispose()
    assert "failed" in history and rec.count("dingtalk") >= 1
    secrets = [rec.token, rec.dingtalk_secret, rec.webhook_secret, rec.feishu_secret, "a-wrong-feishu-secret",
               SMTP_PASSWORD, "sim-token"]
    store_text = "\n".join(dump)
    for secret in secrets:
        assert secret not in caplog.text, secret
        assert secret not in history, secret
        assert secret not in store_text, secret

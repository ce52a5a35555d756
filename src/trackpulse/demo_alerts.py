"""The alerts step of `trackpulse demo`: local chat and mail receivers, channels and rules in the
demo's configuration, then one `trackpulse alerts` run whose messages land in the receivers and
whose comments land in the tracker simulators.

The receivers (`trackpulse.simulator.chat_receivers`, `trackpulse.simulator.smtp`) check each
request as the real services do, so what the demo shows going out would be accepted by them.
"""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rich.console import Console
from rich.table import Table

from trackpulse.config import AppConfig
from trackpulse.store.db import Store

SECRET_NAMES = ("DINGTALK_URL", "DINGTALK_SECRET", "SLACK_URL", "WEBHOOK_URL", "WEBHOOK_SECRET")


@dataclass
class AlertReceivers:
    chat: Any  # ChatReceivers
    smtp: Any  # SmtpReceiver
    urls: dict[str, str]


def start_receivers(stack: ExitStack) -> AlertReceivers:
    from trackpulse.simulator.chat_receivers import ChatReceivers
    from trackpulse.simulator.runner import serve_in_thread
    from trackpulse.simulator.smtp import SmtpReceiver

    chat = ChatReceivers()
    base = stack.enter_context(serve_in_thread(chat.app()))
    smtp = stack.enter_context(SmtpReceiver())
    return AlertReceivers(chat, smtp, chat.urls(base))


def secrets_of(rec: AlertReceivers) -> dict[str, str]:
    """The channel URLs and signing secrets, for the demo's secrets file (never the config file)."""
    return {"TRACKPULSE_DEMO_DINGTALK_URL": rec.urls["dingtalk"],
            "TRACKPULSE_DEMO_DINGTALK_SECRET": rec.chat.dingtalk_secret,
            "TRACKPULSE_DEMO_SLACK_URL": rec.urls["slack"],
            "TRACKPULSE_DEMO_WEBHOOK_URL": rec.urls["webhook"],
            "TRACKPULSE_DEMO_WEBHOOK_SECRET": rec.chat.webhook_secret}


def config_of(rec: AlertReceivers) -> dict[str, Any]:
    """`[[channels]]` and `[alerts]` of the demo: urgent Trello and Jira Cloud breaches go to a
    Chinese DingTalk group, a Slack channel, a signed webhook and the PMO's mailbox, and are
    commented on and labelled on the item itself."""
    return {
        "channels": [
            {"name": "team-dingtalk", "kind": "dingtalk", "url": "${TRACKPULSE_DEMO_DINGTALK_URL}",
             "secret": "${TRACKPULSE_DEMO_DINGTALK_SECRET}", "language": "zh"},
            {"name": "team-slack", "kind": "slack", "url": "${TRACKPULSE_DEMO_SLACK_URL}"},
            {"name": "ops-webhook", "kind": "webhook", "url": "${TRACKPULSE_DEMO_WEBHOOK_URL}",
             "secret": "${TRACKPULSE_DEMO_WEBHOOK_SECRET}"},
            {"name": "pmo-mail", "kind": "email", "smtp_host": rec.smtp.host, "smtp_port": rec.smtp.port,
             "smtp_security": "none", "sender": "trackpulse@example.com", "to": ["pmo@example.com"],
             "language": "zh"},
        ],
        "alerts": {"language": "en", "rules": [
            {"name": "urgent-breach", "when": "sla_breached", "policies": ["urgent"], "clocks": ["resolution"],
             "sources": ["trello", "jira-cloud"], "projects": [],
             "channels": ["team-dingtalk", "team-slack", "ops-webhook", "pmo-mail"],
             "post_back": ["comment", "label"], "label": "sla-breached"},
        ]},
    }


def _comments(world: Any) -> int:
    if hasattr(world, "issues"):  # Jira
        return sum(sum("trackpulse alert id" in c.body for c in i.live_comments) for i in world.issues.values())
    return sum(1 for b in world.boards.values() for a in b.actions
               if a.get("type") == "commentCard" and "trackpulse alert id" in str(a["data"].get("text", "")))


def run_alerts(cfg: AppConfig, store: Store, rec: AlertReceivers, worlds: dict[str, Any], as_of: datetime,
               console: Console) -> dict[str, int]:
    """Evaluate and deliver once, then show what each receiver and tracker got."""
    from trackpulse.alerts import evaluate_and_dispatch

    before = {name: _comments(w) for name, w in worlds.items()}
    result = evaluate_and_dispatch(cfg, store, as_of=as_of)
    again = evaluate_and_dispatch(cfg, store, as_of=as_of)
    table = Table(title=f"alerts as of {as_of:%Y-%m-%d %H:%M} UTC: {len(result.opened)} opened, "
                        f"then {len(again.opened)} on a second run")
    table.add_column("where")
    table.add_column("received", justify="right")
    got: dict[str, int] = {}
    for kind in ("dingtalk", "slack", "webhook"):
        got[kind] = rec.chat.count(kind)
        table.add_row(f"{kind} receiver (checks requests as {kind} does): messages", str(got[kind]))
    got["email"] = len(rec.smtp.received)
    table.add_row("SMTP receiver: e-mails", str(got["email"]))
    for name, world in worlds.items():
        got[name] = _comments(world) - before[name]
        table.add_row(f"{name} simulator: comments with a trackpulse marker", str(got[name]))
    console.print(table)
    d = result.dispatch
    if d is not None:
        console.print(f"  deliveries: {d.sent} sent in {d.messages} messages and calls, {d.deferred} deferred "
                      f"by the channels' pacing, {d.failed} failed; see `trackpulse alerts history`")
    return got

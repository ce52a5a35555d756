"""What every request handler of the server shares: configuration, store, queue, telemetry."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from trackpulse.config import AppConfig
from trackpulse.server.telemetry import Telemetry
from trackpulse.server.webhook_queue import WebhookQueue
from trackpulse.store.db import Store


@dataclass
class ServerState:
    cfg: AppConfig
    store: Store
    telemetry: Telemetry
    webhooks: WebhookQueue
    runner: Any = None  # trackpulse.jobs.runner.Runner when `serve` runs the schedule
    evaluator: Any = None  # trackpulse.server.evaluator.ProcessEvaluator when it runs the alert rules

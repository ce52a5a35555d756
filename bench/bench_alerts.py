"""Alerts at scale: 10,000 open SLA breaches across 3 sources, to 4 paced chat channels.

Prints the time to evaluate the rules and open the episodes (ledger + outbox rows), the time to
deliver everything through the channels' pacing (DingTalk and WeCom 20 messages a minute; the
dispatcher defers, a simulated clock jumps to the next due instant), the simulated minutes the
pacing takes, and a second evaluation with nothing new.

    python bench/bench_alerts.py [--breaches 10000] [--store sqlite:///path.db]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from trackpulse.alerts.ledger import record
from trackpulse.alerts.rules import Figures, evaluate
from trackpulse.config import AppConfig
from trackpulse.delivery.dispatcher import Dispatcher
from trackpulse.simulator.chat_receivers import ChatReceivers
from trackpulse.simulator.runner import serve_in_thread
from trackpulse.store.db import open_store

T0 = datetime(2026, 11, 20, 6, 0, tzinfo=UTC)
SOURCES = ("jira-cloud", "jira-dc", "trello")
KINDS = ("dingtalk", "wecom", "slack", "webhook")


def report(n: int) -> dict[str, Any]:
    rows = []
    for i in range(n):
        source = SOURCES[i % 3]
        item = f"{i:024x}" if source == "trello" else f"P{i % 7}-{i}"
        rows.append({"source": source, "project": f"P{i % 7}", "item": item,
                     "item_url": f"https://example.invalid/browse/{item}", "policy": "P1", "clock": "resolution",
                     "target_hours": 8.0, "elapsed_hours": 9.0 + i % 50, "status": "breached",
                     "breached_at": (T0 - timedelta(minutes=i)).strftime("%Y-%m-%dT%H:%M:%SZ")})
    return {"sla": rows, "projects": []}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--breaches", type=int, default=10_000)
    parser.add_argument("--store", default=None, help="store URL (default: a fresh SQLite file)")
    args = parser.parse_args()
    url = args.store or f"sqlite:///{Path(tempfile.mkdtemp()) / 'bench.db'}"
    store = open_store(url)
    sim_now = [T0]
    rec = ChatReceivers(clock=lambda: sim_now[0].timestamp())
    with serve_in_thread(rec.app()) as base:
        urls = rec.urls(base)
        cfg = AppConfig.model_validate({
            "channels": [{"name": k, "kind": k, "url": urls[k],
                          **({"secret": rec.dingtalk_secret} if k == "dingtalk" else {}),
                          **({"secret": rec.webhook_secret} if k == "webhook" else {})} for k in KINDS],
            "alerts": {"rules": [{"name": "breach", "when": "sla_breached", "channels": list(KINDS)}]}})
        figures = Figures(as_of=T0, report=report(args.breaches))

        t = time.perf_counter()
        conds = evaluate(cfg.alerts.rules, figures)
        t_rules = time.perf_counter() - t
        t = time.perf_counter()
        with store.session() as s:
            opened = record(s, cfg, cfg.alerts.rules, conds, T0).opened
            s.commit()
        t_ledger = time.perf_counter() - t

        # The webhook kind signs with the wall clock's timestamp and the receiver checks it against
        # its (simulated) clock: keep the simulated clock near the wall clock's.
        sim_now[0] = datetime.now(UTC)
        start_sim = sim_now[0]
        messages = sent = passes = 0
        t = time.perf_counter()
        with httpx.Client() as http:
            dispatcher = Dispatcher(cfg, store, http, clock=lambda: sim_now[0])
            while True:
                result = dispatcher.run_once()
                passes += 1
                messages += result.messages
                sent += result.sent
                if result.next_due is None:
                    break
                sim_now[0] = max(sim_now[0], result.next_due)
            dispatcher.close()
        t_deliver = time.perf_counter() - t
        simulated = (sim_now[0] - start_sim).total_seconds() / 60

        t = time.perf_counter()
        again = evaluate(cfg.alerts.rules, figures)
        with store.session() as s:
            reopened = record(s, cfg, cfg.alerts.rules, again, T0).opened
            s.commit()
        t_again = time.perf_counter() - t
    store.dispose()

    received = {k: sum(len(m.get("alerts", [])) if k == "webhook" else 1 for m in rec.received[k]) for k in KINDS}
    print(f"store {url.split(':')[0]}, {args.breaches} breaches x {len(KINDS)} channels")
    print(f"evaluate rules        {t_rules:8.2f} s  ({len(conds)} conditions)")
    print(f"open episodes+outbox  {t_ledger:8.2f} s  ({len(opened)} alerts, {len(opened) * len(KINDS)} deliveries)")
    print(f"deliver (wall)        {t_deliver:8.2f} s  ({sent} deliveries in {messages} messages, {passes} passes)")
    print(f"deliver (simulated)   {simulated:8.1f} min of channel pacing")
    for k in KINDS:
        print(f"  {k:<9} {len(rec.received[k]):5d} messages  (webhook alerts carried: {received[k]})"
              if k == "webhook" else f"  {k:<9} {len(rec.received[k]):5d} messages")
    print(f"second evaluation     {t_again:8.2f} s  ({len(reopened)} new alerts)")


if __name__ == "__main__":
    main()

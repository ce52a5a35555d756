"""A real SMTP server on loopback (aiosmtpd) that keeps what it receives: the mail receiver of
`trackpulse demo` and of the e-mail tests. It binds 127.0.0.1 explicitly (aiosmtpd's default
hostname lookup can pick an address the machine does not route) and an ephemeral port unless
told otherwise.

`refuse_with` makes it answer every DATA with that SMTP reply (for example "550 5.7.1 relay
denied" or "451 4.3.0 try later"), so tests see the permanent and transient paths."""

from __future__ import annotations

import email
import email.policy
import socket
import threading
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any, Self

from aiosmtpd.controller import Controller


@dataclass(frozen=True)
class ReceivedMail:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    raw: bytes

    @property
    def message(self) -> EmailMessage:
        parsed = email.message_from_bytes(self.raw, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


@dataclass
class _Handler:
    received: list[ReceivedMail] = field(default_factory=list)
    refuse_with: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.refuse_with:
            return self.refuse_with
        content = envelope.original_content or envelope.content
        raw = content if isinstance(content, bytes) else str(content).encode("utf-8")
        with self.lock:
            self.received.append(ReceivedMail(envelope.mail_from, tuple(envelope.rcpt_tos), raw))
        return "250 2.0.0 OK: queued"


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class SmtpReceiver:
    """`with SmtpReceiver() as smtp:` ... `smtp.port`, `smtp.received`, `smtp.messages()`."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port or _free_port(host)
        self._handler = _Handler()
        self._controller = Controller(self._handler, hostname=host, port=self.port,
                                      decode_data=False, enable_SMTPUTF8=True)

    @property
    def received(self) -> list[ReceivedMail]:
        with self._handler.lock:
            return list(self._handler.received)

    def messages(self) -> list[EmailMessage]:
        return [mail.message for mail in self.received]

    def refuse(self, reply: str | None) -> None:
        """Answer every following DATA with `reply` (None: accept again)."""
        self._handler.refuse_with = reply

    def start(self) -> Self:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

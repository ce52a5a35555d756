"""Keeping channel secrets out of answers and logs.

An incoming-webhook URL is a credential (its token, key or `sig=` parameter), and so are signing
secrets and SMTP passwords. A `Redactor` knows one channel's secrets and replaces them (and their
URL-encoded forms) in any text: the service's answer that goes to `alerts history`, an exception
message. httpx logs every request URL at INFO on the "httpx" logger; `Redactor.guard_logs()`
installs one filter there that scrubs every secret any open channel registered.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from urllib.parse import parse_qsl, quote, quote_plus, urlsplit

MASK = "***"
_MIN_SECRET = 6  # shorter query values (api-version=1, sv=1.0) are not credentials


def url_secrets(url: str) -> list[str]:
    """The parts of an incoming-webhook URL that grant access: the whole URL, every query value
    and every long path segment (Slack's token, Feishu's hook id, a Workflows id)."""
    parts = urlsplit(url)
    found = [url]
    found += [v for _, v in parse_qsl(parts.query) if len(v) >= _MIN_SECRET]
    found += [seg for seg in parts.path.split("/") if len(seg) >= 8]
    return found


class Redactor:
    """Replaces known secrets with `***` in text."""

    def __init__(self, secrets: Iterable[str | None]) -> None:
        forms: set[str] = set()
        for s in secrets:
            if s and len(s) >= 4:
                forms.update({s, quote(s, safe=""), quote_plus(s)})
        # Longest first: the whole URL goes before the token inside it.
        self._forms = sorted(forms, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for form in self._forms:
            if form in text:
                text = text.replace(form, MASK)
        return text

    def guard_logs(self) -> None:
        """Scrub this redactor's secrets from httpx's request log lines too."""
        _HTTPX_FILTER.add(self)


class _LogScrubber(logging.Filter):
    def __init__(self) -> None:
        super().__init__()
        self._redactors: list[Redactor] = []
        self._lock = threading.Lock()
        self._installed = False

    def add(self, redactor: Redactor) -> None:
        with self._lock:
            self._redactors.append(redactor)
            if len(self._redactors) > 256:  # channels opened and closed in a long run: keep the newest
                del self._redactors[:128]
            if not self._installed:
                logging.getLogger("httpx").addFilter(self)
                self._installed = True

    def filter(self, record: logging.LogRecord) -> bool:
        with self._lock:
            redactors = list(self._redactors)
        text = record.getMessage()
        clean = text
        for r in redactors:
            clean = r(clean)
        if clean != text:
            record.msg, record.args = clean, ()
        return True


_HTTPX_FILTER = _LogScrubber()

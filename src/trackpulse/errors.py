"""The exception hierarchy every layer raises and the CLI and server translate.

Callers catch these types, never match on message strings. Each message names what
failed and where (source name, config key, URL) so the CLI can print it as one line.
"""

from __future__ import annotations


class TrackpulseError(Exception):
    """Base of every error trackpulse raises on purpose."""

    exit_code = 1

    def one_line(self) -> str:
        return " ".join(str(self).split())


class ConfigError(TrackpulseError):
    """The configuration file is missing, unreadable or invalid."""

    exit_code = 2

    def __init__(self, message: str, *, key: str | None = None, path: str | None = None) -> None:
        where = []
        if path:
            where.append(path)
        if key:
            where.append(f"key {key}")
        prefix = f"config error ({', '.join(where)}): " if where else "config error: "
        super().__init__(prefix + message)
        self.detail = message
        self.key = key
        self.path = path


class SourceError(TrackpulseError):
    """A tracker could not be used: unreachable, refused credentials, answered nonsense."""

    def __init__(self, source: str, message: str, *, url: str | None = None) -> None:
        where = f"source {source}" + (f" at {url}" if url else "")
        super().__init__(f"{where}: {message}")
        self.source = source
        self.url = url


class AuthError(SourceError):
    """The tracker refused our credentials (401/403)."""


class UnreachableError(SourceError):
    """The tracker could not be reached at all (DNS, refused connection, timeouts)."""


class RequestFailed(SourceError):
    """A request failed after the retries we allow (5xx storm, unexpected 4xx)."""

    def __init__(self, source: str, message: str, *, url: str | None = None, status: int | None = None) -> None:
        super().__init__(source, message, url=url)
        self.status = status


class StoreError(TrackpulseError):
    """The store could not be opened, migrated or written."""


class WebhookRejected(TrackpulseError):
    """A webhook delivery was refused; `status` is the HTTP status to answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status

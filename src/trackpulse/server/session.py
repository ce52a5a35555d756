"""Browser sessions for the dashboard: a signed, expiring cookie issued by the login form.

The cookie carries `<expiry>.<nonce>.<HMAC-SHA256>` and never the token: the HMAC key is
derived from `server.token`, so changing the token ends every session, and a stolen cookie
does not reveal the token. Logout adds the nonce to an in-memory revocation set (cookies
expire anyway after `SESSION_SECONDS`).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time

COOKIE = "tp_session"
SESSION_SECONDS = 12 * 3600


class Sessions:
    """Issues and checks session cookies for one configured token."""

    def __init__(self) -> None:
        self._revoked: dict[str, float] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _key(token: str) -> bytes:
        return hashlib.sha256(b"trackpulse-session\x00" + token.encode("utf-8")).digest()

    def issue(self, token: str, now: float | None = None) -> str:
        expiry = int((now or time.time()) + SESSION_SECONDS)
        body = f"{expiry}.{secrets.token_urlsafe(18)}"
        mac = hmac.new(self._key(token), body.encode("ascii"), hashlib.sha256).hexdigest()
        return f"{body}.{mac}"

    def valid(self, token: str, cookie: str | None, now: float | None = None) -> bool:
        if not cookie or cookie.count(".") != 2:
            return False
        expiry, nonce, mac = cookie.split(".")
        expected = hmac.new(self._key(token), f"{expiry}.{nonce}".encode("ascii", "replace"),
                            hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, mac):
            return False
        with self._lock:
            if nonce in self._revoked:
                return False
        return expiry.isdigit() and int(expiry) > (now or time.time())

    def revoke(self, cookie: str | None) -> None:
        if cookie and cookie.count(".") == 2:
            now = time.time()
            with self._lock:
                self._revoked = {n: e for n, e in self._revoked.items() if e > now}
                self._revoked[cookie.split(".")[1]] = now + SESSION_SECONDS

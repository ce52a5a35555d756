"""Bearer-token access to the API, the dashboard and /metrics.

Without `server.token` configured these endpoints answer 503 rather than being open:
a store of delivery data should never be served to anyone who finds the port.
Webhooks do not use this token; they are verified by their signatures.
"""

from __future__ import annotations

import hmac

from fastapi import HTTPException, Request


def _configured_token(request: Request) -> str:
    token = request.app.state.tp.cfg.server.token
    if token is None or not token.get_secret_value():
        raise HTTPException(status_code=503, detail="set server.token in the configuration to use this endpoint")
    value: str = token.get_secret_value()
    return value


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def _check(expected: str, given: str | None) -> None:
    if given is None or not hmac.compare_digest(expected.encode("utf-8"), given.encode("utf-8")):
        raise HTTPException(status_code=401, detail="missing or wrong bearer token",
                            headers={"WWW-Authenticate": "Bearer"})


def require_token(request: Request) -> None:
    """API and /metrics: `Authorization: Bearer <server.token>`."""
    _check(_configured_token(request), _bearer(request))


def require_token_or_query(request: Request) -> None:
    """Dashboard: the header, or `?token=` so a browser can open it from a link."""
    expected = _configured_token(request)
    _check(expected, _bearer(request) or request.query_params.get("token"))

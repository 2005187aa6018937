"""The one place that sends DSP requests to peers, and the errors it turns transport outcomes into.

    PeerError
    ├── PeerUnavailableError   transport failure, 5xx, 408, 409, 425 or 429: worth retrying
    └── PeerRejectedError      any other 4xx: the peer refused the message; retrying cannot help

Workers never see httpx types.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx


class PeerError(Exception):
    def __init__(self, url: str, reason: str, status: int | None = None) -> None:
        self.url = url
        self.status = status
        self.reason = reason
        super().__init__(f"{url}: {reason}")


class PeerUnavailableError(PeerError):
    pass


class PeerRejectedError(PeerError):
    pass


@dataclass(frozen=True, slots=True)
class PeerResponse:
    status: int
    body: dict[str, Any] | None
    headers: httpx.Headers


# 409: Eclipse EDC answers a message that arrives before it has recorded our previous acknowledgement (a start
# right after it sent the request, while it is still REQUESTING) with 409 Conflict; a moment later it is accepted.
# A conflict that persists still fails, after the outbox's last attempt.
_RETRYABLE = {408, 409, 425, 429}
DEFAULT_TIMEOUT = httpx.Timeout(15.0, connect=5.0)
USER_AGENT = "sovra"


class DspClient:
    """Sends straight through an httpx transport rather than an `httpx.Client`: a DSP request needs none of the
    client's layers (cookies, auth flows, redirects, which we never follow, URL merging), and on a connector under
    load they were about a third of each send's CPU, most of it the cookie jar parsing every answer."""

    def __init__(self, transport: httpx.BaseTransport, authorization: Callable[[str], str], *,
                 timeout: httpx.Timeout = DEFAULT_TIMEOUT) -> None:
        """`authorization(audience)` returns the Authorization header for a peer's participant id."""
        self._transport = transport
        self._authorization = authorization
        self._timeout = timeout.as_dict()

    def post(self, url: str, body: dict[str, Any], *, audience: str) -> PeerResponse:
        content = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        return self._send("POST", url, audience=audience, content=content)

    def get(self, url: str, *, audience: str, params: dict[str, str] | None = None) -> PeerResponse:
        return self._send("GET", url, audience=audience, params=params)

    def _send(self, method: str, url: str, *, audience: str, content: bytes | None = None,
              params: dict[str, str] | None = None) -> PeerResponse:
        headers = {"Authorization": self._authorization(audience), "Accept": "application/json",
                   "User-Agent": USER_AGENT}
        if content is not None:
            headers["Content-Type"] = "application/json"
        try:
            request = httpx.Request(method, url, params=params, headers=headers, content=content,
                                    extensions={"timeout": self._timeout})
            response = self._transport.handle_request(request)
            try:
                response.read()
            finally:
                response.close()
        except httpx.HTTPError as exc:
            raise PeerUnavailableError(url, f"{type(exc).__name__}: {exc}") from exc
        body: dict[str, Any] | None = None
        if response.content:
            try:
                parsed = response.json()
                body = parsed if isinstance(parsed, dict) else None
            except ValueError:
                body = None
        if response.status_code >= 500 or response.status_code in _RETRYABLE:
            raise PeerUnavailableError(url, _reason(response, body), response.status_code)
        if response.status_code >= 400:
            raise PeerRejectedError(url, _reason(response, body), response.status_code)
        return PeerResponse(response.status_code, body, response.headers)


def _reason(response: httpx.Response, body: dict[str, Any] | None) -> str:
    detail = ""
    if body:
        reason = body.get("reason")
        detail = "; ".join(map(str, reason)) if isinstance(reason, list) else str(reason or body.get("detail", ""))
    return f"HTTP {response.status_code}" + (f": {detail[:300]}" if detail else "")

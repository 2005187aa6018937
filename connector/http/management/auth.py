"""The management API's credentials: the `X-Api-Key` header, or the console's session cookie.

The key is compared in constant time with --api-key. The console's pages call this same API from the browser with
their session cookie (see `connector.http.console.sessions`); a cookie request that would change something must
also carry the session's CSRF token in `X-CSRF-Token`, or it is refused with 403 before the route runs.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable

from fastapi import Request, Security
from fastapi.security import APIKeyHeader

from connector.http.console.sessions import COOKIE_NAME, CSRF_HEADER, UNSAFE_METHODS, SessionStore
from connector.http.management.errors import ManagementRequestError

API_KEY_HEADER = "X-Api-Key"
_scheme = APIKeyHeader(name=API_KEY_HEADER, auto_error=False,
                       description="The management API key the connector was started with (--api-key)")


def api_key_guard(api_key: str, sessions: SessionStore | None = None) -> Callable[..., Awaitable[None]]:
    """A dependency that refuses a request without exactly `api_key` or a live console session (401, EDC shape)."""
    expected = api_key.encode("utf-8")

    async def check_credentials(request: Request, presented: str | None = Security(_scheme)) -> None:
        # async although it never awaits: it only compares bytes and reads an in-memory store, and a plain def
        # would cost every management request a hop to the thread pool
        if presented is not None:
            if not hmac.compare_digest(presented.encode("utf-8"), expected):
                raise ManagementRequestError(401, "unauthorized", f"the {API_KEY_HEADER} header is wrong; "
                                                                  "send the management API key")
            return
        cookie = request.cookies.get(COOKIE_NAME)
        if sessions is None or cookie is None:
            raise ManagementRequestError(401, "unauthorized", f"the {API_KEY_HEADER} header is missing or wrong; "
                                                              "send the management API key")
        session = sessions.lookup(cookie)
        if session is None:
            raise ManagementRequestError(401, "unauthorized", "the console session has ended (signed out, expired "
                                                              "or the connector restarted); sign in again")
        if request.method in UNSAFE_METHODS and not session.csrf_matches(request.headers.get(CSRF_HEADER)):
            raise ManagementRequestError(403, "forbidden", f"the {CSRF_HEADER} header is missing or does not match "
                                                           "the console session; reload the console")

    return check_credentials

"""The management API's one credential: the `X-Api-Key` header, compared in constant time with --api-key."""

from __future__ import annotations

import hmac
from collections.abc import Callable

from fastapi import Security
from fastapi.security import APIKeyHeader

from connector.http.management.errors import ManagementRequestError

API_KEY_HEADER = "X-Api-Key"
_scheme = APIKeyHeader(name=API_KEY_HEADER, auto_error=False,
                       description="The management API key the connector was started with (--api-key)")


def api_key_guard(api_key: str) -> Callable[[str | None], None]:
    """A dependency that refuses any request without exactly `api_key` (401, EDC error shape)."""
    expected = api_key.encode("utf-8")

    def check_api_key(presented: str | None = Security(_scheme)) -> None:
        if presented is None or not hmac.compare_digest(presented.encode("utf-8"), expected):
            raise ManagementRequestError(401, "unauthorized", f"the {API_KEY_HEADER} header is missing or wrong; "
                                                              "send the management API key")

    return check_api_key

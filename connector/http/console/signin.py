"""How an operator proves who she is to the console. The one way today is the management API key.

`SignIn` is the seam: an OIDC sign-in would be a second implementation (a redirect and a callback instead of a
form field) that ends the same way, with a `Principal` for `SessionStore.open`.
"""

from __future__ import annotations

import hmac
from typing import Protocol

from connector.http.console.sessions import Principal


class SignInError(Exception):
    """The credentials were refused; the message says what to do."""


class SignIn(Protocol):
    method: str

    def authenticate(self, credentials: dict[str, str]) -> Principal: ...


class ApiKeySignIn:
    """Sign in with the key the connector was started with (--api-key), compared in constant time."""

    method = "api-key"

    def __init__(self, api_key: str) -> None:
        self._expected = api_key.encode("utf-8")

    def authenticate(self, credentials: dict[str, str]) -> Principal:
        presented = credentials.get("apiKey", "")
        if not presented:
            raise SignInError("enter the management API key (the --api-key the connector was started with)")
        if not hmac.compare_digest(presented.encode("utf-8"), self._expected):
            raise SignInError("that is not this connector's management API key; check --api-key / SOVRA_API_KEY")
        return Principal(subject="operator", method=self.method)

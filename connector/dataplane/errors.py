"""Errors raised by the data plane, each carrying the fields a caller needs to react.

The tree, with the HTTP status the public API answers for each (see ``public_api.py``)::

    DataPlaneError
    ├── AccessDeniedError          token missing, malformed, forged, expired, or not ours   401
    ├── DataAddressError           a source or destination address is unusable               500, push
    ├── AllowListError             an allow-list entry in the configuration is unusable      startup
    ├── SourceRefusedError         the policy forbids this file or URL                       403
    ├── SourceNotFoundError        no file at that path or sub-path                          404
    ├── RangeNotSatisfiableError   the Range header selects no byte of the body              416
    ├── UpstreamError              the HttpData upstream failed or answered an error         502
    └── PushFailedError            the consumer's destination refused or failed a push

Messages never contain tokens, keys, or query strings (which often carry API keys): URLs are shown by
``display_url`` in ``egress.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum


class DataPlaneError(Exception):
    """Base class of every error the data plane raises on purpose."""


class DenialReason(StrEnum):
    """Why an access token was rejected; the value goes into the 401 body as ``reason``."""

    MISSING = "missing"
    MALFORMED = "malformed"
    UNSUPPORTED_ALGORITHM = "unsupported_algorithm"
    BAD_SIGNATURE = "bad_signature"
    WRONG_ISSUER = "wrong_issuer"
    WRONG_SCOPE = "wrong_scope"
    EXPIRED = "expired"


_DENIAL_HINTS = {
    DenialReason.MISSING: "send the token from the DataAddress in the Authorization header",
    DenialReason.MALFORMED: "send the token exactly as the DataAddress gave it",
    DenialReason.UNSUPPORTED_ALGORITHM: "send a token this connector issued",
    DenialReason.BAD_SIGNATURE: "send the token exactly as the DataAddress gave it",
    DenialReason.WRONG_ISSUER: "send the token to the connector that issued it",
    DenialReason.WRONG_SCOPE: "use a token issued for pulling data",
    DenialReason.EXPIRED: "ask the provider to restart the transfer for a fresh token",
}


class AccessDeniedError(DataPlaneError):
    """The bearer of a request may not pull data; ``reason`` says which check failed."""

    def __init__(self, reason: DenialReason) -> None:
        super().__init__(f"access token rejected ({reason}): {_DENIAL_HINTS[reason]}")
        self.reason = reason


class DataAddressError(DataPlaneError):
    """A data address lacks a field or holds a value the data plane cannot use."""

    def __init__(self, field: str, problem: str, supported: Sequence[str] = ()) -> None:
        hint = f"; supported values: {', '.join(supported)}" if supported else ""
        super().__init__(f"data address field {field!r} {problem}{hint}")
        self.field = field
        self.problem = problem
        self.supported = tuple(supported)


class AllowListError(DataPlaneError, ValueError):
    """An HTTP allow-list entry cannot be parsed, so the configuration must be fixed before starting."""

    def __init__(self, entry: str, problem: str) -> None:
        super().__init__(
            f"allow-list entry {entry!r} {problem}; use host, host:port, *.domain, * or an http(s) URL prefix"
        )
        self.entry = entry
        self.problem = problem


class SourceRefusedError(DataPlaneError):
    """The source policy forbids reaching ``target``; ``reason`` is a short code such as ``outside_root``."""

    def __init__(self, target: str, reason: str, detail: str) -> None:
        super().__init__(f"refused to read {target}: {detail}")
        self.target = target
        self.reason = reason


class SourceNotFoundError(DataPlaneError):
    """Nothing readable exists at ``target`` (a missing file, or a sub-path of a single-file asset)."""

    def __init__(self, target: str) -> None:
        super().__init__(f"no readable file at {target}; check the path or sub-path")
        self.target = target


class RangeNotSatisfiableError(DataPlaneError):
    """The requested byte range starts past the end of a body of ``size`` bytes (None when unknown)."""

    def __init__(self, size: int | None) -> None:
        shown = "unknown size" if size is None else f"{size} bytes"
        super().__init__(f"requested range selects no byte of the body ({shown}); ask for a range inside it")
        self.size = size


class UpstreamError(DataPlaneError):
    """The HttpData upstream could not be reached or answered with ``status``; the consumer sees 502."""

    def __init__(self, url: str, reason: str, status: int | None = None) -> None:
        shown = f"answered {status}" if status is not None else "failed"
        super().__init__(f"upstream {url} {shown}: {reason}")
        self.url = url
        self.reason = reason
        self.status = status


class PushFailedError(DataPlaneError):
    """Pushing to the consumer's destination failed; ``status`` is None when no response came back."""

    def __init__(self, url: str, reason: str, status: int | None = None) -> None:
        shown = f"answered {status}" if status is not None else "could not be reached"
        super().__init__(f"push destination {url} {shown}: {reason}")
        self.url = url
        self.reason = reason
        self.status = status

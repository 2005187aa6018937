"""Errors raised by the identity package.

Every error carries the values that identify what failed as fields. No message ever contains a token, a key or
a whole DID document, so these errors are safe to log and to map to an HTTP answer.

Tree::

    IdentityError
    ├── KeyFileError              our own signing key file is unusable (our fault)
    ├── InvalidKeyError           a JWK is not a public EC P-256 key
    ├── InvalidDidError           a string is not a usable did:web DID or URL
    ├── DidResolutionError        a DID document could not be fetched or is not valid (peer or transient)
    ├── UnknownKeyError           the token's kid does not name a key in the DID document
    └── TokenError                the presented token is not acceptable (peer's fault)
        ├── MissingTokenError
        ├── MalformedTokenError
        ├── UnsupportedAlgorithmError
        ├── InvalidSignatureError
        ├── InvalidCredentialsError
        ├── InvalidClaimError
        │   ├── AudienceMismatchError
        │   └── IssuerMismatchError
        ├── ExpiredTokenError
        ├── TokenNotYetValidError
        └── ReplayedTokenError
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path


class IdentityError(Exception):
    """Base class of every error raised by the identity package and the identity service."""


class KeyFileError(IdentityError):
    """The connector's signing key file cannot be read, parsed or is not an EC P-256 key."""

    def __init__(self, path: Path, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"signing key file {path} is unusable ({reason}); use an EC P-256 PKCS8 PEM key or "
                         "delete the file to have a new key created")


class InvalidKeyError(IdentityError):
    """A JWK cannot be used as an ES256 verification key."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"JWK is not a usable public EC P-256 key: {reason}")


class InvalidDidError(IdentityError):
    """A DID or connector URL does not follow the did:web rules this connector accepts."""

    def __init__(self, did: str, reason: str) -> None:
        self.did = did
        self.reason = reason
        super().__init__(f"invalid did:web identifier {did!r}: {reason}")


class DidResolutionError(IdentityError):
    """Fetching or checking a DID document failed; `status_code` is None for transport failures."""

    def __init__(self, did: str, url: str, reason: str, status_code: int | None = None) -> None:
        self.did = did
        self.url = url
        self.reason = reason
        self.status_code = status_code
        status = f" with HTTP {status_code}" if status_code is not None else ""
        super().__init__(f"cannot resolve {did} from {url}{status}: {reason}")


class UnknownKeyError(IdentityError):
    """The key id does not select exactly one usable verification method of the DID document."""

    def __init__(self, did: str, kid: str | None, reason: str) -> None:
        self.did = did
        self.kid = kid
        self.reason = reason
        super().__init__(f"no verification key {kid!r} in the DID document of {did}: {reason}")


class TokenError(IdentityError):
    """Base class for a token the peer presented that must be refused."""


class MissingTokenError(TokenError):
    """The request carried no Authorization header value."""

    def __init__(self) -> None:
        super().__init__("request has no Authorization header; send 'Authorization: Bearer <token>'")


class MalformedTokenError(TokenError):
    """The token is not a compact JWS with JSON header and claims, or the header is not a Bearer header."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"token is malformed: {reason}")


class UnsupportedAlgorithmError(TokenError):
    """The token's `alg` is not ES256 (this refuses `none` and every HMAC algorithm)."""

    def __init__(self, algorithm: object) -> None:
        self.algorithm = algorithm
        super().__init__(f"token algorithm {algorithm!r} is not accepted; sign with ES256")


class InvalidSignatureError(TokenError):
    """The token's signature does not verify with the key from the issuer's DID document."""

    def __init__(self, issuer: str, kid: str | None) -> None:
        self.issuer = issuer
        self.kid = kid
        super().__init__(f"token signature from {issuer} does not verify with key {kid!r}")


class InvalidCredentialsError(TokenError):
    """The Authorization value is well formed but is not one this connector accepts."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"credentials refused: {reason}")


class InvalidClaimError(TokenError):
    """A required claim is missing or has the wrong type or value."""

    def __init__(self, claim: str, reason: str) -> None:
        self.claim = claim
        self.reason = reason
        super().__init__(f"token claim {claim!r} is invalid: {reason}")


class AudienceMismatchError(InvalidClaimError):
    """The token is addressed to someone else."""

    def __init__(self, expected: str, actual: tuple[str, ...]) -> None:
        self.expected = expected
        self.actual = actual
        super().__init__("aud", f"expected {expected!r}, token names {list(actual)!r}")


class IssuerMismatchError(InvalidClaimError):
    """`iss` differs from `sub` or from the resolved DID document's id."""

    def __init__(self, issuer: str, other_name: str, other_value: object) -> None:
        self.issuer = issuer
        self.other_name = other_name
        self.other_value = other_value
        super().__init__("iss", f"issuer {issuer!r} differs from {other_name} {other_value!r}")


class ExpiredTokenError(TokenError):
    """The token's `exp` lies in the past, beyond the allowed clock leeway."""

    def __init__(self, issuer: str, expires_at: datetime, now: datetime) -> None:
        self.issuer = issuer
        self.expires_at = expires_at
        self.now = now
        super().__init__(f"token from {issuer} expired at {expires_at.isoformat()} (now {now.isoformat()})")


class TokenNotYetValidError(TokenError):
    """The token's `nbf` or `iat` lies in the future, beyond the allowed clock leeway."""

    def __init__(self, issuer: str, claim: str, valid_from: datetime, now: datetime) -> None:
        self.issuer = issuer
        self.claim = claim
        self.valid_from = valid_from
        self.now = now
        super().__init__(f"token from {issuer} has {claim} {valid_from.isoformat()} in the future "
                         f"(now {now.isoformat()})")


class ReplayedTokenError(TokenError):
    """A token with this `jti` was already accepted and has not expired yet."""

    def __init__(self, issuer: str, jti: str) -> None:
        self.issuer = issuer
        self.jti = jti
        super().__init__(f"token id {jti!r} from {issuer} was already used; issue a fresh token per request")

"""Self-issued ES256 ID tokens exchanged between connectors (DCP v1.0.1 base protocol §4.3, JWT RFC 7519).

Rule kept here: a token is trusted only after `verify_token` has checked, against the issuer's DID document,
the algorithm (ES256 only, never `none` or HMAC), the key, the signature and every claim DCP requires. Header
members that point at keys (`jwk`, `jku`, `x5u`, `x5c`) are ignored on purpose: the key comes from the DID
document and nowhere else. Replay (jti reuse) is the caller's job because it needs shared state.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import MappingProxyType

from joserfc import jws, jwt
from joserfc.errors import BadSignatureError, JoseError
from joserfc.jwk import ECKey

from identity.did_web import verification_jwk
from identity.errors import (
    AudienceMismatchError,
    ExpiredTokenError,
    InvalidClaimError,
    InvalidSignatureError,
    IssuerMismatchError,
    MalformedTokenError,
    TokenNotYetValidError,
    UnsupportedAlgorithmError,
)
from identity.keys import SigningKey, b64url_decode, jwk_to_public_key

ALGORITHM = "ES256"
MAX_TOKEN_LENGTH = 16_384
_RESERVED_CLAIMS = frozenset({"iss", "sub", "aud", "jti", "iat", "nbf", "exp"})


@dataclass(frozen=True)
class TokenClaims:
    """The verified content of a self-issued token; `raw_claims` holds every claim, including `token`."""

    issuer: str
    subject: str
    audience: tuple[str, ...]
    jti: str
    issued_at: datetime
    expires_at: datetime
    not_before: datetime | None
    raw_claims: Mapping[str, object]


def issue_token(key: SigningKey, *, issuer: str, audience: str, now: datetime, ttl_seconds: int = 300,
                extra_claims: dict[str, object] | None = None) -> str:
    """Sign a self-issued token from `issuer` (our DID) to `audience` (the peer's DID) for `ttl_seconds`.

    The header kid is `<issuer>#<key.kid>`, the form the DCP TCK and EDC expect. `extra_claims` (for example
    the DCP `token` claim) may not override a registered claim.
    """
    _require_aware(now)
    if ttl_seconds <= 0:
        raise ValueError(f"ttl_seconds must be positive, got {ttl_seconds}")
    clashing = _RESERVED_CLAIMS.intersection(extra_claims or {})
    if clashing:
        raise ValueError(f"extra_claims must not set registered claims {sorted(clashing)}")
    issued_at = int(now.timestamp())
    claims: dict[str, object] = {
        **(extra_claims or {}),
        "iss": issuer,
        "sub": issuer,
        "aud": audience,
        "jti": str(uuid.uuid4()),
        "iat": issued_at,
        "nbf": issued_at,
        "exp": issued_at + ttl_seconds,
    }
    header = {"alg": ALGORITHM, "typ": "JWT", "kid": f"{issuer}#{key.kid}"}
    return jwt.encode(header, claims, _jose_signing_key(key), algorithms=[ALGORITHM])


def verify_token(token: str, *, did_document: Mapping[str, object], expected_audience: str, now: datetime,
                 leeway_seconds: int = 30, key_relationship: str | None = None) -> TokenClaims:
    """Verify a self-issued token against its issuer's (already resolved) DID document.

    `key_relationship`, when given (DCP v1.0 wants "capabilityInvocation"), also requires the signing key to
    be listed under that relationship; it is off by default because EDC documents often omit relationships.
    Raises a TokenError subclass, or UnknownKeyError / InvalidKeyError when the document has no usable key.
    """
    _require_aware(now)
    header, claims = _decode_unverified(token)
    algorithm = header.get("alg")
    if algorithm != ALGORITHM:
        raise UnsupportedAlgorithmError(algorithm)
    if "crit" in header:
        raise MalformedTokenError("the header lists critical extensions this connector does not understand")
    issuer = _string_claim(claims, "iss")
    if did_document.get("id") != issuer:
        raise IssuerMismatchError(issuer, "DID document id", did_document.get("id"))
    kid = header.get("kid")
    if kid is not None and not isinstance(kid, str):
        raise MalformedTokenError("the header kid is not a string")
    jwk = verification_jwk(did_document, kid, relationship=key_relationship)
    _check_signature(token, jwk, issuer, kid)
    return _checked_claims(claims, issuer, expected_audience, now, leeway_seconds)


def unverified_issuer(token: str) -> str:
    """Read `iss` without any verification, only to know whose DID document to fetch.

    Never base a decision on this value: anyone can write any issuer into an unsigned payload.
    """
    _, claims = _decode_unverified(token)
    return _string_claim(claims, "iss")


def _check_signature(token: str, jwk: dict[str, object], issuer: str, kid: str | None) -> None:
    public_key = _jose_public_key(jwk)
    try:
        jws.deserialize_compact(token, public_key, algorithms=[ALGORITHM])
    except BadSignatureError as exc:
        raise InvalidSignatureError(issuer, kid) from exc
    except JoseError as exc:
        raise MalformedTokenError(f"the JWS was refused by the JOSE library ({exc.error})") from exc


# The JOSE library's wrappers of keys, made once per key: wrapping reads the key's numbers every time, and a
# peer signs every message with the same key. Keyed by our key id (the key's thumbprint) and by a peer's point.
_WRAPPED: dict[object, ECKey] = {}
_WRAPPED_MAX = 256


def _jose_signing_key(key: SigningKey) -> ECKey:
    return _wrapped(("signing", key.kid), lambda: ECKey.import_key(key.private_key))


def _jose_public_key(jwk: dict[str, object]) -> ECKey:
    public_key = jwk_to_public_key(jwk)  # every check of the JWK, every time (the point itself is cached there)
    return _wrapped(("point", jwk.get("x"), jwk.get("y")), lambda: ECKey.import_key(public_key))


def _wrapped(key: object, wrap: Callable[[], ECKey]) -> ECKey:
    found = _WRAPPED.get(key)
    if found is None:
        if len(_WRAPPED) >= _WRAPPED_MAX:
            _WRAPPED.clear()
        found = _WRAPPED[key] = wrap()
    return found


def _checked_claims(claims: dict[str, object], issuer: str, expected_audience: str, now: datetime,
                    leeway_seconds: int) -> TokenClaims:
    subject = _string_claim(claims, "sub")
    if subject != issuer:
        raise IssuerMismatchError(issuer, "sub", subject)
    audience = _audience(claims)
    if expected_audience not in audience:
        raise AudienceMismatchError(expected_audience, audience)
    leeway = timedelta(seconds=leeway_seconds)
    expires_at = _time_claim(claims, "exp")
    issued_at = _time_claim(claims, "iat")
    not_before = _time_claim(claims, "nbf") if "nbf" in claims else None
    if now > expires_at + leeway:
        raise ExpiredTokenError(issuer, expires_at, now)
    for name, valid_from in (("nbf", not_before), ("iat", issued_at)):
        if valid_from is not None and valid_from > now + leeway:
            raise TokenNotYetValidError(issuer, name, valid_from, now)
    return TokenClaims(
        issuer=issuer,
        subject=subject,
        audience=audience,
        jti=_string_claim(claims, "jti"),
        issued_at=issued_at,
        expires_at=expires_at,
        not_before=not_before,
        raw_claims=MappingProxyType(claims),
    )


def _decode_unverified(token: str) -> tuple[dict[str, object], dict[str, object]]:
    if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH:
        raise MalformedTokenError(f"the token is not a string of at most {MAX_TOKEN_LENGTH} characters")
    parts = token.split(".")
    if len(parts) != 3 or not all(parts):
        raise MalformedTokenError("a compact JWS has three non-empty base64url parts separated by '.'")
    return _json_object(parts[0], "header"), _json_object(parts[1], "payload")


def _json_object(segment: str, name: str) -> dict[str, object]:
    try:
        value = json.loads(b64url_decode(segment))
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedTokenError(f"the {name} is not base64url-encoded JSON") from exc
    if not isinstance(value, dict):
        raise MalformedTokenError(f"the {name} is not a JSON object")
    return value


def _string_claim(claims: dict[str, object], name: str) -> str:
    value = claims.get(name)
    if not isinstance(value, str) or not value:
        raise InvalidClaimError(name, "missing or not a non-empty string")
    return value


def _audience(claims: dict[str, object]) -> tuple[str, ...]:
    value = claims.get("aud")
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and value and all(isinstance(item, str) for item in value):
        return tuple(value)
    raise InvalidClaimError("aud", "missing or not a string or a list of strings")


def _time_claim(claims: dict[str, object], name: str) -> datetime:
    value = claims.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidClaimError(name, "missing or not a NumericDate")
    try:
        return datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError) as exc:
        raise InvalidClaimError(name, "the NumericDate is out of range") from exc


def _require_aware(now: datetime) -> None:
    if now.tzinfo is None:
        raise ValueError("now must be a timezone-aware datetime")

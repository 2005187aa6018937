"""Issue and verify the short-lived tokens that let a consumer pull one transfer's data.

The token is an ES256 JWT signed with the connector's own P-256 key, so the public endpoint can check
it without a database round trip. Its subject is the transfer id and nothing else grants access: the
token alone never proves the transfer is still running. The public API asks the control plane on every
request (``resolve_source``), which is how suspension and termination revoke a token at once, long
before ``exp``.

Only ES256 is accepted, whatever the token header says, so neither ``alg: none`` nor an HMAC forged
with the public key can pass.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from cryptography.hazmat.primitives.asymmetric import ec
from joserfc import jwt
from joserfc.errors import BadSignatureError, JoseError, UnsupportedAlgorithmError
from joserfc.jwk import ECKey

from connector.dataplane.errors import AccessDeniedError, DenialReason

ALGORITHM = "ES256"
PULL_SCOPE = "pull"
DEFAULT_TTL_SECONDS = 600


def issue_access_token(
    private_key: ec.EllipticCurvePrivateKey,
    *,
    kid: str,
    issuer: str,
    transfer_id: str,
    now: datetime,
    ttl_seconds: int = DEFAULT_TTL_SECONDS,
) -> str:
    """Sign a pull token for ``transfer_id`` that expires ``ttl_seconds`` after ``now``.

    Raises ValueError when the key is not P-256, ``now`` is naive, or the ttl is not positive: each
    is a wiring mistake, not something a peer can cause.
    """
    _require_p256(private_key)
    if ttl_seconds <= 0:
        raise ValueError(f"token ttl must be positive, got {ttl_seconds} seconds")
    if not transfer_id:
        raise ValueError("cannot issue an access token for an empty transfer id")
    issued_at = _epoch_seconds(now)
    claims = {
        "iss": issuer,
        "sub": transfer_id,
        "jti": uuid.uuid4().hex,
        "iat": issued_at,
        "exp": issued_at + ttl_seconds,
        "scope": PULL_SCOPE,
    }
    header = {"alg": ALGORITHM, "kid": kid}
    return jwt.encode(header, claims, ECKey.import_key(private_key), algorithms=[ALGORITHM])


def verify_access_token(
    token: str,
    *,
    public_key: ec.EllipticCurvePublicKey | ec.EllipticCurvePrivateKey,
    issuer: str,
    now: datetime,
) -> str:
    """Return the transfer id a valid pull token was issued for.

    Raises AccessDeniedError whose ``reason`` names the first failed check: malformed,
    unsupported_algorithm, bad_signature, wrong_issuer, wrong_scope or expired.
    """
    if not token:
        raise AccessDeniedError(DenialReason.MISSING)
    # A JWE has five parts; refuse it before joserfc tries to decrypt with a signing key.
    if token.count(".") != 2:
        raise AccessDeniedError(DenialReason.MALFORMED)
    if isinstance(public_key, ec.EllipticCurvePrivateKey):
        public_key = public_key.public_key()
    _require_p256(public_key)
    try:
        decoded = jwt.decode(token, ECKey.import_key(public_key), algorithms=[ALGORITHM])
    except UnsupportedAlgorithmError as exc:
        raise AccessDeniedError(DenialReason.UNSUPPORTED_ALGORITHM) from exc
    except BadSignatureError as exc:
        raise AccessDeniedError(DenialReason.BAD_SIGNATURE) from exc
    except (JoseError, ValueError, TypeError) as exc:
        raise AccessDeniedError(DenialReason.MALFORMED) from exc
    return _check_claims(decoded.claims, issuer=issuer, now=_epoch_seconds(now))


def token_verifier(
    public_key: ec.EllipticCurvePublicKey | ec.EllipticCurvePrivateKey,
    *,
    issuer: str,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Callable[[str], str]:
    """Bind key, issuer and clock into the ``verify`` callable ``build_public_router`` expects."""

    def verify(token: str) -> str:
        return verify_access_token(token, public_key=public_key, issuer=issuer, now=clock())

    return verify


def _check_claims(claims: dict[str, object], *, issuer: str, now: int) -> str:
    subject = claims.get("sub")
    expires = claims.get("exp")
    if not isinstance(subject, str) or not subject:
        raise AccessDeniedError(DenialReason.MALFORMED)
    # bool is an int subclass; a token with "exp": true is malformed, not valid until 1970-01-01T00:00:01.
    if not isinstance(expires, int) or isinstance(expires, bool):
        raise AccessDeniedError(DenialReason.MALFORMED)
    if claims.get("iss") != issuer:
        raise AccessDeniedError(DenialReason.WRONG_ISSUER)
    if claims.get("scope") != PULL_SCOPE:
        raise AccessDeniedError(DenialReason.WRONG_SCOPE)
    if now >= expires:
        raise AccessDeniedError(DenialReason.EXPIRED)
    return subject


def _epoch_seconds(moment: datetime) -> int:
    if moment.tzinfo is None:
        raise ValueError("token times need a timezone-aware datetime, e.g. datetime.now(UTC)")
    return int(moment.timestamp())


def _require_p256(key: ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey) -> None:
    curve = getattr(key, "curve", None)
    if not isinstance(curve, ec.SECP256R1):
        shown = curve.name if curve is not None else type(key).__name__
        raise ValueError(f"access tokens are signed with ES256, which needs a P-256 key, not {shown}")

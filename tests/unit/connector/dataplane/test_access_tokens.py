from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from joserfc import jwt
from joserfc.jwk import ECKey, OctKey

from connector.dataplane.access_tokens import issue_access_token, token_verifier, verify_access_token
from connector.dataplane.errors import AccessDeniedError, DenialReason

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
ISSUER = "did:web:provider.example"


def _issue(key: ec.EllipticCurvePrivateKey, **overrides: object) -> str:
    arguments: dict[str, object] = {
        "kid": "key-1",
        "issuer": ISSUER,
        "transfer_id": "tp-42",
        "now": NOW,
        "ttl_seconds": 600,
    }
    arguments.update(overrides)
    return issue_access_token(key, **arguments)  # type: ignore[arg-type]


def _verify(token: str, key: ec.EllipticCurvePrivateKey, *, now: datetime = NOW, issuer: str = ISSUER) -> str:
    return verify_access_token(token, public_key=key.public_key(), issuer=issuer, now=now)


def _denial(token: str, key: ec.EllipticCurvePrivateKey, **kwargs: object) -> DenialReason:
    with pytest.raises(AccessDeniedError) as caught:
        _verify(token, key, **kwargs)  # type: ignore[arg-type]
    return caught.value.reason


def _b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def test_round_trip_returns_the_transfer_id(signing_key):
    assert _verify(_issue(signing_key), signing_key) == "tp-42"


def test_token_carries_the_documented_claims_and_header(signing_key):
    token = _issue(signing_key)
    decoded = jwt.decode(token, ECKey.import_key(signing_key.public_key()), algorithms=["ES256"])
    assert decoded.header["alg"] == "ES256"
    assert decoded.header["kid"] == "key-1"
    claims = decoded.claims
    assert claims["iss"] == ISSUER
    assert claims["sub"] == "tp-42"
    assert claims["scope"] == "pull"
    assert claims["iat"] == int(NOW.timestamp())
    assert claims["exp"] - claims["iat"] == 600
    assert isinstance(claims["jti"], str) and claims["jti"]


def test_each_token_gets_a_fresh_jti(signing_key):
    public = ECKey.import_key(signing_key.public_key())
    first = jwt.decode(_issue(signing_key), public, algorithms=["ES256"]).claims["jti"]
    second = jwt.decode(_issue(signing_key), public, algorithms=["ES256"]).claims["jti"]
    assert first != second


def test_token_is_valid_until_one_second_before_expiry(signing_key):
    token = _issue(signing_key, ttl_seconds=60)
    assert _verify(token, signing_key, now=NOW + timedelta(seconds=59)) == "tp-42"


@pytest.mark.parametrize("after", [timedelta(seconds=60), timedelta(days=1)])
def test_expired_token_is_denied(signing_key, after):
    token = _issue(signing_key, ttl_seconds=60)
    assert _denial(token, signing_key, now=NOW + after) is DenialReason.EXPIRED


def test_tampered_subject_fails_the_signature_check(signing_key):
    header, _payload, signature = _issue(signing_key).split(".")
    forged_claims = {
        "iss": ISSUER,
        "sub": "someone-elses-transfer",
        "scope": "pull",
        "exp": int(NOW.timestamp()) + 600,
    }
    forged = f"{header}.{_b64(forged_claims)}.{signature}"
    assert _denial(forged, signing_key) is DenialReason.BAD_SIGNATURE


def test_token_signed_by_another_key_is_denied(signing_key):
    other = ec.generate_private_key(ec.SECP256R1())
    assert _denial(_issue(other), signing_key) is DenialReason.BAD_SIGNATURE


def test_token_from_another_issuer_is_denied(signing_key):
    assert _denial(_issue(signing_key, issuer="did:web:mallory"), signing_key) is DenialReason.WRONG_ISSUER


def test_token_without_pull_scope_is_denied(signing_key):
    claims = {"iss": ISSUER, "sub": "tp-42", "scope": "push", "exp": int(NOW.timestamp()) + 60}
    token = jwt.encode({"alg": "ES256"}, claims, ECKey.import_key(signing_key))
    assert _denial(token, signing_key) is DenialReason.WRONG_SCOPE


@pytest.mark.parametrize(
    "claims",
    [
        {"iss": ISSUER, "scope": "pull", "exp": 4102444800},
        {"iss": ISSUER, "sub": "tp-42", "scope": "pull"},
        {"iss": ISSUER, "sub": "tp-42", "scope": "pull", "exp": True},
        {"iss": ISSUER, "sub": "tp-42", "scope": "pull", "exp": "4102444800"},
    ],
    ids=["no-sub", "no-exp", "bool-exp", "string-exp"],
)
def test_token_with_missing_or_mistyped_claims_is_malformed(signing_key, claims):
    token = jwt.encode({"alg": "ES256"}, claims, ECKey.import_key(signing_key))
    assert _denial(token, signing_key) is DenialReason.MALFORMED


@pytest.mark.parametrize("token", ["abc", "a.b.c", "a.b.c.d.e", "...."])
def test_garbage_is_malformed(signing_key, token):
    assert _denial(token, signing_key) is DenialReason.MALFORMED


def test_empty_token_is_missing(signing_key):
    assert _denial("", signing_key) is DenialReason.MISSING


def test_hmac_token_is_refused_whatever_its_signature(signing_key):
    claims = {"iss": ISSUER, "sub": "tp-42", "scope": "pull", "exp": int(NOW.timestamp()) + 60}
    token = jwt.encode({"alg": "HS256"}, claims, OctKey.import_key(b"0123456789abcdef0123456789abcdef"))
    assert _denial(token, signing_key) is DenialReason.UNSUPPORTED_ALGORITHM


def test_unsigned_token_is_refused(signing_key):
    claims = {"iss": ISSUER, "sub": "tp-42", "scope": "pull", "exp": int(NOW.timestamp()) + 60}
    token = f"{_b64({'alg': 'none'})}.{_b64(claims)}."
    assert _denial(token, signing_key) is DenialReason.UNSUPPORTED_ALGORITHM


def test_denial_message_names_the_reason_and_no_token(signing_key):
    token = _issue(signing_key, ttl_seconds=1)
    with pytest.raises(AccessDeniedError) as caught:
        _verify(token, signing_key, now=NOW + timedelta(hours=1))
    assert "expired" in str(caught.value)
    assert token not in str(caught.value)


def test_verifying_with_the_private_key_uses_its_public_half(signing_key):
    token = _issue(signing_key)
    assert verify_access_token(token, public_key=signing_key, issuer=ISSUER, now=NOW) == "tp-42"


def test_naive_datetime_is_rejected(signing_key):
    with pytest.raises(ValueError, match="timezone-aware"):
        _issue(signing_key, now=datetime(2025, 3, 1))


def test_non_p256_key_is_rejected():
    with pytest.raises(ValueError, match="P-256"):
        _issue(ec.generate_private_key(ec.SECP384R1()))


@pytest.mark.parametrize("ttl", [0, -5])
def test_non_positive_ttl_is_rejected(signing_key, ttl):
    with pytest.raises(ValueError, match="ttl"):
        _issue(signing_key, ttl_seconds=ttl)


def test_token_verifier_reads_the_clock_on_every_call(signing_key):
    moments = iter([NOW, NOW + timedelta(seconds=601)])
    verify = token_verifier(signing_key.public_key(), issuer=ISSUER, clock=lambda: next(moments))
    token = _issue(signing_key)
    assert verify(token) == "tp-42"
    with pytest.raises(AccessDeniedError) as caught:
        verify(token)
    assert caught.value.reason is DenialReason.EXPIRED

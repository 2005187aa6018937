import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from identity.did_web import build_did_document
from identity.errors import (
    AudienceMismatchError,
    ExpiredTokenError,
    IdentityError,
    InvalidClaimError,
    InvalidSignatureError,
    IssuerMismatchError,
    MalformedTokenError,
    TokenNotYetValidError,
    UnknownKeyError,
    UnsupportedAlgorithmError,
)
from identity.keys import b64url_decode, b64url_encode, generate_signing_key, public_jwk
from identity.tokens import issue_token, unverified_issuer, verify_token

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
ISSUER = "did:web:consumer.example"
AUDIENCE = "did:web:provider.example"
KEY = generate_signing_key()
DOCUMENT = build_did_document(ISSUER, public_jwk(KEY), service_endpoints={})


def _issue(**overrides):
    arguments = {"issuer": ISSUER, "audience": AUDIENCE, "now": NOW, **overrides}
    return issue_token(KEY, **arguments)


def _verify(token, **overrides):
    arguments = {"did_document": DOCUMENT, "expected_audience": AUDIENCE, "now": NOW, **overrides}
    return verify_token(token, **arguments)


def _b64json(value):
    return b64url_encode(json.dumps(value).encode())


def _parts(token):
    header, payload, _ = token.split(".")
    return json.loads(b64url_decode(header)), json.loads(b64url_decode(payload))


def _es256(header, claims, key=KEY):
    """Sign arbitrary header and claims with ES256 (raw r||s), bypassing issue_token's rules."""
    signing_input = f"{_b64json(header)}.{_b64json(claims)}"
    r, s = decode_dss_signature(key.private_key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
    return f"{signing_input}.{b64url_encode(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


def _claims(**changes):
    base = {"iss": ISSUER, "sub": ISSUER, "aud": AUDIENCE, "jti": "j-1", "iat": int(NOW.timestamp()),
            "exp": int(NOW.timestamp()) + 300}
    base.update(changes)
    return {name: value for name, value in base.items() if value is not None}


HEADER = {"alg": "ES256", "typ": "JWT", "kid": f"{ISSUER}#{KEY.kid}"}


def test_issued_token_has_the_dcp_header_and_claims():
    header, claims = _parts(_issue(extra_claims={"token": "access"}))

    assert header == {"alg": "ES256", "typ": "JWT", "kid": f"{ISSUER}#{KEY.kid}"}
    assert claims["iss"] == claims["sub"] == ISSUER
    assert claims["aud"] == AUDIENCE
    assert claims["iat"] == claims["nbf"] == int(NOW.timestamp())
    assert claims["exp"] == int(NOW.timestamp()) + 300
    assert claims["token"] == "access"
    assert len(claims["jti"]) == 36


def test_each_token_gets_a_fresh_jti():
    assert _parts(_issue())[1]["jti"] != _parts(_issue())[1]["jti"]


def test_valid_token_verifies_and_returns_its_claims():
    token = _issue(ttl_seconds=60, extra_claims={"token": "access"})

    claims = _verify(token)

    assert claims.issuer == claims.subject == ISSUER
    assert claims.audience == (AUDIENCE,)
    assert claims.issued_at == NOW
    assert claims.not_before == NOW
    assert claims.expires_at == NOW + timedelta(seconds=60)
    assert claims.jti == _parts(token)[1]["jti"]
    assert claims.raw_claims["token"] == "access"


def test_extra_claims_cannot_override_registered_claims():
    with pytest.raises(ValueError, match="aud"):
        _issue(extra_claims={"aud": "did:web:other.example"})


def test_naive_now_is_refused():
    with pytest.raises(ValueError, match="timezone"):
        _issue(now=datetime(2026, 3, 1))


def test_audience_list_containing_us_is_accepted():
    token = _es256(HEADER, _claims(aud=["did:web:other.example", AUDIENCE]))

    assert _verify(token).audience == ("did:web:other.example", AUDIENCE)


def test_wrong_audience_is_rejected():
    with pytest.raises(AudienceMismatchError) as info:
        _verify(_issue(audience="did:web:someone-else.example"))

    assert info.value.expected == AUDIENCE
    assert info.value.actual == ("did:web:someone-else.example",)


def test_tampered_signature_is_rejected():
    token = _issue()
    head, payload, signature = token.split(".")
    raw = bytearray(b64url_decode(signature))
    raw[10] ^= 0x01

    with pytest.raises(InvalidSignatureError) as info:
        _verify(f"{head}.{payload}.{b64url_encode(bytes(raw))}")

    assert info.value.issuer == ISSUER


def test_tampered_payload_is_rejected():
    token = _issue()
    head, _, signature = token.split(".")
    claims = _parts(token)[1]
    claims["exp"] += 3600

    with pytest.raises(InvalidSignatureError):
        _verify(f"{head}.{_b64json(claims)}.{signature}")


def test_token_signed_by_another_key_under_our_kid_is_rejected():
    with pytest.raises(InvalidSignatureError):
        _verify(_es256(HEADER, _claims(), key=generate_signing_key()))


def test_expired_token_is_rejected_after_the_leeway():
    token = _issue(ttl_seconds=60)

    assert _verify(token, now=NOW + timedelta(seconds=89)).jti
    with pytest.raises(ExpiredTokenError) as info:
        _verify(token, now=NOW + timedelta(seconds=91))
    assert info.value.expires_at == NOW + timedelta(seconds=60)


def test_token_with_nbf_in_the_future_is_rejected():
    token = _es256(HEADER, _claims(nbf=int(NOW.timestamp()) + 120))

    with pytest.raises(TokenNotYetValidError) as info:
        _verify(token)

    assert info.value.claim == "nbf"


def test_token_with_iat_in_the_future_is_rejected():
    token = _es256(HEADER, _claims(iat=int(NOW.timestamp()) + 120))

    with pytest.raises(TokenNotYetValidError) as info:
        _verify(token)

    assert info.value.claim == "iat"


def test_small_clock_skew_is_tolerated():
    assert _verify(_issue(now=NOW + timedelta(seconds=20))).issuer == ISSUER


def test_alg_none_token_is_rejected():
    token = f"{_b64json({'alg': 'none', 'typ': 'JWT'})}.{_b64json(_claims())}.c2ln"

    with pytest.raises(UnsupportedAlgorithmError) as info:
        _verify(token)

    assert info.value.algorithm == "none"


def test_hs256_token_keyed_with_the_public_key_is_rejected():
    header = {**HEADER, "alg": "HS256"}
    signing_input = f"{_b64json(header)}.{_b64json(_claims())}"
    secret = json.dumps(public_jwk(KEY)).encode()
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()

    with pytest.raises(UnsupportedAlgorithmError):
        _verify(f"{signing_input}.{b64url_encode(mac)}")


def test_unknown_kid_is_rejected():
    with pytest.raises(UnknownKeyError) as info:
        _verify(_es256({**HEADER, "kid": f"{ISSUER}#not-a-key"}, _claims()))

    assert info.value.kid == f"{ISSUER}#not-a-key"


def test_token_without_kid_uses_the_only_key():
    header = {"alg": "ES256", "typ": "JWT"}

    assert _verify(_es256(header, _claims())).issuer == ISSUER


def test_issuer_that_is_not_the_document_id_is_rejected():
    other_issuer = "did:web:attacker.example"
    token = issue_token(KEY, issuer=other_issuer, audience=AUDIENCE, now=NOW)

    with pytest.raises(IssuerMismatchError) as info:
        _verify(token)

    assert info.value.issuer == other_issuer


def test_subject_differing_from_issuer_is_rejected():
    with pytest.raises(IssuerMismatchError) as info:
        _verify(_es256(HEADER, _claims(sub="did:web:someone.example")))

    assert info.value.other_name == "sub"


@pytest.mark.parametrize("claim", ["jti", "exp", "iat", "sub", "aud"])
def test_missing_required_claim_is_rejected(claim):
    with pytest.raises(InvalidClaimError) as info:
        _verify(_es256(HEADER, _claims(**{claim: None})))

    assert info.value.claim in (claim, "iss")


@pytest.mark.parametrize(("claim", "value"), [("exp", "tomorrow"), ("exp", True), ("jti", 7), ("aud", [])])
def test_claims_of_the_wrong_type_are_rejected(claim, value):
    with pytest.raises(InvalidClaimError):
        _verify(_es256(HEADER, _claims(**{claim: value})))


def test_critical_header_extensions_are_rejected():
    with pytest.raises(MalformedTokenError, match="critical"):
        _verify(_es256({**HEADER, "crit": ["b64"], "b64": True}, _claims()))


def test_key_in_the_token_header_is_ignored():
    attacker = generate_signing_key()
    header = {**HEADER, "jwk": public_jwk(attacker)}

    with pytest.raises(InvalidSignatureError):
        _verify(_es256(header, _claims(), key=attacker))


def test_key_relationship_is_enforced_when_requested():
    document = {**DOCUMENT, "capabilityInvocation": []}

    assert _verify(_issue(), did_document=document).issuer == ISSUER
    with pytest.raises(UnknownKeyError, match="capabilityInvocation"):
        _verify(_issue(), did_document=document, key_relationship="capabilityInvocation")


@pytest.mark.parametrize(
    "token",
    ["", "abc", "a.b", "a.b.c.d", "..", "bm90IGpzb24.e30.c2ln", "W10.e30.c2ln", "e30.W10.c2ln", "x" * 20_000],
)
def test_malformed_tokens_are_rejected(token):
    with pytest.raises(MalformedTokenError):
        _verify(token)


def test_unverified_issuer_reads_iss_without_checking_anything():
    forged = f"{_b64json({'alg': 'none'})}.{_b64json({'iss': 'did:web:x.example'})}.c2ln"

    assert unverified_issuer(_issue()) == ISSUER
    assert unverified_issuer(forged) == "did:web:x.example"


def test_unverified_issuer_of_a_token_without_iss_is_an_error():
    with pytest.raises(InvalidClaimError):
        unverified_issuer(f"{_b64json({'alg': 'ES256'})}.{_b64json({})}.c2ln")


def test_error_messages_never_contain_the_token():
    token = _issue(audience="did:web:someone-else.example")
    head, payload, signature = token.split(".")
    cases = [token, f"{head}.{payload}.{signature[:-4]}AAAA", token + "x" * 20_000]

    for case in cases:
        with pytest.raises(IdentityError) as info:
            _verify(case)
        message = str(info.value)
        assert head not in message and payload not in message and signature not in message

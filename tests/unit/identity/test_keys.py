import stat

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from joserfc.jwk import ECKey

from identity.errors import InvalidKeyError, KeyFileError
from identity.keys import (
    b64url_decode,
    generate_signing_key,
    jwk_to_public_key,
    load_or_create_signing_key,
    public_jwk,
    signing_key_from_private,
)


def _write_pem(path, private_key):
    path.write_bytes(private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))


def test_missing_key_file_is_created_with_mode_0600_and_parent_dirs(tmp_path):
    path = tmp_path / "a" / "b" / "signing-key.pem"

    key = load_or_create_signing_key(path)

    assert path.is_file()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert b"BEGIN PRIVATE KEY" in path.read_bytes()
    assert isinstance(key.private_key.curve, ec.SECP256R1)


def test_loading_an_existing_key_file_returns_the_same_key_and_kid(tmp_path):
    path = tmp_path / "signing-key.pem"
    created = load_or_create_signing_key(path)

    loaded = load_or_create_signing_key(path)

    assert loaded.kid == created.kid
    assert public_jwk(loaded) == public_jwk(created)


def test_kid_is_the_rfc7638_thumbprint():
    key = generate_signing_key()

    assert key.kid == ECKey.import_key(key.private_key.public_key()).thumbprint()


def test_public_jwk_has_the_published_members_and_no_private_part():
    key = generate_signing_key()

    jwk = public_jwk(key)

    assert set(jwk) == {"kty", "crv", "x", "y", "kid", "alg", "use"}
    assert (jwk["kty"], jwk["crv"], jwk["alg"], jwk["use"]) == ("EC", "P-256", "ES256", "sig")
    assert jwk["kid"] == key.kid
    assert len(b64url_decode(jwk["x"])) == 32 and len(b64url_decode(jwk["y"])) == 32


def test_public_jwk_round_trips_into_a_key_that_verifies_signatures():
    key = generate_signing_key()
    signature = key.private_key.sign(b"message", ec.ECDSA(hashes.SHA256()))

    public_key = jwk_to_public_key(public_jwk(key))

    public_key.verify(signature, b"message", ec.ECDSA(hashes.SHA256()))
    assert public_key.public_numbers() == key.private_key.public_key().public_numbers()


def test_p384_key_file_is_rejected(tmp_path):
    path = tmp_path / "key.pem"
    _write_pem(path, ec.generate_private_key(ec.SECP384R1()))

    with pytest.raises(KeyFileError) as info:
        load_or_create_signing_key(path)

    assert "P-256" in str(info.value)
    assert info.value.path == path


def test_ed25519_key_file_is_rejected(tmp_path):
    path = tmp_path / "key.pem"
    _write_pem(path, ed25519.Ed25519PrivateKey.generate())

    with pytest.raises(KeyFileError, match="not an EC key"):
        load_or_create_signing_key(path)


def test_garbage_key_file_is_rejected_and_left_untouched(tmp_path):
    path = tmp_path / "key.pem"
    path.write_bytes(b"not a key")

    with pytest.raises(KeyFileError):
        load_or_create_signing_key(path)

    assert path.read_bytes() == b"not a key"


def test_signing_key_from_a_non_p256_private_key_is_rejected():
    with pytest.raises(InvalidKeyError):
        signing_key_from_private(ec.generate_private_key(ec.SECP256K1()))


def test_repr_does_not_show_key_material():
    key = generate_signing_key()

    assert repr(key) == f"SigningKey(kid={key.kid!r})"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"kty": "RSA"}, "EC / P-256"),
        ({"crv": "P-384"}, "EC / P-256"),
        ({"alg": "HS256"}, "not ES256"),
        ({"d": "AAAA"}, "private member"),
        ({"x": "AAAA"}, "bytes"),
        ({"y": None}, "not a string"),
        ({"x": "!!!"}, "base64url"),
    ],
)
def test_unusable_jwks_are_rejected(change, reason):
    jwk = {**public_jwk(generate_signing_key()), **change}

    with pytest.raises(InvalidKeyError, match=reason):
        jwk_to_public_key(jwk)


def test_jwk_with_a_point_off_the_curve_is_rejected():
    jwk = public_jwk(generate_signing_key())
    jwk["y"] = jwk["x"]

    with pytest.raises(InvalidKeyError, match="curve"):
        jwk_to_public_key(jwk)

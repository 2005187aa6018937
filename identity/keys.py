"""The connector's EC P-256 signing key, its JWK form and its RFC 7638 key id.

Rule kept here: only P-256 keys exist in this package. DCP, the DCP TCK, EDC and model-signing all accept
ES256, so one curve is enough, and refusing every other curve at load time means no other code path has to
check it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from identity.errors import InvalidKeyError, KeyFileError

_COORDINATE_BYTES = 32
_JWK_PUBLIC_MEMBERS = ("kty", "crv", "x", "y")


@dataclass(frozen=True)
class SigningKey:
    """A private P-256 key and its key id (the RFC 7638 thumbprint of the public JWK)."""

    private_key: ec.EllipticCurvePrivateKey
    kid: str

    def __repr__(self) -> str:
        # The default repr would print the key object; keep key material out of logs and tracebacks.
        return f"SigningKey(kid={self.kid!r})"


def generate_signing_key() -> SigningKey:
    """Create a fresh in-memory P-256 key (tests, and the first start of a connector)."""
    return signing_key_from_private(ec.generate_private_key(ec.SECP256R1()))


def signing_key_from_private(private_key: ec.EllipticCurvePrivateKey) -> SigningKey:
    """Wrap a P-256 private key and derive its kid; raise InvalidKeyError for any other curve."""
    if not isinstance(private_key.curve, ec.SECP256R1):
        raise InvalidKeyError(f"curve {private_key.curve.name} is not P-256")
    return SigningKey(private_key=private_key, kid=_thumbprint(_public_members(private_key.public_key())))


def load_or_create_signing_key(path: Path) -> SigningKey:
    """Load the PKCS8 PEM key at `path`, or create it (mode 0600, parent directories 0700) when it is missing.

    Raises KeyFileError when the file exists but is not an unencrypted EC P-256 private key: silently
    replacing a broken key would change the connector's identity.
    """
    if not path.exists():
        created = _create_key_file(path)
        if created is not None:
            return created
    try:
        pem = path.read_bytes()
    except OSError as exc:
        raise KeyFileError(path, f"cannot read it: {exc.strerror}") from exc
    try:
        private_key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise KeyFileError(path, "not an unencrypted PEM private key") from exc
    if not isinstance(private_key, ec.EllipticCurvePrivateKey):
        raise KeyFileError(path, f"{type(private_key).__name__} is not an EC key")
    if not isinstance(private_key.curve, ec.SECP256R1):
        raise KeyFileError(path, f"curve {private_key.curve.name} is not P-256")
    return signing_key_from_private(private_key)


def _create_key_file(path: Path) -> SigningKey | None:
    """Write a new key with O_EXCL; return None when another process created the file first."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = generate_signing_key()
    pem = key.private_key.private_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PrivateFormat.PKCS8,
        encryption_algorithm=serialization.NoEncryption(),
    )
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return None
    except OSError as exc:
        raise KeyFileError(path, f"cannot create it: {exc.strerror}") from exc
    with os.fdopen(fd, "wb") as handle:
        os.fchmod(handle.fileno(), 0o600)
        handle.write(pem)
    return key


def public_jwk(key: SigningKey) -> dict[str, str]:
    """Return the public JWK of `key` with kid, alg ES256 and use sig, as published in the DID document."""
    jwk = _public_members(key.private_key.public_key())
    return {**jwk, "kid": key.kid, "alg": "ES256", "use": "sig"}


def jwk_to_public_key(jwk: dict[str, object]) -> ec.EllipticCurvePublicKey:
    """Turn a public EC P-256 JWK into a verification key; raise InvalidKeyError for anything else.

    A JWK carrying the private member `d` is refused: it means someone published a private key.
    """
    if "d" in jwk:
        raise InvalidKeyError("it contains the private member 'd'")
    if jwk.get("kty") != "EC" or jwk.get("crv") != "P-256":
        raise InvalidKeyError(f"kty {jwk.get('kty')!r} / crv {jwk.get('crv')!r} is not EC / P-256")
    if jwk.get("alg") not in (None, "ES256"):
        raise InvalidKeyError(f"alg {jwk.get('alg')!r} is not ES256")
    return _point_key(jwk.get("x"), jwk.get("y"))


@lru_cache(maxsize=256)
def _point_key(x_member: object, y_member: object) -> ec.EllipticCurvePublicKey:
    """The key of one point, built once: checking that a point lies on the curve took more CPU than verifying the
    signature itself, and a peer signs every message with the same key. Invalid members raise (never cached)."""
    x = _decode_coordinate(x_member, "x")
    y = _decode_coordinate(y_member, "y")
    try:
        return ec.EllipticCurvePublicNumbers(x, y, ec.SECP256R1()).public_key()
    except ValueError as exc:
        raise InvalidKeyError("the point is not on the P-256 curve") from exc


def _decode_coordinate(value: object, name: str) -> int:
    if not isinstance(value, str):
        raise InvalidKeyError(f"member {name!r} is missing or not a string")
    try:
        raw = b64url_decode(value)
    except ValueError as exc:
        raise InvalidKeyError(f"member {name!r} is not base64url") from exc
    if len(raw) != _COORDINATE_BYTES:
        raise InvalidKeyError(f"member {name!r} is {len(raw)} bytes, expected {_COORDINATE_BYTES}")
    return int.from_bytes(raw, "big")


def _public_members(public_key: ec.EllipticCurvePublicKey) -> dict[str, str]:
    numbers = public_key.public_numbers()
    return {
        "kty": "EC",
        "crv": "P-256",
        "x": b64url_encode(numbers.x.to_bytes(_COORDINATE_BYTES, "big")),
        "y": b64url_encode(numbers.y.to_bytes(_COORDINATE_BYTES, "big")),
    }


def _thumbprint(members: dict[str, str]) -> str:
    """RFC 7638: SHA-256 over the required members in lexicographic order, no whitespace, base64url."""
    canonical = json.dumps({name: members[name] for name in sorted(_JWK_PUBLIC_MEMBERS)},
                           separators=(",", ":"), sort_keys=True)
    return b64url_encode(hashlib.sha256(canonical.encode("utf-8")).digest())


def b64url_encode(data: bytes) -> str:
    """Encode as unpadded base64url (RFC 7515 §2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Decode unpadded base64url strictly; raise ValueError on any character outside the alphabet."""
    if "=" in text or "+" in text or "/" in text:
        raise ValueError("not unpadded base64url")
    standard = text.replace("-", "+").replace("_", "/") + "=" * (-len(text) % 4)
    return base64.b64decode(standard, validate=True)

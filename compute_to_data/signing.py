"""Signed algorithms: a DSSE envelope holding an in-toto Statement v1 with an SLSA Provenance v1 predicate.

INTERFACE (lead's skeleton, filled in by the c2d-core helper). Formats (see ../shared/research/identity.md):
- DSSE: {"payloadType": "application/vnd.in-toto+json", "payload": base64(statement JSON),
  "signatures": [{"keyid": "<signer DID URL, e.g. did:web:b.example#<kid>>", "sig": base64(DER ECDSA P-256 over
  PAE(payloadType, payload))}]}; standard base64, not URL-safe. PAE = "DSSEv1 <len> <type> <len> <body>".
- Statement: {"_type": "https://in-toto.io/Statement/v1", "subject": [{"name": "<bundle file name>",
  "digest": {"sha256": "<hex>"}}], "predicateType": "https://slsa.dev/provenance/v1", "predicate": {...}}.
- Predicate: buildDefinition {buildType "https://w3id.org/sovra/c2d/algorithm-bundle/v1", externalParameters
  {name, version, kind, manifest digest}, resolvedDependencies [...]}, runDetails {builder {id: signer DID},
  metadata {startedOn, finishedOn}}.
Verification checks, in order, and names the failing one: envelope shape and payloadType; signer key resolved
from the signer's DID document (keyid's DID part) and signature valid; predicateType and provenance present;
subject digest equals the artifact's digest. The caller resolves DID documents (I/O stays in the shell).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from identity.did_web import verification_jwk
from identity.errors import IdentityError
from identity.keys import SigningKey, jwk_to_public_key

PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
SLSA_PROVENANCE = "https://slsa.dev/provenance/v1"
BUNDLE_BUILD_TYPE = "https://w3id.org/sovra/c2d/algorithm-bundle/v1"
_HEX64 = re.compile(r"[0-9a-f]{64}")

DidDocumentResolver = Callable[[str], Mapping[str, Any]]


class SignatureCheckError(ValueError):
    """A failed check; `check` is one of: envelope, signer, signature, provenance, digest."""

    def __init__(self, check: str, reason: str) -> None:
        super().__init__(f"{check}: {reason}")
        self.check, self.reason = check, reason


@dataclass(frozen=True)
class VerifiedStatement:
    signer_did: str
    key_id: str
    subject_name: str
    digest: str  # "sha256:<hex>"
    statement: Mapping[str, Any]


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 Pre-Authentication Encoding: lengths are byte counts, in ASCII decimal."""
    kind = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def canonical_json(value: Any) -> bytes:
    """Sorted keys, no whitespace, UTF-8: the bytes that get signed and hashed (stable across runs)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def sign_statement(statement: Mapping[str, Any], key: SigningKey, signer_did: str) -> dict[str, Any]:
    """The DSSE envelope of `statement`, signed with `key` (keyid = f"{signer_did}#{key.kid}")."""
    payload = canonical_json(statement)
    signature = key.private_key.sign(pae(PAYLOAD_TYPE, payload), ec.ECDSA(hashes.SHA256()))
    return {
        "payloadType": PAYLOAD_TYPE,
        "payload": base64.b64encode(payload).decode("ascii"),
        "signatures": [{"keyid": f"{signer_did}#{key.kid}", "sig": base64.b64encode(signature).decode("ascii")}],
    }


def bundle_statement(bundle_name: str, digest: str, manifest_json: Mapping[str, Any], signer_did: str,
                     *, started: str, finished: str) -> dict[str, Any]:
    """The in-toto Statement (SLSA provenance) for a packed algorithm bundle."""
    return {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": bundle_name, "digest": {"sha256": _hex_of(digest)}}],
        "predicateType": SLSA_PROVENANCE,
        "predicate": {
            "buildDefinition": {
                "buildType": BUNDLE_BUILD_TYPE,
                "externalParameters": {
                    "name": manifest_json.get("name"),
                    "version": manifest_json.get("version"),
                    "kind": manifest_json.get("kind"),
                    "manifest": {"digest": {"sha256": hashlib.sha256(canonical_json(manifest_json)).hexdigest()}},
                },
                "internalParameters": {"packer": "sovra algorithm pack", "format": "tar+gzip, deterministic"},
                "resolvedDependencies": [],
            },
            "runDetails": {
                "builder": {"id": signer_did},
                "metadata": {"startedOn": started, "finishedOn": finished},
            },
        },
    }


def _hex_of(digest: str) -> str:
    algorithm, _, value = digest.partition(":")
    if algorithm != "sha256" or not _HEX64.fullmatch(value):
        raise ValueError(f"{digest!r} is not a digest of the form sha256:<64 lowercase hex>")
    return value


def verify_envelope(envelope: Any, resolve: DidDocumentResolver, *,
                    predicate_type: str = SLSA_PROVENANCE) -> VerifiedStatement:
    """Check envelope, signer and signature, predicate; return the statement. Raises SignatureCheckError."""
    payload, key_id, signature = _envelope_parts(envelope)
    signer_did = _verify_signature(payload, key_id, signature, resolve)
    statement = _statement(payload, predicate_type)
    subjects = statement["subject"]
    if predicate_type == SLSA_PROVENANCE:
        _check_provenance(statement, signer_did)
    first = subjects[0] if subjects else {"name": "", "digest": {"sha256": ""}}
    digest = f"sha256:{first['digest']['sha256']}" if first["digest"]["sha256"] else ""
    return VerifiedStatement(signer_did=signer_did, key_id=key_id, subject_name=first["name"], digest=digest,
                             statement=statement)


def verify_artifact(envelope: Any, artifact_digest: str, resolve: DidDocumentResolver) -> VerifiedStatement:
    """verify_envelope, then the subject digest against the artifact's own digest (computed by the caller)."""
    verified = verify_envelope(envelope, resolve)
    if verified.digest != artifact_digest.lower():
        raise SignatureCheckError("digest", f"the artifact's digest {artifact_digest} differs from the signed "
                                  f"subject digest {verified.digest}: the artifact was changed or is another one")
    return verified


def _envelope_parts(envelope: Any) -> tuple[bytes, str, bytes]:
    if not isinstance(envelope, Mapping) or not envelope:
        raise SignatureCheckError("envelope", "not a DSSE envelope (expected a JSON object with payloadType, "
                                  "payload and signatures)")
    payload_type = envelope.get("payloadType")
    if payload_type != PAYLOAD_TYPE:
        raise SignatureCheckError("envelope", f"payloadType {payload_type!r} is not {PAYLOAD_TYPE}")
    payload = _b64(envelope.get("payload"), "envelope", "payload")
    signatures = envelope.get("signatures")
    if not signatures:
        raise SignatureCheckError("signature", "the envelope carries no signature (unsigned)")
    if not isinstance(signatures, list) or len(signatures) != 1 or not isinstance(signatures[0], Mapping):
        raise SignatureCheckError("envelope", "expected exactly one signature object in 'signatures'")
    key_id = signatures[0].get("keyid")
    if not isinstance(key_id, str) or not key_id.startswith("did:") or "#" not in key_id:
        raise SignatureCheckError("signer", f"keyid {key_id!r} is not a DID URL (did:...#<key id>)")
    return payload, key_id, _b64(signatures[0].get("sig"), "signature", "sig")


def _b64(value: Any, check: str, member: str) -> bytes:
    if not isinstance(value, str) or not value:
        raise SignatureCheckError(check, f"'{member}' is missing or not a string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise SignatureCheckError(check, f"'{member}' is not standard base64") from None


def _verify_signature(payload: bytes, key_id: str, signature: bytes, resolve: DidDocumentResolver) -> str:
    signer_did = key_id.split("#", 1)[0]
    try:
        document = resolve(signer_did)
    except Exception as exc:  # the resolver is the shell's: any failure means an unknown signer
        raise SignatureCheckError("signer", f"cannot resolve the signer's DID {signer_did} ({exc})") from None
    if not isinstance(document, Mapping) or document.get("id") != signer_did:
        raise SignatureCheckError("signer", f"the DID document resolved for {signer_did} is not that DID's")
    try:
        jwk = verification_jwk(dict(document), key_id, relationship="assertionMethod")
        public_key = jwk_to_public_key(jwk)
    except (IdentityError, ValueError) as exc:
        raise SignatureCheckError("signer", f"no usable assertionMethod key {key_id} ({exc})") from None
    try:
        public_key.verify(signature, pae(PAYLOAD_TYPE, payload), ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise SignatureCheckError("signature", f"the signature does not verify with {key_id}: the payload was "
                                  "changed or another key signed it") from None
    return signer_did


def _statement(payload: bytes, predicate_type: str) -> dict[str, Any]:
    try:
        statement = json.loads(payload)
    except (ValueError, RecursionError):
        raise SignatureCheckError("provenance", "the signed payload is not JSON") from None
    if not isinstance(statement, dict) or statement.get("_type") != STATEMENT_TYPE:
        raise SignatureCheckError("provenance", f"the payload is not an in-toto Statement ({STATEMENT_TYPE})")
    if statement.get("predicateType") != predicate_type:
        raise SignatureCheckError("provenance", f"predicateType {statement.get('predicateType')!r} is not "
                                  f"{predicate_type}")
    if not isinstance(statement.get("predicate"), dict):
        raise SignatureCheckError("provenance", "the statement has no predicate object")
    subjects = statement.get("subject")
    if not isinstance(subjects, list) or not all(_is_subject(s) for s in subjects):
        raise SignatureCheckError("provenance", "'subject' is not a list of {name, digest: {sha256: <hex>}}")
    return statement


def _is_subject(subject: Any) -> bool:
    if not isinstance(subject, dict) or not isinstance(subject.get("name"), str):
        return False
    digest = subject.get("digest")
    return isinstance(digest, dict) and isinstance(digest.get("sha256"), str) and bool(_HEX64.fullmatch(
        digest["sha256"]))


def _check_provenance(statement: Mapping[str, Any], signer_did: str) -> None:
    if len(statement["subject"]) != 1:
        raise SignatureCheckError("provenance", f"an algorithm statement names exactly one subject, not "
                                  f"{len(statement['subject'])}")
    predicate = statement["predicate"]
    build = predicate.get("buildDefinition")
    if not isinstance(build, dict) or not isinstance(build.get("buildType"), str) or not build["buildType"]:
        raise SignatureCheckError("provenance", "SLSA provenance lacks buildDefinition.buildType")
    run = predicate.get("runDetails")
    builder = run.get("builder") if isinstance(run, dict) else None
    builder_id = builder.get("id") if isinstance(builder, dict) else None
    if builder_id != signer_did:
        raise SignatureCheckError("provenance", f"runDetails.builder.id {builder_id!r} is not the signer "
                                  f"{signer_did}")

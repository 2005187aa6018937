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

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from identity.keys import SigningKey

PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
SLSA_PROVENANCE = "https://slsa.dev/provenance/v1"
BUNDLE_BUILD_TYPE = "https://w3id.org/sovra/c2d/algorithm-bundle/v1"

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
    raise NotImplementedError


def sign_statement(statement: Mapping[str, Any], key: SigningKey, signer_did: str) -> dict[str, Any]:
    """The DSSE envelope of `statement`, signed with `key` (keyid = f"{signer_did}#{key.kid}")."""
    raise NotImplementedError


def bundle_statement(bundle_name: str, digest: str, manifest_json: Mapping[str, Any], signer_did: str,
                     *, started: str, finished: str) -> dict[str, Any]:
    """The in-toto Statement (SLSA provenance) for a packed algorithm bundle."""
    raise NotImplementedError


def verify_envelope(envelope: Any, resolve: DidDocumentResolver, *,
                    predicate_type: str = SLSA_PROVENANCE) -> VerifiedStatement:
    """Check envelope, signer and signature, predicate; return the statement. Raises SignatureCheckError."""
    raise NotImplementedError


def verify_artifact(envelope: Any, artifact_digest: str, resolve: DidDocumentResolver) -> VerifiedStatement:
    """verify_envelope, then the subject digest against the artifact's own digest (computed by the caller)."""
    raise NotImplementedError

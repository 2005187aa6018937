"""DSSE signing of algorithm bundles, and every check verification makes, each failing with its own name."""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Mapping
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from compute_to_data.signing import (
    BUNDLE_BUILD_TYPE,
    PAYLOAD_TYPE,
    SLSA_PROVENANCE,
    SignatureCheckError,
    bundle_statement,
    pae,
    sign_statement,
    verify_artifact,
    verify_envelope,
)
from identity.did_web import build_did_document
from identity.errors import DidResolutionError
from identity.keys import SigningKey, generate_signing_key, public_jwk

SIGNER = "did:web:ai.example"
OTHER = "did:web:other.example"
DIGEST = "sha256:" + "0123456789abcdef" * 4
MANIFEST = {"name": "career-match", "version": "1.0.0", "kind": "python", "entrypoint": "main.py"}


class Directory:
    """DID documents by DID, as the shell's resolver would serve them."""

    def __init__(self) -> None:
        self.documents: dict[str, dict[str, object]] = {}

    def publish(self, did: str, key: SigningKey) -> None:
        self.documents[did] = build_did_document(did, public_jwk(key), service_endpoints={})

    def __call__(self, did: str) -> Mapping[str, Any]:
        if did not in self.documents:
            raise DidResolutionError(did, f"https://{did}/did.json", "the server did not answer 200 OK", 404)
        return self.documents[did]


@pytest.fixture
def key() -> SigningKey:
    return generate_signing_key()


@pytest.fixture
def directory(key: SigningKey) -> Directory:
    d = Directory()
    d.publish(SIGNER, key)
    return d


def signed(key: SigningKey, signer: str = SIGNER, **changes: Any) -> dict[str, Any]:
    statement = bundle_statement("career-match-1.0.0.tar.gz", DIGEST, MANIFEST, signer,
                                 started="2026-11-22T10:00:00Z", finished="2026-11-22T10:00:01Z")
    statement.update(changes)
    return sign_statement(statement, key, signer)


def resign(envelope: dict[str, Any], key: SigningKey, statement: dict[str, Any]) -> dict[str, Any]:
    """Sign an arbitrary statement under the envelope's keyid (a signer who made a bad statement)."""
    signer = envelope["signatures"][0]["keyid"].split("#")[0]
    return sign_statement(statement, key, signer)


def test_pae_matches_the_dsse_spec_vector() -> None:
    assert pae("http://example.com/HelloWorld", b"hello world") == \
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    assert pae("t", "é".encode()) == b"DSSEv1 1 t 2 " + "é".encode()  # lengths count bytes


def test_envelope_format(key: SigningKey) -> None:
    envelope = signed(key)
    assert envelope["payloadType"] == PAYLOAD_TYPE
    assert envelope["signatures"][0]["keyid"] == f"{SIGNER}#{key.kid}"
    payload = base64.b64decode(envelope["payload"], validate=True)  # standard base64
    statement = json.loads(payload)
    assert statement["_type"] == "https://in-toto.io/Statement/v1"
    assert statement["subject"] == [{"name": "career-match-1.0.0.tar.gz", "digest": {"sha256": DIGEST[7:]}}]
    assert statement["predicateType"] == SLSA_PROVENANCE
    build = statement["predicate"]["buildDefinition"]
    assert build["buildType"] == BUNDLE_BUILD_TYPE
    assert build["externalParameters"]["name"] == "career-match"
    assert len(build["externalParameters"]["manifest"]["digest"]["sha256"]) == 64
    assert statement["predicate"]["runDetails"]["builder"]["id"] == SIGNER
    # DER ECDSA over PAE, checkable with nothing but cryptography
    signature = base64.b64decode(envelope["signatures"][0]["sig"])
    assert signature[0] == 0x30
    key.private_key.public_key().verify(signature, pae(PAYLOAD_TYPE, payload), ec.ECDSA(hashes.SHA256()))


def test_a_good_envelope_verifies(key: SigningKey, directory: Directory) -> None:
    verified = verify_artifact(signed(key), DIGEST, directory)
    assert verified.signer_did == SIGNER
    assert verified.key_id == f"{SIGNER}#{key.kid}"
    assert verified.digest == DIGEST
    assert verified.subject_name == "career-match-1.0.0.tar.gz"


def expect(check: str, envelope: Any, directory: Directory, digest: str = DIGEST) -> SignatureCheckError:
    with pytest.raises(SignatureCheckError) as caught:
        verify_artifact(envelope, digest, directory)
    assert caught.value.check == check, str(caught.value)
    return caught.value


def test_tampered_payload(key: SigningKey, directory: Directory) -> None:
    envelope = signed(key)
    statement = json.loads(base64.b64decode(envelope["payload"]))
    statement["subject"][0]["digest"]["sha256"] = "f" * 64
    envelope["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    expect("signature", envelope, directory, "sha256:" + "f" * 64)


def test_one_flipped_bit_in_the_payload(key: SigningKey, directory: Directory) -> None:
    envelope = signed(key)
    raw = bytearray(base64.b64decode(envelope["payload"]))
    raw[10] ^= 1
    envelope["payload"] = base64.b64encode(bytes(raw)).decode()
    expect("signature", envelope, directory)


def test_wrong_signer_key(key: SigningKey, directory: Directory) -> None:
    """Someone signs with their own key but names the published key of the real signer."""
    intruder = generate_signing_key()
    envelope = signed(intruder)
    envelope["signatures"][0]["keyid"] = f"{SIGNER}#{key.kid}"
    expect("signature", envelope, directory)


def test_unknown_key_id_and_unresolvable_signer(key: SigningKey, directory: Directory) -> None:
    intruder = generate_signing_key()
    err = expect("signer", signed(intruder), directory)  # its kid is not in the signer's document
    assert intruder.kid in str(err)
    expect("signer", signed(key, signer=OTHER), directory)  # the DID does not resolve
    directory.documents[OTHER] = directory.documents[SIGNER]  # ... or resolves to another DID's document
    expect("signer", signed(key, signer=OTHER), directory)


def test_wrong_digest(key: SigningKey, directory: Directory) -> None:
    err = expect("digest", signed(key), directory, "sha256:" + "9" * 64)
    assert "differs" in str(err)


@pytest.mark.parametrize("envelope", [None, {}, [], "text"], ids=["null", "empty", "list", "string"])
def test_empty_or_no_envelope(envelope: Any, directory: Directory) -> None:
    expect("envelope", envelope, directory)


def test_unsigned_envelope(key: SigningKey, directory: Directory) -> None:
    envelope = signed(key)
    envelope["signatures"] = []
    assert "unsigned" in str(expect("signature", envelope, directory))
    del envelope["signatures"]
    expect("signature", envelope, directory)


def test_wrong_payload_type(key: SigningKey, directory: Directory) -> None:
    envelope = signed(key)
    envelope["payloadType"] = "application/json"
    expect("envelope", envelope, directory)


def test_payload_type_is_bound_by_the_signature(key: SigningKey, directory: Directory) -> None:
    """PAE covers the type: a signature made for another type does not verify under the in-toto type."""
    envelope = signed(key)
    payload = base64.b64decode(envelope["payload"])
    other = key.private_key.sign(pae("application/json", payload), ec.ECDSA(hashes.SHA256()))
    envelope["signatures"][0]["sig"] = base64.b64encode(other).decode()
    expect("signature", envelope, directory)


def test_malformed_members(key: SigningKey, directory: Directory) -> None:
    envelope = signed(key)
    bad_payload = {**envelope, "payload": "***"}
    expect("envelope", bad_payload, directory)
    urlsafe = copy.deepcopy(envelope)
    urlsafe["signatures"][0]["sig"] = envelope["signatures"][0]["sig"].replace("+", "-").replace("/", "_") + "~"
    expect("signature", urlsafe, directory)
    bad_keyid = copy.deepcopy(envelope)
    bad_keyid["signatures"][0]["keyid"] = key.kid
    expect("signer", bad_keyid, directory)
    two = copy.deepcopy(envelope)
    two["signatures"].append(two["signatures"][0])
    expect("envelope", two, directory)


def test_provenance_checks(key: SigningKey, directory: Directory) -> None:
    base = signed(key)
    statement = json.loads(base64.b64decode(base["payload"]))
    cases = []
    wrong_type = copy.deepcopy(statement)
    wrong_type["predicateType"] = "https://example.com/other"
    cases.append(wrong_type)
    not_statement = copy.deepcopy(statement)
    not_statement["_type"] = "https://in-toto.io/Statement/v0.1"
    cases.append(not_statement)
    no_build = copy.deepcopy(statement)
    del no_build["predicate"]["buildDefinition"]
    cases.append(no_build)
    other_builder = copy.deepcopy(statement)
    other_builder["predicate"]["runDetails"]["builder"]["id"] = OTHER
    cases.append(other_builder)
    two_subjects = copy.deepcopy(statement)
    two_subjects["subject"].append(two_subjects["subject"][0])
    cases.append(two_subjects)
    bad_subject = copy.deepcopy(statement)
    bad_subject["subject"][0]["digest"] = {"sha512": "00"}
    cases.append(bad_subject)
    for case in cases:
        expect("provenance", resign(base, key, case), directory)


def test_verify_envelope_for_another_predicate_type(key: SigningKey, directory: Directory) -> None:
    statement = {"_type": "https://in-toto.io/Statement/v1", "subject": [], "predicateType": "urn:x",
                 "predicate": {"a": 1}}
    verified = verify_envelope(sign_statement(statement, key, SIGNER), directory, predicate_type="urn:x")
    assert verified.statement["predicate"] == {"a": 1} and verified.digest == ""
    with pytest.raises(SignatureCheckError) as caught:
        verify_envelope(sign_statement(statement, key, SIGNER), directory)
    assert caught.value.check == "provenance"


def test_bundle_statement_rejects_a_malformed_digest() -> None:
    with pytest.raises(ValueError, match="sha256:<64"):
        bundle_statement("x.tar.gz", "md5:abc", MANIFEST, SIGNER, started="", finished="")

import pytest

from identity.did_web import (
    DID_CONTEXTS,
    build_did_document,
    did_from_url,
    document_url_for_did,
    is_loopback_host,
    verification_jwk,
)
from identity.errors import InvalidDidError, UnknownKeyError
from identity.keys import generate_signing_key, public_jwk


@pytest.mark.parametrize(
    ("url", "did"),
    [
        ("http://localhost:8181", "did:web:localhost%3A8181"),
        ("http://localhost:8181/", "did:web:localhost%3A8181"),
        ("https://a.example/x/y", "did:web:a.example:x:y"),
        ("https://a.example/x/y/", "did:web:a.example:x:y"),
        ("https://A.Example", "did:web:a.example"),
        ("https://a.example:443/", "did:web:a.example"),
        ("https://a.example:8443/p", "did:web:a.example%3A8443:p"),
        ("http://127.0.0.1:9000", "did:web:127.0.0.1%3A9000"),
        ("http://[::1]:9000", "did:web:%5B%3A%3A1%5D%3A9000"),
    ],
)
def test_did_from_url(url, did):
    assert did_from_url(url) == did


@pytest.mark.parametrize(
    "url",
    ["ftp://a.example", "https://user@a.example", "https://a.example/?q=1", "https://a.example/#f",
     "https://a.example:99999", "https://", "https://a_b.example"],
)
def test_did_from_url_rejects_unusable_urls(url):
    with pytest.raises(InvalidDidError):
        did_from_url(url)


@pytest.mark.parametrize(
    ("did", "url"),
    [
        ("did:web:a.example", "https://a.example/.well-known/did.json"),
        ("did:web:a.example:x:y", "https://a.example/x/y/did.json"),
        ("did:web:a.example%3A8443", "https://a.example:8443/.well-known/did.json"),
        ("did:web:a.example%3a8443:p", "https://a.example:8443/p/did.json"),
    ],
)
def test_document_url_for_did_uses_https(did, url):
    assert document_url_for_did(did, allow_http=False) == url
    assert document_url_for_did(did, allow_http=True) == url


@pytest.mark.parametrize(
    ("did", "url"),
    [
        ("did:web:localhost%3A8181", "http://localhost:8181/.well-known/did.json"),
        ("did:web:127.0.0.1%3A8181:p", "http://127.0.0.1:8181/p/did.json"),
        ("did:web:127.5.6.7", "http://127.5.6.7/.well-known/did.json"),
        ("did:web:%5B%3A%3A1%5D%3A9000", "http://[::1]:9000/.well-known/did.json"),
    ],
)
def test_http_is_used_only_for_loopback_hosts_when_allowed(did, url):
    assert document_url_for_did(did, allow_http=True) == url
    assert document_url_for_did(did, allow_http=False) == url.replace("http://", "https://", 1)


@pytest.mark.parametrize(
    "did", ["did:web:10.0.0.1%3A80", "did:web:localhost.evil.example", "did:web:a.example"]
)
def test_http_is_refused_for_non_loopback_hosts_even_when_allowed(did):
    assert document_url_for_did(did, allow_http=True).startswith("https://")


@pytest.mark.parametrize(
    "did",
    [
        "did:key:z6Mk",
        "did:web:",
        "did:web:a.example::x",
        "did:web:a.example%2Fevil",
        "did:web:user%40a.example",
        "did:web:a.example%3Aport",
        "did:web:a.example:..",
        "did:web:a.example:%2E%2E",
        "did:web:a.example:x%2Fy",
        "did:web:a.example#frag",
        "did:web:a.example?q",
        "did:web:a example",
    ],
)
def test_invalid_dids_are_rejected(did):
    with pytest.raises(InvalidDidError) as info:
        document_url_for_did(did, allow_http=True)

    assert info.value.did == did


def test_is_loopback_host():
    assert is_loopback_host("localhost")
    assert is_loopback_host("127.0.0.2")
    assert is_loopback_host("::1")
    assert not is_loopback_host("localhost.example")
    assert not is_loopback_host("192.168.1.1")


def test_url_to_did_to_url_round_trip():
    did = did_from_url("http://localhost:8181/connector")

    assert document_url_for_did(did, allow_http=True) == "http://localhost:8181/connector/did.json"


def _document():
    key = generate_signing_key()
    did = "did:web:localhost%3A8181"
    document = build_did_document(did, public_jwk(key), service_endpoints={"DataService": "http://localhost:8181/dsp"})
    return key, did, document


def test_built_document_has_contexts_key_relationships_and_services():
    key, did, document = _document()
    method_id = f"{did}#{key.kid}"

    assert document["@context"] == list(DID_CONTEXTS)
    assert document["id"] == did
    assert document["verificationMethod"] == [
        {"id": method_id, "type": "JsonWebKey2020", "controller": did, "publicKeyJwk": public_jwk(key)},
    ]
    assert document["authentication"] == [method_id]
    assert document["assertionMethod"] == [method_id]
    assert document["capabilityInvocation"] == [method_id]
    assert document["service"] == [
        {"id": f"{did}#DataService", "type": "DataService", "serviceEndpoint": "http://localhost:8181/dsp"},
    ]


def test_building_a_document_with_a_private_jwk_is_refused():
    key, did, _ = _document()

    with pytest.raises(ValueError, match="private"):
        build_did_document(did, {**public_jwk(key), "d": "secret"}, service_endpoints={})


@pytest.mark.parametrize("form", ["absolute", "relative", "fragment", "none"])
def test_verification_jwk_accepts_every_kid_form(form):
    key, did, document = _document()
    kid = {"absolute": f"{did}#{key.kid}", "relative": f"#{key.kid}", "fragment": key.kid, "none": None}[form]

    assert verification_jwk(document, kid) == public_jwk(key)


def test_verification_jwk_resolves_relative_method_ids_in_the_document():
    key, did, document = _document()
    document["verificationMethod"][0]["id"] = f"#{key.kid}"

    assert verification_jwk(document, f"{did}#{key.kid}") == public_jwk(key)


def test_verification_jwk_finds_methods_embedded_in_relationships():
    key, did, document = _document()
    document["authentication"] = [document.pop("verificationMethod")[0]]

    assert verification_jwk(document, key.kid) == public_jwk(key)


def test_verification_jwk_without_kid_needs_exactly_one_key():
    _, did, document = _document()
    other = generate_signing_key()
    method = {"id": f"{did}#{other.kid}", "type": "JsonWebKey2020", "controller": did,
              "publicKeyJwk": public_jwk(other)}
    document["verificationMethod"].append(method)

    with pytest.raises(UnknownKeyError, match="2 keys"):
        verification_jwk(document, None)
    assert verification_jwk(document, other.kid) == public_jwk(other)


@pytest.mark.parametrize("kid", ["other", "did:web:evil.example#KID", "#other"])
def test_verification_jwk_rejects_unknown_kids(kid):
    key, _, document = _document()

    with pytest.raises(UnknownKeyError) as info:
        verification_jwk(document, kid.replace("KID", key.kid))

    assert info.value.did == document["id"]


def test_verification_jwk_ignores_methods_of_another_did():
    key, _, document = _document()
    document["verificationMethod"][0]["id"] = f"did:web:evil.example#{key.kid}"

    with pytest.raises(UnknownKeyError):
        verification_jwk(document, f"did:web:evil.example#{key.kid}")


def test_verification_jwk_checks_the_relationship_when_asked():
    key, _, document = _document()
    document["capabilityInvocation"] = []

    assert verification_jwk(document, key.kid, relationship="authentication") == public_jwk(key)
    with pytest.raises(UnknownKeyError, match="capabilityInvocation"):
        verification_jwk(document, key.kid, relationship="capabilityInvocation")


def test_verification_method_without_jwk_is_unknown():
    key, _, document = _document()
    del document["verificationMethod"][0]["publicKeyJwk"]

    with pytest.raises(UnknownKeyError, match="publicKeyJwk"):
        verification_jwk(document, key.kid)

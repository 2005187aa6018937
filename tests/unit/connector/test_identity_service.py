import json
import threading
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from connector.identity_service import (
    MAX_DID_DOCUMENT_BYTES,
    DidIdentityService,
    DidResolver,
    InMemoryReplayGuard,
    Participant,
    StaticIdentityService,
)
from identity.did_web import build_did_document
from identity.errors import (
    AudienceMismatchError,
    DidResolutionError,
    InvalidCredentialsError,
    InvalidDidError,
    InvalidSignatureError,
    MalformedTokenError,
    MissingTokenError,
    ReplayedTokenError,
)
from identity.keys import generate_signing_key, public_jwk
from identity.tokens import issue_token

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
PEER_DID = "did:web:peer.example"
OWN_DID = "did:web:localhost%3A8181"


class FakeClock:
    def __init__(self, value=0.0):
        self.value = value

    def __call__(self):
        return self.value


class Server:
    """An httpx.MockTransport handler that serves DID documents by URL and counts requests."""

    def __init__(self, documents=None):
        self.documents = dict(documents or {})
        self.requests = []

    def __call__(self, request):
        self.requests.append(str(request.url))
        document = self.documents.get(str(request.url))
        if document is None:
            return httpx.Response(404)
        return httpx.Response(200, json=document)


def _resolver(server, clock=None, allow_http_loopback=True):
    client = httpx.Client(transport=httpx.MockTransport(server))
    return DidResolver(client, allow_http_loopback=allow_http_loopback, ttl_seconds=60,
                       clock=clock or FakeClock())


def _peer():
    key = generate_signing_key()
    return key, build_did_document(PEER_DID, public_jwk(key), service_endpoints={})


PEER_URL = "https://peer.example/.well-known/did.json"


# --- DidResolver -------------------------------------------------------------------------------------------


def test_resolver_fetches_the_document_from_the_did_web_url():
    _, document = _peer()
    server = Server({PEER_URL: document})

    assert _resolver(server).resolve(PEER_DID) == document
    assert server.requests == [PEER_URL]


def test_second_resolve_within_ttl_is_served_from_cache():
    _, document = _peer()
    server = Server({PEER_URL: document})
    clock = FakeClock(100.0)
    resolver = _resolver(server, clock)

    resolver.resolve(PEER_DID)
    clock.value = 159.0
    resolver.resolve(PEER_DID)

    assert server.requests == [PEER_URL]


def test_resolve_after_ttl_fetches_again():
    _, document = _peer()
    server = Server({PEER_URL: document})
    clock = FakeClock(100.0)
    resolver = _resolver(server, clock)

    resolver.resolve(PEER_DID)
    clock.value = 161.0
    resolver.resolve(PEER_DID)

    assert server.requests == [PEER_URL, PEER_URL]


def test_cached_document_cannot_be_changed_through_a_returned_copy():
    _, document = _peer()
    resolver = _resolver(Server({PEER_URL: document}))

    resolver.resolve(PEER_DID)["verificationMethod"].clear()

    assert resolver.resolve(PEER_DID) == document


def test_not_found_raises_did_resolution_error_with_url_and_status():
    with pytest.raises(DidResolutionError) as info:
        _resolver(Server()).resolve(PEER_DID)

    assert (info.value.did, info.value.url, info.value.status_code) == (PEER_DID, PEER_URL, 404)


def test_failures_are_not_cached():
    _, document = _peer()
    server = Server()
    resolver = _resolver(server)
    with pytest.raises(DidResolutionError):
        resolver.resolve(PEER_DID)

    server.documents[PEER_URL] = document

    assert resolver.resolve(PEER_DID) == document


def test_transport_error_raises_did_resolution_error_without_status():
    def refuse(request):
        raise httpx.ConnectError("refused", request=request)

    resolver = DidResolver(httpx.Client(transport=httpx.MockTransport(refuse)), allow_http_loopback=False)

    with pytest.raises(DidResolutionError) as info:
        resolver.resolve(PEER_DID)

    assert info.value.status_code is None
    assert "ConnectError" in info.value.reason


def test_redirects_are_not_followed():
    server = Server()

    def redirect(request):
        server.requests.append(str(request.url))
        return httpx.Response(302, headers={"Location": "https://evil.example/did.json"})

    resolver = DidResolver(httpx.Client(transport=httpx.MockTransport(redirect)), allow_http_loopback=False)

    with pytest.raises(DidResolutionError) as info:
        resolver.resolve(PEER_DID)

    assert info.value.status_code == 302
    assert server.requests == [PEER_URL]


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"not json", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (json.dumps({"id": "did:web:other.example"}).encode(), "differs"),
        (b" " * (MAX_DID_DOCUMENT_BYTES + 1), "exceeds"),
    ],
)
def test_unusable_documents_are_rejected(body, reason):
    transport = httpx.MockTransport(lambda request: httpx.Response(200, content=body))
    resolver = DidResolver(httpx.Client(transport=transport), allow_http_loopback=False)

    with pytest.raises(DidResolutionError, match=reason):
        resolver.resolve(PEER_DID)


def test_loopback_did_is_fetched_over_http_when_allowed():
    document = {"id": OWN_DID}
    server = Server({"http://localhost:8181/.well-known/did.json": document})

    assert _resolver(server, allow_http_loopback=True).resolve(OWN_DID) == document


def test_loopback_did_is_fetched_over_https_when_http_is_not_allowed():
    server = Server()

    with pytest.raises(DidResolutionError):
        _resolver(server, allow_http_loopback=False).resolve(OWN_DID)

    assert server.requests == ["https://localhost:8181/.well-known/did.json"]


def test_http_is_refused_for_non_loopback_hosts():
    did = "did:web:10.1.2.3%3A8181"
    server = Server({"http://10.1.2.3:8181/.well-known/did.json": {"id": did}})

    with pytest.raises(DidResolutionError):
        _resolver(server, allow_http_loopback=True).resolve(did)

    assert server.requests == ["https://10.1.2.3:8181/.well-known/did.json"]


def test_invalid_did_is_refused_before_any_request():
    server = Server()

    with pytest.raises(InvalidDidError):
        _resolver(server).resolve("did:web:evil.example%2Fpath")

    assert server.requests == []


def test_seeded_document_is_returned_without_fetching_and_never_expires():
    server = Server()
    clock = FakeClock()
    resolver = _resolver(server, clock)
    resolver.seed(OWN_DID, {"id": OWN_DID})

    clock.value = 10_000.0

    assert resolver.resolve(OWN_DID) == {"id": OWN_DID}
    assert server.requests == []


def test_seeding_a_document_for_another_did_is_refused():
    with pytest.raises(ValueError):
        _resolver(Server()).seed(OWN_DID, {"id": PEER_DID})


# --- InMemoryReplayGuard -----------------------------------------------------------------------------------


def test_replay_guard_refuses_a_seen_jti_until_it_expires():
    now = [NOW]
    guard = InMemoryReplayGuard(now=lambda: now[0])

    assert guard.remember("a", NOW + timedelta(seconds=60)) is True
    assert guard.remember("a", NOW + timedelta(seconds=60)) is False
    assert guard.remember("b", NOW + timedelta(seconds=60)) is True

    now[0] = NOW + timedelta(seconds=61)

    assert guard.remember("a", NOW + timedelta(seconds=120)) is True


def test_replay_guard_accepts_a_jti_once_under_concurrency():
    guard = InMemoryReplayGuard(now=lambda: NOW)
    results = []
    barrier = threading.Barrier(8)

    def attempt():
        barrier.wait()
        results.append(guard.remember("same", NOW + timedelta(seconds=60)))

    threads = [threading.Thread(target=attempt) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(results) == [False] * 7 + [True]


# --- DidIdentityService ------------------------------------------------------------------------------------


class Documents:
    def __init__(self, *documents):
        self.by_did = {document["id"]: document for document in documents}
        self.resolved = []

    def resolve(self, did):
        self.resolved.append(did)
        if did not in self.by_did:
            raise DidResolutionError(did, "https://x", "not found", 404)
        return self.by_did[did]


def _services():
    own_key = generate_signing_key()
    peer_key, peer_document = _peer()
    own_document = build_did_document(OWN_DID, public_jwk(own_key), service_endpoints={})
    documents = Documents(own_document, peer_document)
    ours = DidIdentityService(own_key, OWN_DID, documents, InMemoryReplayGuard(lambda: NOW), lambda: NOW)
    peers = DidIdentityService(peer_key, PEER_DID, documents, InMemoryReplayGuard(lambda: NOW), lambda: NOW)
    return ours, peers, peer_key, documents


def test_outbound_authorization_is_a_bearer_token_for_the_audience():
    ours, peers, _, _ = _services()

    header = peers.outbound_authorization(OWN_DID)

    assert header.startswith("Bearer ")
    assert ours.authenticate(header) == Participant(id=PEER_DID)


def test_authenticate_resolves_the_issuer_did():
    ours, peers, _, documents = _services()

    ours.authenticate(peers.outbound_authorization(OWN_DID))

    assert documents.resolved == [PEER_DID]


def test_lowercase_bearer_scheme_is_accepted():
    ours, peers, _, _ = _services()
    token = peers.outbound_authorization(OWN_DID).removeprefix("Bearer ")

    assert ours.authenticate(f"bearer {token}").id == PEER_DID


def test_replayed_token_is_rejected():
    ours, peers, _, _ = _services()
    header = peers.outbound_authorization(OWN_DID)
    ours.authenticate(header)

    with pytest.raises(ReplayedTokenError) as info:
        ours.authenticate(header)

    assert info.value.issuer == PEER_DID


def test_token_for_another_audience_is_rejected():
    ours, peers, _, _ = _services()

    with pytest.raises(AudienceMismatchError):
        ours.authenticate(peers.outbound_authorization("did:web:third.example"))


def test_token_without_bearer_prefix_is_rejected():
    ours, peers, _, _ = _services()

    with pytest.raises(MalformedTokenError):
        ours.authenticate(peers.outbound_authorization(OWN_DID).removeprefix("Bearer "))


@pytest.mark.parametrize("value", [None, "", "   "])
def test_missing_authorization_is_rejected(value):
    ours, _, _, _ = _services()

    with pytest.raises(MissingTokenError):
        ours.authenticate(value)


def test_token_signed_by_a_stranger_for_the_peer_did_is_rejected():
    ours, _, peer_key, _ = _services()
    stranger = generate_signing_key()
    forged = issue_token(stranger, issuer=PEER_DID, audience=OWN_DID, now=NOW).split(".")
    genuine_header = issue_token(peer_key, issuer=PEER_DID, audience=OWN_DID, now=NOW).split(".")[0]

    with pytest.raises(InvalidSignatureError):
        ours.authenticate(f"Bearer {genuine_header}.{forged[1]}.{forged[2]}")


def test_unresolvable_issuer_is_rejected():
    ours, _, _, _ = _services()
    stranger = generate_signing_key()

    with pytest.raises(DidResolutionError):
        token = issue_token(stranger, issuer="did:web:unknown.example", audience=OWN_DID, now=NOW)
        ours.authenticate(f"Bearer {token}")


# --- StaticIdentityService ---------------------------------------------------------------------------------


def test_static_service_sends_exactly_the_configured_value():
    service = StaticIdentityService("tck-token", "did:web:tck")

    assert service.outbound_authorization("did:web:anyone") == "tck-token"


def test_static_service_accepts_exactly_the_configured_value():
    service = StaticIdentityService("tck-token", "did:web:tck")

    assert service.authenticate("tck-token") == Participant(id="did:web:tck")


@pytest.mark.parametrize("value", ["Bearer tck-token", "tck-token ", "TCK-TOKEN", "other", "tck-tokenx"])
def test_static_service_rejects_any_other_value(value):
    service = StaticIdentityService("tck-token", "did:web:tck")

    with pytest.raises(InvalidCredentialsError):
        service.authenticate(value)


@pytest.mark.parametrize("value", [None, ""])
def test_static_service_rejects_a_missing_header(value):
    with pytest.raises(MissingTokenError):
        StaticIdentityService("tck-token", "did:web:tck").authenticate(value)


def test_static_service_refuses_an_empty_token():
    with pytest.raises(ValueError):
        StaticIdentityService("", "did:web:tck")

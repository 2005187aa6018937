"""The DSP edge of a real connector: tokens, malformed and schema-violating messages, foreign processes."""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from connector.localnet import ConnectorProcess
from identity.keys import generate_signing_key
from identity.tokens import issue_token
from tests.e2e.conftest import DSP_CONTEXT, Peer, negotiate, publish

pytestmark = pytest.mark.e2e

CATALOG_REQUEST = {"@context": DSP_CONTEXT, "@type": "CatalogRequestMessage"}


@pytest.fixture
def trio(spawn: Callable[..., ConnectorProcess]) -> tuple[ConnectorProcess, ConnectorProcess, ConnectorProcess]:
    return spawn("provider"), spawn("consumer"), spawn("intruder")


def _contract_request(consumer_pid: str, offer: dict[str, Any], callback: str) -> dict[str, Any]:
    return {"@context": DSP_CONTEXT, "@type": "ContractRequestMessage", "consumerPid": consumer_pid,
            "callbackAddress": callback, "offer": offer}


def _state_counts(provider: ConnectorProcess) -> int:
    m = provider.management()
    return len(m.ok(m.post("/v3/contractnegotiations/request", {})))  # type: ignore[arg-type]


def test_version_endpoint_is_unauthenticated_plain_json(trio: tuple[ConnectorProcess, ...]) -> None:
    provider = trio[0]
    body = httpx.get(provider.url + "/.well-known/dspace-version").json()
    assert body == {"protocolVersions": [{"version": "2025-1", "path": "/api/dsp/2025-1", "binding": "HTTPS",
                                          "serviceId": provider.did + "#dsp", "identifierType": "did:web"}]}
    assert httpx.get(provider.url + "/.well-known/did.json").json()["id"] == provider.did


def test_an_idle_connection_outlasts_the_clients_keep_alive(spawn: Callable[..., ConnectorProcess]) -> None:
    """httpx reuses an idle connection for 5 s. Had we closed it at the same moment, as uvicorn's default did, a
    request sent just then would be lost to "connection reset"; so our side must keep it open longer."""
    connector = spawn("provider")
    connection = http.client.HTTPConnection("127.0.0.1", connector.port, timeout=10)
    try:
        for pause in (0.0, 6.0):  # the second request on the same connection, after more than 5 s idle
            time.sleep(pause)
            connection.request("GET", "/.well-known/dspace-version")  # raises if we had closed the connection
            response = connection.getresponse()
            assert response.status == 200 and b"2025-1" in response.read()
    finally:
        connection.close()


def test_tokens_missing_expired_replayed_foreign_or_misaddressed_are_refused(
        trio: tuple[ConnectorProcess, ...]) -> None:
    provider, consumer, _ = trio
    peer = Peer(consumer, provider)
    assert peer.post("/catalog/request", CATALOG_REQUEST).status_code == 200

    missing = httpx.post(provider.dsp_url + "/catalog/request", json=CATALOG_REQUEST)
    assert missing.status_code == 401 and missing.json()["@type"] == "CatalogError"

    expired = peer.token(now=datetime.now(UTC) - timedelta(hours=1), ttl=60)
    assert peer.post("/catalog/request", CATALOG_REQUEST, token=expired).status_code == 401

    once = peer.token()
    assert peer.post("/catalog/request", CATALOG_REQUEST, token=once).status_code == 200
    replay = peer.post("/catalog/request", CATALOG_REQUEST, token=once)
    assert replay.status_code == 401 and "already used" in json.dumps(replay.json())

    forged = issue_token(generate_signing_key(), issuer=consumer.did, audience=provider.did,
                         now=datetime.now(UTC))
    assert peer.post("/catalog/request", CATALOG_REQUEST, token=forged).status_code == 401

    elsewhere = peer.token(audience="did:web:someone-else.example")
    assert peer.post("/catalog/request", CATALOG_REQUEST, token=elsewhere).status_code == 401


@pytest.mark.parametrize(("raw", "fragment"), [
    (b"{not json", "not valid JSON"),
    (json.dumps({"@context": DSP_CONTEXT, "@type": "ContractOfferMessage"}).encode(), "@type"),
    (json.dumps({"@context": DSP_CONTEXT, "@type": "ContractRequestMessage", "consumerPid": "urn:uuid:1",
                 "offer": {"@id": "x", "@type": "Offer", "target": "asset-1", "permission": [{"action": "use"}]}}
                ).encode(), "callbackAddress"),
    (json.dumps({"@context": ["https://example.org/unknown-context.jsonld"], "@type": "ContractRequestMessage"}
                ).encode(), "unknown-context"),
])
def test_bad_messages_get_a_dsp_error_and_change_nothing(trio: tuple[ConnectorProcess, ...], raw: bytes,
                                                          fragment: str) -> None:
    provider, consumer, _ = trio
    publish(provider)
    before = _state_counts(provider)
    response = Peer(consumer, provider).post("/negotiations/request", None, raw=raw)
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["@type"] == "ContractNegotiationError"
    assert fragment.lower() in json.dumps(body).lower()
    assert _state_counts(provider) == before


def test_body_over_the_limit_is_refused(trio: tuple[ConnectorProcess, ...]) -> None:
    provider, consumer, _ = trio
    huge = {**CATALOG_REQUEST, "padding": "x" * (1024 * 1024 + 10)}
    response = Peer(consumer, provider).post("/catalog/request", huge)
    assert response.status_code == 413 and response.json()["@type"] == "CatalogError"


def test_request_is_idempotent_on_consumer_pid_and_unknown_offer_is_refused(
        trio: tuple[ConnectorProcess, ...]) -> None:
    provider, consumer, _ = trio
    publish(provider)
    peer = Peer(consumer, provider)
    catalog = peer.post("/catalog/request", CATALOG_REQUEST).json()
    offer = {**catalog["dataset"][0]["hasPolicy"][0], "target": "asset-1"}
    message = _contract_request("urn:uuid:idem-1", offer, consumer.dsp_url)
    first = peer.post("/negotiations/request", message)
    again = peer.post("/negotiations/request", message)
    assert first.status_code == 201 and again.status_code == 201
    assert first.json()["providerPid"] == again.json()["providerPid"]

    unknown = _contract_request("urn:uuid:idem-2", {**offer, "@id": "bm86:Ym8=:MA"}, consumer.dsp_url)
    refused = peer.post("/negotiations/request", unknown)
    assert refused.status_code == 400 and "not in our catalog" in refused.text


def test_a_replayed_token_changes_nothing_even_on_a_message_that_would(trio: tuple[ConnectorProcess, ...]) -> None:
    """A state-changing message records its token id with its message id, or at commit when it has none; a token
    seen before is refused either way, and what the handler had done by then is rolled back."""
    provider, consumer, _ = trio
    publish(provider)
    peer = Peer(consumer, provider)
    catalog = peer.post("/catalog/request", CATALOG_REQUEST).json()
    offer = {**catalog["dataset"][0]["hasPolicy"][0], "target": "asset-1"}
    token = peer.token()
    first = _contract_request("urn:uuid:replay-1", offer, consumer.dsp_url)
    assert peer.post("/negotiations/request", {**first, "@id": "urn:uuid:m-1"}, token=token).status_code == 201
    before = _state_counts(provider)
    for message in ({**_contract_request("urn:uuid:replay-2", offer, consumer.dsp_url), "@id": "urn:uuid:m-2"},
                    _contract_request("urn:uuid:replay-3", offer, consumer.dsp_url)):  # with and without an @id
        replay = peer.post("/negotiations/request", message, token=token)
        assert replay.status_code == 401 and "already used" in json.dumps(replay.json()), replay.text
        assert replay.json()["@type"] == "ContractNegotiationError"
    assert _state_counts(provider) == before
    fresh = peer.post("/negotiations/request", _contract_request("urn:uuid:replay-2", offer, consumer.dsp_url))
    assert fresh.status_code == 201 and _state_counts(provider) == before + 1  # the refused one left no row behind


def test_another_participants_process_does_not_exist(trio: tuple[ConnectorProcess, ...]) -> None:
    provider, consumer, intruder = trio
    publish(provider, auto_agree=False)
    c = consumer.management()
    negotiation_id = negotiate(c, provider, "asset-1")
    c.wait_state(f"/v3/contractnegotiations/{negotiation_id}", {"REQUESTED"})
    provider_pid = c.ok(c.get(f"/v3/contractnegotiations/{negotiation_id}"))["correlationId"]

    assert Peer(consumer, provider).get(f"/negotiations/{provider_pid}").status_code == 200
    foreign = Peer(intruder, provider)
    assert foreign.get(f"/negotiations/{provider_pid}").status_code == 404
    termination = {"@context": DSP_CONTEXT, "@type": "ContractNegotiationTerminationMessage",
                   "providerPid": provider_pid, "consumerPid": negotiation_id}
    assert foreign.post(f"/negotiations/{provider_pid}/termination", termination).status_code == 404
    assert c.ok(c.get(f"/v3/contractnegotiations/{negotiation_id}"))["state"] == "REQUESTED"


def test_invalid_transition_is_400_and_trailing_slash_is_tolerated(trio: tuple[ConnectorProcess, ...]) -> None:
    provider, consumer, _ = trio
    publish(provider, auto_agree=False)
    c = consumer.management()
    negotiation_id = negotiate(c, provider, "asset-1")
    c.wait_state(f"/v3/contractnegotiations/{negotiation_id}", {"REQUESTED"})
    provider_pid = c.ok(c.get(f"/v3/contractnegotiations/{negotiation_id}"))["correlationId"]
    verification = {"@context": DSP_CONTEXT, "@type": "ContractAgreementVerificationMessage",
                    "providerPid": provider_pid, "consumerPid": negotiation_id}
    peer = Peer(consumer, provider)
    response = peer.post(f"/negotiations/{provider_pid}/agreement/verification/", verification)
    assert response.status_code == 400
    assert response.json()["@type"] == "ContractNegotiationError"
    assert response.json()["providerPid"] == provider_pid
    assert peer.get(f"/negotiations/{provider_pid}/").json()["state"] == "REQUESTED"


def test_unknown_dataset_and_unsupported_filter(trio: tuple[ConnectorProcess, ...]) -> None:
    provider, consumer, _ = trio
    publish(provider)
    peer = Peer(consumer, provider)
    missing = peer.get("/catalog/datasets/no-such-dataset")
    assert missing.status_code == 404 and missing.json()["@type"] == "CatalogError"
    assert peer.get("/catalog/datasets/asset-1").json()["@id"] == "asset-1"
    filtered = peer.post("/catalog/request", {**CATALOG_REQUEST, "filter": [{"name": "x"}]})
    assert filtered.status_code == 400


def test_catalog_pages_follow_link_headers(trio: tuple[ConnectorProcess, ...]) -> None:
    provider, consumer, _ = trio
    m = provider.management()
    m.ok(m.post("/v3/policydefinitions", {"@id": "all", "policy": {"@type": "Set", "permission": [{"action": "use"}]}}))
    for i in range(7):
        m.ok(m.post("/v3/assets", {"@id": f"a{i}", "properties": {},
                                   "dataAddress": {"type": "File", "path": str(provider.file_root / f"a{i}")}}))
    m.ok(m.post("/v3/contractdefinitions", {"@id": "cd", "accessPolicyId": "all", "contractPolicyId": "all",
                                            "assetsSelector": []}))
    peer = Peer(consumer, provider)
    seen: list[str] = []
    url = "/catalog/request?pageSize=3"
    while True:
        page = peer.post(url, CATALOG_REQUEST)
        seen += [d["@id"] for d in page.json().get("dataset", [])]
        links = httpx.Response(200, headers=page.headers).links
        if "next" not in links:
            break
        url = links["next"]["url"].removeprefix(provider.dsp_url)
    assert seen == [f"a{i}" for i in range(7)]

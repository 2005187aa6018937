"""Two real connectors on loopback: catalog, negotiation, transfers, termination, approval, crash recovery."""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from connector.localnet import ConnectorProcess, free_port
from tests.e2e.conftest import finalized_agreement, first_offer, negotiate, publish, start_transfer

pytestmark = pytest.mark.e2e


def edr(consumer: Any, transfer_id: str) -> dict[str, Any]:
    return consumer.ok(consumer.get(f"/v3/edrs/{transfer_id}/dataaddress"))


def fetch(address: dict[str, Any], **kwargs: Any) -> httpx.Response:
    return httpx.get(address["endpoint"], headers={"Authorization": address["authorization"],
                                                   **kwargs.pop("headers", {})}, timeout=30, **kwargs)


def test_catalog_negotiation_and_pull_transfer_deliver_equal_bytes(pair: tuple[ConnectorProcess, ...]) -> None:
    provider, consumer = pair
    content = os.urandom(3 * 1024 * 1024 + 17)
    publish(provider, asset_id="big", content=content)
    c = consumer.management()

    agreement_id = finalized_agreement(c, provider, "big")
    agreement = c.ok(c.get(f"/v3/contractagreements/{agreement_id}"))
    assert agreement["assetId"] == "big" and agreement["providerId"] == provider.did

    transfer_id = start_transfer(c, provider, agreement_id)
    c.wait_state(f"/v3/transferprocesses/{transfer_id}", {"STARTED"})
    address = edr(c, transfer_id)
    response = fetch(address)
    assert response.status_code == 200
    assert hashlib.sha256(response.content).digest() == hashlib.sha256(content).digest()

    partial = fetch(address, headers={"Range": "bytes=100-199"})
    assert partial.status_code == 206 and partial.content == content[100:200]


def test_provider_state_matches_consumer_state_after_finalize(pair: tuple[ConnectorProcess, ...]) -> None:
    provider, consumer = pair
    publish(provider)
    c, p = consumer.management(), provider.management()
    negotiation_id = negotiate(c, provider, "asset-1")
    final = c.wait_state(f"/v3/contractnegotiations/{negotiation_id}", {"FINALIZED"})
    query = {"filterExpression": [{"operandLeft": "correlationId", "operator": "=", "operandRight": negotiation_id}]}
    provider_side = p.ok(p.post("/v3/contractnegotiations/request", query))
    assert len(provider_side) == 1
    # The provider shows FINALIZING until its outbox records the consumer's acknowledgement of the event.
    provider_final = p.wait_state(f"/v3/contractnegotiations/{provider_side[0]['@id']}", {"FINALIZED"})
    assert provider_final["state"] == "FINALIZED"
    assert provider_side[0]["contractAgreementId"] == final["contractAgreementId"]


def test_manual_approval_waits_for_the_operator(pair: tuple[ConnectorProcess, ...]) -> None:
    provider, consumer = pair
    publish(provider, auto_agree=False)
    c, p = consumer.management(), provider.management()
    negotiation_id = negotiate(c, provider, "asset-1")
    c.wait_state(f"/v3/contractnegotiations/{negotiation_id}", {"REQUESTED"})
    time.sleep(0.5)
    assert c.ok(c.get(f"/v3/contractnegotiations/{negotiation_id}"))["state"] == "REQUESTED"
    provider_id = p.ok(p.post("/v3/contractnegotiations/request", {}))[0]["@id"]
    p.ok(p.post(f"/v3/contractnegotiations/{provider_id}/approve"))
    c.wait_state(f"/v3/contractnegotiations/{negotiation_id}", {"FINALIZED"})


def test_provider_declines_and_consumer_sees_termination(pair: tuple[ConnectorProcess, ...]) -> None:
    provider, consumer = pair
    publish(provider, auto_agree=False)
    c, p = consumer.management(), provider.management()
    negotiation_id = negotiate(c, provider, "asset-1")
    c.wait_state(f"/v3/contractnegotiations/{negotiation_id}", {"REQUESTED"})
    provider_id = p.ok(p.post("/v3/contractnegotiations/request", {}))[0]["@id"]
    p.ok(p.post(f"/v3/contractnegotiations/{provider_id}/decline", {"reason": "not for this purpose"}))
    terminated = c.wait_state(f"/v3/contractnegotiations/{negotiation_id}", {"TERMINATED"})
    assert "not for this purpose" in (terminated.get("errorDetail") or "")


def test_consumer_terminates_and_provider_sees_it(pair: tuple[ConnectorProcess, ...]) -> None:
    provider, consumer = pair
    publish(provider, auto_agree=False)
    c, p = consumer.management(), provider.management()
    negotiation_id = negotiate(c, provider, "asset-1")
    c.wait_state(f"/v3/contractnegotiations/{negotiation_id}", {"REQUESTED"})
    c.ok(c.post(f"/v3/contractnegotiations/{negotiation_id}/terminate", {"reason": "changed my mind"}))
    c.wait_state(f"/v3/contractnegotiations/{negotiation_id}", {"TERMINATED"})
    provider_id = p.ok(p.post("/v3/contractnegotiations/request", {}))[0]["@id"]
    p.wait_state(f"/v3/contractnegotiations/{provider_id}", {"TERMINATED"})


def test_counter_offer_then_accept_reaches_finalized(pair: tuple[ConnectorProcess, ...]) -> None:
    provider, consumer = pair
    publish(provider, auto_agree=False)
    c, p = consumer.management(), provider.management()
    negotiation_id = negotiate(c, provider, "asset-1")
    c.wait_state(f"/v3/contractnegotiations/{negotiation_id}", {"REQUESTED"})
    provider_id = p.ok(p.post("/v3/contractnegotiations/request", {}))[0]["@id"]
    counter = {"@type": "Offer", "permission": [{"action": "use", "constraint": [
        {"leftOperand": "dateTime", "operator": "lteq", "rightOperand": "2099-12-31T00:00:00Z"}]}]}
    p.ok(p.post(f"/v3/contractnegotiations/{provider_id}/counteroffer", {"policy": counter}))
    c.wait_state(f"/v3/contractnegotiations/{negotiation_id}", {"OFFERED"})
    c.ok(c.post(f"/v3/contractnegotiations/{negotiation_id}/accept"))
    final = c.wait_state(f"/v3/contractnegotiations/{negotiation_id}", {"FINALIZED", "TERMINATED"})
    assert final["state"] == "FINALIZED", final
    agreement = c.ok(c.get(f"/v3/contractagreements/{final['contractAgreementId']}"))
    assert agreement["policy"]["permission"][0]["constraint"][0]["rightOperand"] == "2099-12-31T00:00:00Z"


def test_suspend_revokes_access_and_resume_restores_it(pair: tuple[ConnectorProcess, ...]) -> None:
    provider, consumer = pair
    publish(provider, content=b"x" * 1000)
    c, p = consumer.management(), provider.management()
    transfer_id = start_transfer(c, provider, finalized_agreement(c, provider, "asset-1"))
    c.wait_state(f"/v3/transferprocesses/{transfer_id}", {"STARTED"})
    assert fetch(edr(c, transfer_id)).status_code == 200

    provider_tp = p.ok(p.post("/v3/transferprocesses/request", {}))[0]["@id"]
    p.ok(p.post(f"/v3/transferprocesses/{provider_tp}/suspend", {"reason": "maintenance"}))
    c.wait_state(f"/v3/transferprocesses/{transfer_id}", {"SUSPENDED"})
    assert fetch(edr(c, transfer_id)).status_code in (401, 403)

    p.ok(p.post(f"/v3/transferprocesses/{provider_tp}/resume"))
    c.wait_state(f"/v3/transferprocesses/{transfer_id}", {"STARTED"})
    assert fetch(edr(c, transfer_id)).content == b"x" * 1000

    # the consumer suspends and resumes too
    c.ok(c.post(f"/v3/transferprocesses/{transfer_id}/suspend", {"reason": "pause"}))
    p.wait_state(f"/v3/transferprocesses/{provider_tp}", {"SUSPENDED"})
    c.ok(c.post(f"/v3/transferprocesses/{transfer_id}/resume"))
    p.wait_state(f"/v3/transferprocesses/{provider_tp}", {"STARTED"})

    c.ok(c.post(f"/v3/transferprocesses/{transfer_id}/terminate", {"reason": "done"}))
    p.wait_state(f"/v3/transferprocesses/{provider_tp}", {"TERMINATED"})
    assert fetch(edr(c, transfer_id)).status_code in (401, 403)


class _Sink(BaseHTTPRequestHandler):
    received: dict[str, bytes] = {}

    def do_POST(self) -> None:  # noqa: N802 - http.server naming
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = bytearray()
            while True:
                size = int(self.rfile.readline().strip(), 16)
                if size == 0:
                    self.rfile.readline()
                    break
                data += self.rfile.read(size)
                self.rfile.readline()
        else:
            data = bytearray(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        _Sink.received[self.path] = bytes(data)
        _Sink.received["auth:" + self.path] = (self.headers.get("Authorization") or "").encode()
        self.send_response(200)
        self.end_headers()

    do_PUT = do_POST  # noqa: N815

    def log_message(self, *args: Any) -> None:
        pass


def test_push_transfer_streams_to_the_consumer_sink_and_completes(pair: tuple[ConnectorProcess, ...]) -> None:
    provider, consumer = pair
    content = os.urandom(512 * 1024)
    publish(provider, content=content)
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), _Sink)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        c = consumer.management()
        destination = {"type": "HttpData", "baseUrl": f"http://127.0.0.1:{server.server_port}/inbox/data.bin",
                       "authKey": "Authorization", "authCode": "secret-sink-token"}
        transfer_id = start_transfer(c, provider, finalized_agreement(c, provider, "asset-1"),
                                     transfer_type="HttpData-PUSH", destination=destination)
        done = c.wait_state(f"/v3/transferprocesses/{transfer_id}", {"COMPLETED", "TERMINATED"}, timeout=60)
        assert done["state"] == "COMPLETED", done
        assert _Sink.received["/inbox/data.bin"] == content
        assert _Sink.received["auth:/inbox/data.bin"] == b"secret-sink-token"
    finally:
        server.shutdown()


def test_negotiation_survives_kill_9_of_the_provider(spawn: Callable[..., ConnectorProcess]) -> None:
    provider, consumer = spawn("provider"), spawn("consumer")
    publish(provider)
    c = consumer.management()
    offer = first_offer(c, provider, "asset-1")
    provider.kill()
    negotiation: Any = c.ok(c.post("/v3/contractnegotiations", {
        "counterPartyAddress": provider.dsp_url, "counterPartyId": provider.did, "policy": offer}))
    time.sleep(1.0)  # the consumer's request fails and is retried with backoff
    assert c.ok(c.get(f"/v3/contractnegotiations/{negotiation['@id']}"))["state"] == "REQUESTING"
    provider.start()
    final = c.wait_state(f"/v3/contractnegotiations/{negotiation['@id']}", {"FINALIZED", "TERMINATED"}, timeout=60)
    assert final["state"] == "FINALIZED", final
    _assert_each_transition_once(c, negotiation["@id"])


def test_negotiation_survives_kill_9_of_the_consumer_mid_flight(spawn: Callable[..., ConnectorProcess]) -> None:
    provider = spawn("provider")
    consumer = spawn("consumer")
    publish(provider, auto_agree=False)
    c, p = consumer.management(), provider.management()
    negotiation_id = negotiate(c, provider, "asset-1")
    c.wait_state(f"/v3/contractnegotiations/{negotiation_id}", {"REQUESTED"})
    consumer.kill()  # the provider now owes an agreement to a consumer that is down
    provider_id = p.ok(p.post("/v3/contractnegotiations/request", {}))[0]["@id"]
    p.ok(p.post(f"/v3/contractnegotiations/{provider_id}/approve"))
    time.sleep(1.0)
    consumer.start()
    final = consumer.management().wait_state(f"/v3/contractnegotiations/{negotiation_id}",
                                             {"FINALIZED", "TERMINATED"}, timeout=60)
    assert final["state"] == "FINALIZED", final
    p.wait_state(f"/v3/contractnegotiations/{provider_id}", {"FINALIZED"})
    _assert_each_transition_once(consumer.management(), negotiation_id)


def _assert_each_transition_once(client: Any, negotiation_id: str) -> None:
    events = client.ok(client.get(f"/v3/contractnegotiations/{negotiation_id}/events"))
    applied = [(e["direction"], e["message"]) for e in events if e["direction"] in ("in", "out")]
    assert len(applied) == len(set(applied)), applied


def test_provider_initiated_offer_is_accepted_and_finalized(pair: tuple[ConnectorProcess, ...]) -> None:
    provider, consumer = pair
    publish(provider, auto_agree=False)
    c, p = consumer.management(), provider.management()
    offered = p.ok(p.post("/v3/contractnegotiations/offers", {
        "counterPartyAddress": consumer.dsp_url, "counterPartyId": consumer.did, "assetId": "asset-1",
        "policy": {"@type": "Offer", "permission": [{"action": "use"}]}}))
    p.wait_state(f"/v3/contractnegotiations/{offered['@id']}", {"OFFERED"})
    inbox = c.ok(c.post("/v3/contractnegotiations/request", {}))
    assert [n["state"] for n in inbox] == ["OFFERED"]
    c.ok(c.post(f"/v3/contractnegotiations/{inbox[0]['@id']}/accept"))
    final = c.wait_state(f"/v3/contractnegotiations/{inbox[0]['@id']}", {"FINALIZED", "TERMINATED"})
    assert final["state"] == "FINALIZED", final
    p.wait_state(f"/v3/contractnegotiations/{offered['@id']}", {"FINALIZED"})


def test_a_request_the_provider_refuses_terminates_with_its_reason(pair: tuple[ConnectorProcess, ...]) -> None:
    provider, consumer = pair
    publish(provider)
    c = consumer.management()
    offer = {**first_offer(c, provider, "asset-1"), "permission": [{"action": "use", "constraint": [
        {"leftOperand": "dateTime", "operator": "lteq", "rightOperand": "2099-01-01T00:00:00Z"}]}]}
    negotiation: Any = c.ok(c.post("/v3/contractnegotiations", {
        "counterPartyAddress": provider.dsp_url, "counterPartyId": provider.did, "policy": offer}))
    final = c.wait_state(f"/v3/contractnegotiations/{negotiation['@id']}", {"TERMINATED", "FINALIZED"})
    assert final["state"] == "TERMINATED"
    assert "differs from the advertised policy" in final["errorDetail"]


class _Upstream(BaseHTTPRequestHandler):
    body = os.urandom(200_000)

    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        data = _Upstream.body
        if self.headers.get("Range", "").startswith("bytes="):
            start, _, end = self.headers["Range"][6:].partition("-")
            data = data[int(start):int(end) + 1]
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{end}/{len(_Upstream.body)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


def test_http_data_assets_are_proxied_only_to_allowed_hosts(spawn: Callable[..., ConnectorProcess]) -> None:
    upstream = ThreadingHTTPServer(("127.0.0.1", free_port()), _Upstream)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    allowed_url = f"http://127.0.0.1:{upstream.server_port}"
    try:
        provider = spawn("provider", extra_args=("--http-source-allow", f"{allowed_url}/data"))
        consumer = spawn("consumer")
        p, c = provider.management(), consumer.management()
        p.ok(p.post("/v3/policydefinitions", {"@id": "all", "policy": {"permission": [{"action": "use"}]}}))
        for asset_id, base in (("proxied", f"{allowed_url}/data/file.bin"),
                               ("not-allowed", f"{allowed_url}/secret/file.bin")):
            p.ok(p.post("/v3/assets", {"@id": asset_id, "properties": {},
                                       "dataAddress": {"type": "HttpData", "baseUrl": base}}))
        p.ok(p.post("/v3/contractdefinitions", {"@id": "cd", "accessPolicyId": "all", "contractPolicyId": "all",
                                                "assetsSelector": []}))
        responses = {}
        for asset_id in ("proxied", "not-allowed"):
            transfer_id = start_transfer(c, provider, finalized_agreement(c, provider, asset_id))
            c.wait_state(f"/v3/transferprocesses/{transfer_id}", {"STARTED"})
            responses[asset_id] = (fetch(edr(c, transfer_id)), fetch(edr(c, transfer_id),
                                                                      headers={"Range": "bytes=10-19"}))
        full, partial = responses["proxied"]
        assert full.status_code == 200 and full.content == _Upstream.body
        assert partial.status_code == 206 and partial.content == _Upstream.body[10:20]
        refused, _ = responses["not-allowed"]
        assert refused.status_code == 403  # same host, but a path outside the allow-list entry
    finally:
        upstream.shutdown()

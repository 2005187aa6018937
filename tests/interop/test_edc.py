"""Interoperability with a real Eclipse EDC connector, both ways, over DSP 2025-1.

(a) EDC consumer -> Sovra provider, driven through EDC's management API v3.
(b) Sovra consumer -> EDC provider, driven through Sovra's management API.

Each direction runs catalog, negotiation to FINALIZED, an HttpData-PULL transfer whose bytes are fetched through
the EDR, suspend/resume, and termination. Needs the EDC runtime built by scripts/interop-edc; without it the
module is skipped and says how to build it.
"""

from __future__ import annotations

import http.server
import json
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from connector.localnet import ConnectorProcess, ManagementClient, free_port
from tests.interop.edc_runtime import DSP_2025, EdcRuntime, classpath_missing_reason, edc_body

pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(classpath_missing_reason() is not None, reason=str(classpath_missing_reason())),
]

TIMEOUT = 60.0


# --- fixtures ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("edc-interop")


@pytest.fixture(scope="module")
def edc(workdir: Path) -> Iterator[EdcRuntime]:
    runtime = EdcRuntime(workdir / "edc")
    try:
        yield runtime.start()
    finally:
        runtime.stop()


class _Origin(http.server.ThreadingHTTPServer):
    """The HTTP source behind EDC's HttpData assets: serves fixed bytes per path and counts the requests."""

    def __init__(self) -> None:
        self.payloads: dict[str, bytes] = {}
        super().__init__(("127.0.0.1", free_port()), _OriginHandler)


class _OriginHandler(http.server.BaseHTTPRequestHandler):
    server: _Origin

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        body = self.server.payloads.get(self.path.split("?", 1)[0])
        self.send_response(200 if body is not None else 404)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body or b"")))
        self.end_headers()
        self.wfile.write(body or b"")

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


@pytest.fixture(scope="module")
def origin() -> Iterator[_Origin]:
    server = _Origin()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def sovra(workdir: Path, edc: EdcRuntime) -> Iterator[ConnectorProcess]:
    process = ConnectorProcess("sovra", workdir / "sovra", extra_args=(
        "--identity", "iam-mock", "--static-peer-id", edc.participant_id))
    try:
        yield process.start()
    finally:
        process.kill()


@pytest.fixture(scope="module")
def edc_api(edc: EdcRuntime) -> Iterator[ManagementClient]:
    client = edc.management()
    yield client
    client.close()


@pytest.fixture(scope="module")
def sovra_api(sovra: ConnectorProcess) -> Iterator[ManagementClient]:
    client = sovra.management()
    yield client
    client.close()


# --- helpers -------------------------------------------------------------------------------------------------


def wait_for(client: ManagementClient, path: str, states: set[str], *, timeout: float = TIMEOUT) -> dict[str, Any]:
    """Poll `path` until its state is one of `states`; fail early on an unexpected TERMINATED."""
    return client.wait_state(path, states | {"TERMINATED"}, timeout=timeout)


def assert_state(client: ManagementClient, path: str, state: str) -> dict[str, Any]:
    final = wait_for(client, path, {state})
    assert final["state"] == state, f"{path}: {json.dumps(final)}"
    return final


def find_process(client: ManagementClient, path: str, **match: str) -> dict[str, Any]:
    """The process on the other side, found by one of its fields (EDC and Sovra both answer POST .../request)."""
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        rows: Any = client.ok(client.post(path + "/request", edc_body({"@type": "QuerySpec", "limit": 500})))
        for row in rows:
            if all(row.get(key) == value for key, value in match.items()):
                return dict(row)
        time.sleep(0.1)
    raise AssertionError(f"no process in {path} with {match}")


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [] if value is None else [value]


def pull(endpoint: str, authorization: str) -> httpx.Response:
    return httpx.get(endpoint, headers={"Authorization": authorization}, timeout=10)


def edr_address(client: ManagementClient, path: str) -> dict[str, Any]:
    """The EDR's endpoint and token. EDC stores it from an event after the transfer is STARTED, so poll."""
    deadline = time.monotonic() + TIMEOUT
    while (response := client.get(path)).status_code == 404 and time.monotonic() < deadline:
        time.sleep(0.1)
    return dict(client.ok(response))  # type: ignore[arg-type]


# --- (a) EDC consumer -> Sovra provider ----------------------------------------------------------------------


def publish_on_sovra(sovra: ConnectorProcess, asset_id: str, content: bytes, *, auto_agree: bool = True) -> None:
    m = sovra.management()
    path = sovra.file_root / f"{asset_id}.bin"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    m.ok(m.post("/v3/assets", {"@id": asset_id, "properties": {"name": asset_id},
                               "dataAddress": {"type": "File", "path": str(path)}}))
    m.ok(m.post("/v3/policydefinitions", {"@id": f"policy-{asset_id}", "policy": {
        "@type": "Set", "permission": [{"action": "use"}]}}))
    m.ok(m.post("/v3/contractdefinitions", {
        "@id": f"cd-{asset_id}", "accessPolicyId": f"policy-{asset_id}", "contractPolicyId": f"policy-{asset_id}",
        "assetsSelector": [{"operandLeft": "https://w3id.org/edc/v0.0.1/ns/id", "operator": "=",
                            "operandRight": asset_id}], "autoAgree": auto_agree}))
    m.close()


def edc_offer_from_sovra(edc_api: ManagementClient, sovra: ConnectorProcess, asset_id: str) -> dict[str, Any]:
    catalog: Any = edc_api.ok(edc_api.post("/v3/catalog/request", edc_body({
        "@type": "CatalogRequest", "counterPartyAddress": sovra.dsp_url, "counterPartyId": sovra.did,
        "protocol": DSP_2025, "querySpec": {"offset": 0, "limit": 100}})))
    # EDC 0.14 hands a DSP 2025-1 catalog back in the DSP context's compact form.
    dataset = next((d for d in as_list(catalog.get("dataset")) if d.get("@id") == asset_id), None)
    assert dataset is not None, f"{asset_id} not in the catalog EDC read from Sovra: {catalog}"
    offer = as_list(dataset["hasPolicy"])[0]
    return {**offer, "assigner": sovra.did, "target": asset_id}


def edc_negotiate(edc_api: ManagementClient, sovra: ConnectorProcess, offer: dict[str, Any]) -> str:
    created: Any = edc_api.ok(edc_api.post("/v3/contractnegotiations", edc_body({
        "@type": "ContractRequest", "counterPartyAddress": sovra.dsp_url, "counterPartyId": sovra.did,
        "protocol": DSP_2025, "policy": {"@context": "http://www.w3.org/ns/odrl.jsonld", **offer}})))
    return str(created["@id"])


def edc_start_pull(edc_api: ManagementClient, sovra: ConnectorProcess, agreement_id: str) -> str:
    created: Any = edc_api.ok(edc_api.post("/v3/transferprocesses", edc_body({
        "@type": "TransferRequest", "counterPartyAddress": sovra.dsp_url, "protocol": DSP_2025,
        "contractId": agreement_id, "transferType": "HttpData-PULL"})))
    return str(created["@id"])


def test_edc_consumer_pulls_from_sovra_provider_with_suspend_resume_and_termination(
        edc_api: ManagementClient, sovra_api: ManagementClient, sovra: ConnectorProcess) -> None:
    content = b"sovra -> edc " + uuid.uuid4().bytes * 64
    publish_on_sovra(sovra, "asset-a", content)

    offer = edc_offer_from_sovra(edc_api, sovra, "asset-a")
    dataset: Any = edc_api.ok(edc_api.post("/v3/catalog/dataset/request", edc_body({
        "@type": "DatasetRequest", "@id": "asset-a", "counterPartyAddress": sovra.dsp_url,
        "counterPartyId": sovra.did, "protocol": DSP_2025})))
    assert dataset["@id"] == "asset-a"
    assert as_list(dataset["hasPolicy"])[0]["@id"] == offer["@id"]
    negotiation_id = edc_negotiate(edc_api, sovra, offer)
    negotiation = assert_state(edc_api, f"/v3/contractnegotiations/{negotiation_id}", "FINALIZED")
    agreement_id = negotiation["contractAgreementId"]
    ours = find_process(sovra_api, "/v3/contractnegotiations", contractAgreementId=agreement_id)
    assert_state(sovra_api, f"/v3/contractnegotiations/{ours['@id']}", "FINALIZED")

    transfer_id = edc_start_pull(edc_api, sovra, agreement_id)
    assert_state(edc_api, f"/v3/transferprocesses/{transfer_id}", "STARTED")
    edr = edr_address(edc_api, f"/v3/edrs/{transfer_id}/dataaddress")
    fetched = pull(edr["endpoint"], edr["authorization"])
    assert fetched.status_code == 200, fetched.text
    assert fetched.content == content

    provider_transfer = find_process(sovra_api, "/v3/transferprocesses", contractId=agreement_id)
    provider_path = f"/v3/transferprocesses/{provider_transfer['@id']}"
    edc_api.ok(edc_api.post(f"/v3/transferprocesses/{transfer_id}/suspend",
                            edc_body({"@type": "SuspendTransfer", "reason": "interop pause"})))
    assert_state(edc_api, f"/v3/transferprocesses/{transfer_id}", "SUSPENDED")
    assert_state(sovra_api, provider_path, "SUSPENDED")
    assert pull(edr["endpoint"], edr["authorization"]).status_code in (401, 403)

    edc_api.ok(edc_api.post(f"/v3/transferprocesses/{transfer_id}/resume", edc_body({})))
    assert_state(edc_api, f"/v3/transferprocesses/{transfer_id}", "STARTED")
    assert_state(sovra_api, provider_path, "STARTED")
    resumed = edr_address(edc_api, f"/v3/edrs/{transfer_id}/dataaddress")
    assert pull(resumed["endpoint"], resumed["authorization"]).content == content

    edc_api.ok(edc_api.post(f"/v3/transferprocesses/{transfer_id}/terminate",
                            edc_body({"@type": "TerminateTransfer", "reason": "interop done"})))
    assert_state(edc_api, f"/v3/transferprocesses/{transfer_id}", "TERMINATED")
    assert_state(sovra_api, provider_path, "TERMINATED")
    assert pull(resumed["endpoint"], resumed["authorization"]).status_code in (401, 403)


def edc_agreement_with_sovra(edc_api: ManagementClient, sovra: ConnectorProcess, asset_id: str) -> str:
    negotiation_id = edc_negotiate(edc_api, sovra, edc_offer_from_sovra(edc_api, sovra, asset_id))
    return str(assert_state(edc_api, f"/v3/contractnegotiations/{negotiation_id}", "FINALIZED")["contractAgreementId"])


def test_sovra_provider_suspends_resumes_and_terminates_an_edc_pull(
        edc_api: ManagementClient, sovra_api: ManagementClient, sovra: ConnectorProcess) -> None:
    content = b"provider-driven " + uuid.uuid4().bytes
    publish_on_sovra(sovra, "asset-a-provider", content)
    agreement_id = edc_agreement_with_sovra(edc_api, sovra, "asset-a-provider")
    transfer_id = edc_start_pull(edc_api, sovra, agreement_id)
    edc_path = f"/v3/transferprocesses/{transfer_id}"
    assert_state(edc_api, edc_path, "STARTED")
    ours = f"/v3/transferprocesses/{find_process(sovra_api, '/v3/transferprocesses', contractId=agreement_id)['@id']}"
    edr = edr_address(edc_api, f"/v3/edrs/{transfer_id}/dataaddress")

    sovra_api.ok(sovra_api.post(f"{ours}/suspend", {"reason": "provider maintenance"}))
    assert_state(sovra_api, ours, "SUSPENDED")
    assert_state(edc_api, edc_path, "SUSPENDED")
    assert pull(edr["endpoint"], edr["authorization"]).status_code in (401, 403)

    sovra_api.ok(sovra_api.post(f"{ours}/resume", {}))
    assert_state(edc_api, edc_path, "STARTED")
    resumed = edr_address(edc_api, f"/v3/edrs/{transfer_id}/dataaddress")
    assert pull(resumed["endpoint"], resumed["authorization"]).content == content

    sovra_api.ok(sovra_api.post(f"{ours}/terminate", {"reason": "provider ends it"}))
    assert_state(sovra_api, ours, "TERMINATED")
    assert_state(edc_api, edc_path, "TERMINATED")
    assert pull(resumed["endpoint"], resumed["authorization"]).status_code in (401, 403)


def test_sovra_provider_declines_an_edc_request(
        edc_api: ManagementClient, sovra_api: ManagementClient, sovra: ConnectorProcess) -> None:
    publish_on_sovra(sovra, "asset-a-declined", b"no", auto_agree=False)
    negotiation_id = edc_negotiate(edc_api, sovra, edc_offer_from_sovra(edc_api, sovra, "asset-a-declined"))
    assert_state(edc_api, f"/v3/contractnegotiations/{negotiation_id}", "REQUESTED")
    edc_side: Any = edc_api.ok(edc_api.get(f"/v3/contractnegotiations/{negotiation_id}"))
    ours = f"/v3/contractnegotiations/{edc_side['correlationId']}"  # EDC's correlationId is our providerPid
    assert_state(sovra_api, ours, "REQUESTED")

    sovra_api.ok(sovra_api.post(f"{ours}/decline", {"reason": "not for you"}))

    assert_state(sovra_api, ours, "TERMINATED")
    assert_state(edc_api, f"/v3/contractnegotiations/{negotiation_id}", "TERMINATED")


def test_edc_consumer_terminates_a_negotiation_sovra_holds(
        edc_api: ManagementClient, sovra_api: ManagementClient, sovra: ConnectorProcess) -> None:
    publish_on_sovra(sovra, "asset-a-held", b"held", auto_agree=False)

    negotiation_id = edc_negotiate(edc_api, sovra, edc_offer_from_sovra(edc_api, sovra, "asset-a-held"))
    assert_state(edc_api, f"/v3/contractnegotiations/{negotiation_id}", "REQUESTED")
    edc_side: Any = edc_api.ok(edc_api.get(f"/v3/contractnegotiations/{negotiation_id}"))
    ours = f"/v3/contractnegotiations/{edc_side['correlationId']}"  # EDC's correlationId is our providerPid
    assert_state(sovra_api, ours, "REQUESTED")

    edc_api.ok(edc_api.post(f"/v3/contractnegotiations/{negotiation_id}/terminate",
                            edc_body({"@type": "TerminateNegotiation", "@id": negotiation_id,
                                      "reason": "changed my mind"})))
    assert_state(edc_api, f"/v3/contractnegotiations/{negotiation_id}", "TERMINATED")
    assert_state(sovra_api, ours, "TERMINATED")


# --- (b) Sovra consumer -> EDC provider ----------------------------------------------------------------------


def publish_on_edc(edc_api: ManagementClient, origin: _Origin, asset_id: str, content: bytes,
                   *, permission: dict[str, Any] | None = None) -> None:
    origin.payloads[f"/{asset_id}"] = content
    base_url = f"http://127.0.0.1:{origin.server_address[1]}/{asset_id}"
    edc_api.ok(edc_api.post("/v3/assets", edc_body({
        "@id": asset_id, "properties": {"name": asset_id},
        "dataAddress": {"type": "HttpData", "baseUrl": base_url}})))
    edc_api.ok(edc_api.post("/v3/policydefinitions", edc_body({
        "@id": f"policy-{asset_id}", "policy": {
            "@context": "http://www.w3.org/ns/odrl.jsonld", "@type": "Set",
            "permission": [permission or {"action": "use"}]}})))
    edc_api.ok(edc_api.post("/v3/contractdefinitions", edc_body({
        "@id": f"cd-{asset_id}", "accessPolicyId": f"policy-{asset_id}", "contractPolicyId": f"policy-{asset_id}",
        "assetsSelector": [{"@type": "Criterion", "operandLeft": EDC_ID, "operator": "=",
                            "operandRight": asset_id}]})))


EDC_ID = "https://w3id.org/edc/v0.0.1/ns/id"


def sovra_offer_from_edc(sovra_api: ManagementClient, edc: EdcRuntime, asset_id: str) -> dict[str, Any]:
    catalog: Any = sovra_api.ok(sovra_api.post("/v3/catalog/request", {
        "counterPartyAddress": edc.dsp_url, "counterPartyId": edc.participant_id, "protocol": DSP_2025}))
    dataset = next((d for d in as_list(catalog.get("dataset")) if d.get("@id") == asset_id), None)
    assert dataset is not None, f"{asset_id} not in the catalog Sovra read from EDC: {catalog}"
    return {**as_list(dataset["hasPolicy"])[0], "target": asset_id, "assigner": edc.participant_id}


def sovra_negotiate(sovra_api: ManagementClient, edc: EdcRuntime, offer: dict[str, Any]) -> str:
    created: Any = sovra_api.ok(sovra_api.post("/v3/contractnegotiations", {
        "counterPartyAddress": edc.dsp_url, "counterPartyId": edc.participant_id, "protocol": DSP_2025,
        "policy": offer}))
    return str(created["@id"])


def test_sovra_consumer_pulls_from_edc_provider_with_suspend_resume_and_termination(
        edc: EdcRuntime, edc_api: ManagementClient, sovra_api: ManagementClient, origin: _Origin) -> None:
    content = b"edc -> sovra " + uuid.uuid4().bytes * 64
    publish_on_edc(edc_api, origin, "asset-b", content)

    offer = sovra_offer_from_edc(sovra_api, edc, "asset-b")
    dataset: Any = sovra_api.ok(sovra_api.post("/v3/catalog/dataset/request", {
        "@id": "asset-b", "counterPartyAddress": edc.dsp_url, "counterPartyId": edc.participant_id,
        "protocol": DSP_2025}))
    assert dataset["@id"] == "asset-b"
    negotiation_id = sovra_negotiate(sovra_api, edc, offer)
    negotiation = assert_state(sovra_api, f"/v3/contractnegotiations/{negotiation_id}", "FINALIZED")
    agreement_id = negotiation["contractAgreementId"]
    provider_negotiation = find_process(edc_api, "/v3/contractnegotiations", contractAgreementId=agreement_id)
    assert_state(edc_api, f"/v3/contractnegotiations/{provider_negotiation['@id']}", "FINALIZED")

    created: Any = sovra_api.ok(sovra_api.post("/v3/transferprocesses", {
        "counterPartyAddress": edc.dsp_url, "contractId": agreement_id, "transferType": "HttpData-PULL",
        "protocol": DSP_2025}))
    transfer_path = f"/v3/transferprocesses/{created['@id']}"
    assert_state(sovra_api, transfer_path, "STARTED")
    edr = edr_address(sovra_api, f"/v3/edrs/{created['@id']}/dataaddress")
    assert edr["endpoint"] == edc.public_url
    fetched = pull(edr["endpoint"], edr["authorization"])
    assert fetched.status_code == 200, fetched.text
    assert fetched.content == content

    provider_transfer = find_process(edc_api, "/v3/transferprocesses", contractId=agreement_id)
    provider_path = f"/v3/transferprocesses/{provider_transfer['@id']}"
    assert_state(edc_api, provider_path, "STARTED")
    sovra_api.ok(sovra_api.post(f"{transfer_path}/suspend", {"reason": "interop pause"}))
    assert_state(sovra_api, transfer_path, "SUSPENDED")
    assert_state(edc_api, provider_path, "SUSPENDED")
    assert pull(edr["endpoint"], edr["authorization"]).status_code in (401, 403)

    sovra_api.ok(sovra_api.post(f"{transfer_path}/resume", {}))
    assert_state(edc_api, provider_path, "STARTED")
    assert_state(sovra_api, transfer_path, "STARTED")
    deadline = time.monotonic() + TIMEOUT
    while (resumed := edr_address(sovra_api, f"/v3/edrs/{created['@id']}/dataaddress"))["authorization"] == \
            edr["authorization"] and time.monotonic() < deadline:
        time.sleep(0.1)  # EDC's provider answers the resume with a new start and a fresh token
    fetched = pull(resumed["endpoint"], resumed["authorization"])
    assert fetched.status_code == 200, fetched.text
    assert fetched.content == content

    sovra_api.ok(sovra_api.post(f"{transfer_path}/terminate", {"reason": "interop done"}))
    assert_state(sovra_api, transfer_path, "TERMINATED")
    # EDC's provider deprovisions right after TERMINATED; its last state is then DEPROVISIONED.
    assert wait_for(edc_api, provider_path, {"DEPROVISIONED"})["state"] in ("TERMINATED", "DEPROVISIONED")
    assert pull(resumed["endpoint"], resumed["authorization"]).status_code in (401, 403)


def test_edc_provider_terminates_when_sovra_refuses_its_agreement(
        edc: EdcRuntime, edc_api: ManagementClient, sovra_api: ManagementClient, origin: _Origin) -> None:
    # The request names another target than the offer id does. EDC agrees on the offer id's asset; Sovra refuses
    # an agreement for a target it did not ask for (400), and EDC then terminates the negotiation itself.
    publish_on_edc(edc_api, origin, "asset-b-refused", b"refused")
    offer = {**sovra_offer_from_edc(sovra_api, edc, "asset-b-refused"), "target": "no-such-asset"}

    negotiation_id = sovra_negotiate(sovra_api, edc, offer)

    final = assert_state(sovra_api, f"/v3/contractnegotiations/{negotiation_id}", "TERMINATED")
    assert "terminated by the provider" in final["errorDetail"]
    assert "does not match the offer" in final["errorDetail"]
    assert final.get("contractAgreementId") in (None, "")


def sovra_agreement_with_edc(sovra_api: ManagementClient, edc: EdcRuntime, asset_id: str) -> str:
    negotiation_id = sovra_negotiate(sovra_api, edc, sovra_offer_from_edc(sovra_api, edc, asset_id))
    final = assert_state(sovra_api, f"/v3/contractnegotiations/{negotiation_id}", "FINALIZED")
    return str(final["contractAgreementId"])


def test_edc_provider_suspends_resumes_and_terminates_a_sovra_pull(
        edc: EdcRuntime, edc_api: ManagementClient, sovra_api: ManagementClient, origin: _Origin) -> None:
    content = b"edc provider-driven " + uuid.uuid4().bytes
    publish_on_edc(edc_api, origin, "asset-b-provider", content)
    agreement_id = sovra_agreement_with_edc(sovra_api, edc, "asset-b-provider")
    created: Any = sovra_api.ok(sovra_api.post("/v3/transferprocesses", {
        "counterPartyAddress": edc.dsp_url, "contractId": agreement_id, "transferType": "HttpData-PULL",
        "protocol": DSP_2025}))
    ours = f"/v3/transferprocesses/{created['@id']}"
    assert_state(sovra_api, ours, "STARTED")
    theirs = f"/v3/transferprocesses/{find_process(edc_api, '/v3/transferprocesses', contractId=agreement_id)['@id']}"
    assert_state(edc_api, theirs, "STARTED")
    edr = edr_address(sovra_api, f"/v3/edrs/{created['@id']}/dataaddress")

    edc_api.ok(edc_api.post(f"{theirs}/suspend", edc_body({"@type": "SuspendTransfer", "reason": "edc pause"})))
    assert_state(sovra_api, ours, "SUSPENDED")
    assert pull(edr["endpoint"], edr["authorization"]).status_code in (401, 403)

    edc_api.ok(edc_api.post(f"{theirs}/resume", edc_body({})))
    assert_state(sovra_api, ours, "STARTED")
    resumed = edr_address(sovra_api, f"/v3/edrs/{created['@id']}/dataaddress")
    fetched = pull(resumed["endpoint"], resumed["authorization"])
    assert fetched.status_code == 200, fetched.text
    assert fetched.content == content

    edc_api.ok(edc_api.post(f"{theirs}/terminate", edc_body({"@type": "TerminateTransfer", "reason": "edc ends"})))
    assert_state(sovra_api, ours, "TERMINATED")
    assert pull(resumed["endpoint"], resumed["authorization"]).status_code in (401, 403)

"""Policy scopes between two real connector processes: a contract policy's dateTime window and purpose decide the
negotiation, the transfer scope refuses a closed window, and the monitor ends a running transfer when it closes."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from connector.localnet import ConnectorProcess, ManagementClient
from tests.e2e.conftest import first_offer, start_transfer

pytestmark = pytest.mark.e2e
RESEARCH = "https://w3id.org/dpv#ResearchAndDevelopment"


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def window(start: datetime, end: datetime, *extra: dict[str, Any]) -> dict[str, Any]:
    return {"@type": "Set", "permission": [{"action": "use", "constraint": [
        {"leftOperand": "dateTime", "operator": "gteq", "rightOperand": _iso(start)},
        {"leftOperand": "dateTime", "operator": "lt", "rightOperand": _iso(end)}, *extra]}]}


def publish(provider: ConnectorProcess, contract_policy: dict[str, Any], asset_id: str = "asset-1") -> None:
    """An asset everyone may see, under `contract_policy`."""
    m = provider.management()
    path = provider.file_root / f"{asset_id}.bin"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"inside the window\n")
    m.ok(m.post("/v3/assets", {"@id": asset_id, "dataAddress": {"type": "File", "path": str(path)}}))
    m.ok(m.post("/v3/policydefinitions", {"@id": "everyone", "policy": {"permission": [{"action": "use"}]}}))
    m.ok(m.post("/v3/policydefinitions", {"@id": "contract", "policy": contract_policy}))
    m.ok(m.post("/v3/contractdefinitions", {
        "@id": "cd", "accessPolicyId": "everyone", "contractPolicyId": "contract", "autoAgree": True,
        "assetsSelector": [{"operandLeft": "https://w3id.org/edc/v0.0.1/ns/id", "operator": "=",
                            "operandRight": asset_id}]}))
    m.close()


def negotiate(c: ManagementClient, provider: ConnectorProcess, *, request_context: dict[str, Any] | None = None,
              ) -> dict[str, Any]:
    body: dict[str, Any] = {"counterPartyAddress": provider.dsp_url, "counterPartyId": provider.did,
                            "protocol": "dataspace-protocol-http:2025-1",
                            "policy": first_offer(c, provider, "asset-1")}
    if request_context is not None:
        body["requestContext"] = request_context
    negotiation_id = c.ok(c.post("/v3/contractnegotiations", body))["@id"]  # type: ignore[index]
    return c.wait_state(f"/v3/contractnegotiations/{negotiation_id}", {"FINALIZED", "TERMINATED"})


def test_contract_window_and_purpose_decide_the_negotiation(spawn: Callable[..., ConnectorProcess]) -> None:
    provider, consumer = spawn("provider"), spawn("consumer")
    now = datetime.now(UTC)
    purpose = {"leftOperand": "purpose", "operator": "isA", "rightOperand": RESEARCH}
    publish(provider, window(now + timedelta(hours=1), now + timedelta(hours=2), purpose))
    c, p = consumer.management(), provider.management()
    research = {"purpose": "https://w3id.org/dpv#AcademicResearch"}

    early = negotiate(c, provider, request_context=research)
    assert early["state"] == "TERMINATED"
    assert "dateTime" in early["errorDetail"], early

    p.ok(p.http.put("/v3/policydefinitions/contract", json={
        "@id": "contract", "policy": window(now - timedelta(hours=1), now + timedelta(hours=1), purpose)}))
    undeclared = negotiate(c, provider)
    assert undeclared["state"] == "TERMINATED" and "purpose" in undeclared["errorDetail"], undeclared
    inside = negotiate(c, provider, request_context=research)
    assert inside["state"] == "FINALIZED", inside

    agreement = p.ok(p.post("/v3/contractagreements/request", {}))
    assert len(agreement) == 1  # only the permitted negotiation made an agreement


def _fetch(c: ManagementClient, transfer_id: str) -> httpx.Response:
    address: Any = c.ok(c.get(f"/v3/edrs/{transfer_id}/dataaddress"))
    return httpx.get(address["endpoint"], headers={"Authorization": address["authorization"]}, timeout=10)


def test_monitor_terminates_a_running_transfer_when_its_window_closes(
        spawn: Callable[..., ConnectorProcess]) -> None:
    provider = spawn("provider", extra_args=("--policy-monitor-interval", "0.5"))
    consumer = spawn("consumer")
    now = datetime.now(UTC)
    closes = now + timedelta(seconds=12)
    publish(provider, window(now - timedelta(hours=1), closes))
    c = consumer.management()
    final = negotiate(c, provider)
    assert final["state"] == "FINALIZED", final
    agreement_id = final["contractAgreementId"]

    transfer_id = start_transfer(c, provider, agreement_id)
    c.wait_state(f"/v3/transferprocesses/{transfer_id}", {"STARTED"})
    assert _fetch(c, transfer_id).content == b"inside the window\n"

    time.sleep(max((closes - datetime.now(UTC)).total_seconds(), 0))
    ended = c.wait_state(f"/v3/transferprocesses/{transfer_id}", {"TERMINATED"}, timeout=20)
    assert "no longer permits this transfer" in ended["errorDetail"] and "dateTime" in ended["errorDetail"], ended
    assert _fetch(c, transfer_id).status_code in (401, 403, 404)  # the access token is refused from now on

    p = provider.management()
    provider_side = p.ok(p.post("/v3/transferprocesses/request", {}))
    assert [t["state"] for t in provider_side] == ["TERMINATED"]
    assert "dateTime" in provider_side[0]["errorDetail"]

    again = start_transfer(c, provider, agreement_id)  # transfer scope: the closed window refuses a new start
    refused = c.wait_state(f"/v3/transferprocesses/{again}", {"TERMINATED"}, timeout=20)
    assert "no longer permits a transfer" in refused["errorDetail"], refused

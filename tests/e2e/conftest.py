"""Real `sovra serve` processes on loopback, on SQLite and on PostgreSQL (one database per process)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from connector.localnet import ConnectorProcess, ManagementClient
from identity.keys import load_or_create_signing_key
from identity.tokens import issue_token
from tests.conftest import _fresh_postgresql_database, database_urls

DSP_CONTEXT = ["https://w3id.org/dspace/2025/1/context.jsonld"]


@pytest.fixture(params=database_urls(), ids=lambda p: p[0])
def backend(request: pytest.FixtureRequest) -> str | None:
    """The admin URL of PostgreSQL, or None for SQLite."""
    return request.param[1]


@pytest.fixture
def spawn(backend: str | None, tmp_path: Path) -> Iterator[Callable[..., ConnectorProcess]]:
    started: list[ConnectorProcess] = []
    databases = contextlib.ExitStack()

    def start(name: str, *, database_url: str | None = None, **kwargs: Any) -> ConnectorProcess:
        if database_url is None and backend is not None:
            database_url = databases.enter_context(contextlib.contextmanager(_fresh_postgresql_database)(backend))
        process = ConnectorProcess(name, tmp_path / name, database_url=database_url, **kwargs)
        started.append(process)
        return process.start()

    yield start
    for process in started:
        process.kill()
    databases.close()


@pytest.fixture
def pair(spawn: Callable[..., ConnectorProcess]) -> tuple[ConnectorProcess, ConnectorProcess]:
    return spawn("provider"), spawn("consumer")


def publish(provider: ConnectorProcess, *, asset_id: str = "asset-1", content: bytes = b"hello dataspace\n",
            auto_agree: bool = True, policy: dict[str, Any] | None = None) -> Path:
    """Create a file asset with an allow-use policy and a contract definition on the provider."""
    m = provider.management()
    path = provider.file_root / f"{asset_id}.bin"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    m.ok(m.post("/v3/assets", {"@id": asset_id, "properties": {"name": asset_id},
                               "dataAddress": {"type": "File", "path": str(path)}}))
    policy_id = f"policy-{asset_id}"
    m.ok(m.post("/v3/policydefinitions", {"@id": policy_id, "policy": policy or {
        "@type": "Set", "permission": [{"action": "use"}]}}))
    m.ok(m.post("/v3/contractdefinitions", {
        "@id": f"cd-{asset_id}", "accessPolicyId": policy_id, "contractPolicyId": policy_id,
        "assetsSelector": [{"operandLeft": "https://w3id.org/edc/v0.0.1/ns/id", "operator": "=",
                            "operandRight": asset_id}], "autoAgree": auto_agree}))
    m.close()
    return path


def first_offer(consumer: ManagementClient, provider: ConnectorProcess, asset_id: str) -> dict[str, Any]:
    catalog: Any = consumer.ok(consumer.post("/v3/catalog/request", {
        "counterPartyAddress": provider.dsp_url, "counterPartyId": provider.did}))
    dataset = next(d for d in catalog.get("dataset", []) if d["@id"] == asset_id)
    return {**dataset["hasPolicy"][0], "target": asset_id, "assigner": provider.did}


def negotiate(consumer: ManagementClient, provider: ConnectorProcess, asset_id: str) -> str:
    negotiation: Any = consumer.ok(consumer.post("/v3/contractnegotiations", {
        "counterPartyAddress": provider.dsp_url, "counterPartyId": provider.did,
        "protocol": "dataspace-protocol-http:2025-1", "policy": first_offer(consumer, provider, asset_id)}))
    return str(negotiation["@id"])


def finalized_agreement(consumer: ManagementClient, provider: ConnectorProcess, asset_id: str) -> str:
    negotiation_id = negotiate(consumer, provider, asset_id)
    final = consumer.wait_state(f"/v3/contractnegotiations/{negotiation_id}", {"FINALIZED", "TERMINATED"})
    assert final["state"] == "FINALIZED", final
    return str(final["contractAgreementId"])


def start_transfer(consumer: ManagementClient, provider: ConnectorProcess, agreement_id: str,
                   transfer_type: str = "HttpData-PULL", destination: dict[str, Any] | None = None) -> str:
    body: dict[str, Any] = {"counterPartyAddress": provider.dsp_url, "contractId": agreement_id,
                            "transferType": transfer_type, "protocol": "dataspace-protocol-http:2025-1"}
    if destination:
        body["dataDestination"] = destination
    return str(consumer.ok(consumer.post("/v3/transferprocesses", body))["@id"])  # type: ignore[index]


class Peer:
    """Speak raw DSP to a connector as another connector's identity (its key, its served DID document)."""

    def __init__(self, identity: ConnectorProcess, target: ConnectorProcess) -> None:
        self.identity, self.target = identity, target
        self.key = load_or_create_signing_key(identity.data_dir / "keys" / "connector-key.pem")

    def token(self, *, audience: str | None = None, now: datetime | None = None, ttl: int = 300) -> str:
        return issue_token(self.key, issuer=self.identity.did, audience=audience or self.target.did,
                           now=now or datetime.now(UTC), ttl_seconds=ttl)

    def post(self, path: str, body: Any, *, token: str | None = None, raw: bytes | None = None,
             headers: dict[str, str] | None = None) -> httpx.Response:
        auth = {"Authorization": f"Bearer {token or self.token()}"}
        content = raw if raw is not None else json.dumps(body).encode()
        return httpx.post(self.target.dsp_url + path, content=content,
                          headers={"Content-Type": "application/json", **auth, **(headers or {})}, timeout=10)

    def get(self, path: str, *, token: str | None = None) -> httpx.Response:
        return httpx.get(self.target.dsp_url + path, headers={"Authorization": f"Bearer {token or self.token()}"},
                         timeout=10)

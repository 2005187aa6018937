"""Rows as EDC Management API v3 shows them: field names, `@type`s and time units exactly as EDC answers.

Times are epoch milliseconds (`createdAt`, `stateTimestamp`) except `contractSigningDate`, which EDC gives in
epoch seconds. States are shown as stored: Sovra's internal states carry EDC's names (REQUESTING, AGREEING, ...).
`jsonld_io.respond` adds the `@context` and leaves out absent (None) values.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from connector.persistence.tables import (
    AgreementRow,
    AssetRow,
    ContractDefinitionRow,
    EdrRow,
    EventRow,
    NegotiationRow,
    PolicyDefinitionRow,
    TransferRow,
)
from connector.services.remote_catalog import PROTOCOL
from contracts import Role

HTTP_ENDPOINT_TYPE = "https://w3id.org/idsa/v4.1/HTTP"


def millis(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def id_response(object_id: str, created_at: datetime) -> dict[str, Any]:
    return {"@type": "IdResponse", "@id": object_id, "createdAt": millis(created_at)}


def asset(row: AssetRow) -> dict[str, Any]:
    return {
        "@id": row.id, "@type": "Asset",
        "properties": {**row.properties, "id": row.id},
        "privateProperties": row.private_properties,
        "dataAddress": {"@type": "DataAddress", **row.data_address},
        "createdAt": millis(row.created_at),
    }


def policy_definition(row: PolicyDefinitionRow) -> dict[str, Any]:
    return {"@id": row.id, "@type": "PolicyDefinition", "policy": row.policy,
            "privateProperties": row.private_properties, "createdAt": millis(row.created_at)}


def contract_definition(row: ContractDefinitionRow) -> dict[str, Any]:
    return {
        "@id": row.id, "@type": "ContractDefinition",
        "accessPolicyId": row.access_policy_id, "contractPolicyId": row.contract_policy_id,
        "assetsSelector": [{"@type": "Criterion", **c} for c in row.assets_selector],
        "autoAgree": row.auto_agree, "createdAt": millis(row.created_at),
    }


def _correlation_id(row: NegotiationRow | TransferRow) -> str | None:
    return row.provider_pid if row.role == Role.CONSUMER else row.consumer_pid


def negotiation(row: NegotiationRow) -> dict[str, Any]:
    return {
        "@id": row.id, "@type": "ContractNegotiation", "type": row.role, "state": row.state, "protocol": PROTOCOL,
        "counterPartyId": row.counter_party_id, "counterPartyAddress": row.counter_party_address,
        "correlationId": _correlation_id(row), "contractAgreementId": row.agreement_id, "assetId": row.asset_id,
        "offer": row.offer, "pending": row.pending_decision, "errorDetail": row.error_detail,
        "callbackAddresses": [], "createdAt": millis(row.created_at), "stateTimestamp": millis(row.updated_at),
    }


def negotiation_state(row: NegotiationRow) -> dict[str, Any]:
    return {"@type": "NegotiationState", "state": row.state}


def agreement(row: AgreementRow) -> dict[str, Any]:
    policy = {"@id": row.id, "@type": "Agreement", **row.policy, "assigner": row.provider_id,
              "assignee": row.consumer_id, "target": row.asset_id}
    return {
        "@id": row.id, "@type": "ContractAgreement", "assetId": row.asset_id, "policy": policy,
        "contractSigningDate": int(row.signed_at.timestamp()), "consumerId": row.consumer_id,
        "providerId": row.provider_id,
    }


def transfer(row: TransferRow) -> dict[str, Any]:
    return {
        "@id": row.id, "@type": "TransferProcess", "type": row.role, "state": row.state, "protocol": PROTOCOL,
        "correlationId": _correlation_id(row), "contractId": row.agreement_id, "assetId": row.asset_id,
        "transferType": row.transfer_type, "counterPartyId": row.counter_party_id,
        "counterPartyAddress": row.counter_party_address, "dataDestination": row.data_destination,
        "errorDetail": row.error_detail, "callbackAddresses": [], "createdAt": millis(row.created_at),
        "stateTimestamp": millis(row.updated_at),
    }


def transfer_state(row: TransferRow) -> dict[str, Any]:
    return {"@type": "TransferState", "state": row.state}


def event(row: EventRow) -> dict[str, Any]:
    return {"@type": "ProcessEvent", "seq": row.seq, "direction": row.direction, "message": row.message,
            "state": row.state, "detail": row.detail, "at": millis(row.at)}


def edr_entry(row: EdrRow, negotiation_id: str | None) -> dict[str, Any]:
    return {
        "@id": row.transfer_id, "@type": "EndpointDataReferenceEntry", "transferProcessId": row.transfer_id,
        "agreementId": row.agreement_id, "contractNegotiationId": negotiation_id, "assetId": row.asset_id,
        "providerId": row.provider_id, "createdAt": millis(row.created_at),
    }


def edr_data_address(address: dict[str, Any]) -> dict[str, Any]:
    """EDC's flat DataAddress from the DSP one: each endpoint property becomes a member (`authorization`, ...).

    An EDC provider sends no top-level `endpoint`: its endpoint is the property named
    `https://w3id.org/edc/v0.0.1/ns/endpoint`, so that fills `endpoint` when the member is absent.
    """
    endpoint_type = address.get("endpointType") or HTTP_ENDPOINT_TYPE
    flat: dict[str, Any] = {"@type": "DataAddress", "type": endpoint_type, "endpointType": endpoint_type}
    if address.get("endpoint"):
        flat["endpoint"] = address["endpoint"]
    for prop in address.get("endpointProperties") or []:
        if isinstance(prop, dict) and isinstance(prop.get("name"), str):
            name = prop["name"].removeprefix("https://w3id.org/edc/v0.0.1/ns/").removeprefix("edc:")
            flat.setdefault(name, prop.get("value"))
    flat.setdefault("endpoint", None)
    return flat


def dsp_data_address(destination: dict[str, Any]) -> dict[str, Any]:
    """The DSP DataAddress a TransferRequestMessage carries, from EDC's `{"type": "HttpData", "baseUrl": ...}`.

    A destination already in DSP form (`endpointType`) passes unchanged. For HttpData, `authKey: Authorization`
    with `authCode` becomes the `authorization` endpoint property (what the provider's push sends as the header);
    other fields travel as endpoint properties of the same name.
    """
    if "endpointType" in destination:
        return {"@type": "DataAddress", **destination}
    fields = {k: v for k, v in destination.items() if k not in ("@type", "type", "baseUrl", "path")}
    endpoint = str(destination.get("baseUrl") or "").rstrip("/")
    if destination.get("path"):
        endpoint += "/" + str(destination["path"]).lstrip("/")
    auth_key, auth_code = fields.pop("authKey", None), fields.pop("authCode", None)
    properties = [{"@type": "EndpointProperty", "name": k, "value": str(v)} for k, v in fields.items()
                  if v is not None and not isinstance(v, dict | list)]
    if auth_code is not None and str(auth_key or "authorization").lower() == "authorization":
        properties.append({"@type": "EndpointProperty", "name": "authorization", "value": str(auth_code)})
    address: dict[str, Any] = {"@type": "DataAddress", "endpointType": HTTP_ENDPOINT_TYPE, "endpoint": endpoint}
    if properties:
        address["endpointProperties"] = properties
    return address

"""Build every outbound DSP message from stored rows, in the compact shape the 2025-1 schemas define.

Messages are built when they are sent, not when they are queued: a message queued before the peer told us its
process id (our first request is still unacknowledged) then goes out with the id it has by then.
"""

from __future__ import annotations

from typing import Any

from connector.persistence.tables import AgreementRow, NegotiationRow, TransferRow
from contracts.negotiation import NegotiationMessage, wire_state
from contracts.transfer import TransferMessage
from contracts.transfer import wire_state as transfer_wire_state

DSP_CONTEXT = "https://w3id.org/dspace/2025/1/context.jsonld"
CONTEXT = [DSP_CONTEXT]
REQUEST_CONTEXT = "https://w3id.org/sovra/policy/v1#requestContext"
"""Sovra's extension of the first ContractRequestMessage: what the consumer declares for the contract policy
(left operand -> value, e.g. purpose). A full IRI, so DSP peers that do not know it ignore it."""
C2D = "https://w3id.org/sovra/c2d/v1#"
COMPUTE_JOB = C2D + "computeJob"
"""Sovra's extension of a TransferRequestMessage of format Compute-PULL: the job the consumer asks for,
{"algorithm": <its dataset id at the algorithm provider>, "algorithmProvider": <that provider's DSP URL>,
"parameters": {...}}. See docs/compute-to-data.md."""
JOB_STATE = C2D + "jobState"
JOB_REASON = C2D + "jobReason"
"""Members a provider adds to its TransferProcess body of a Compute-PULL: the job's state and, once final, why."""


def envelope(message_type: str, message_id: str | None = None, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"@context": CONTEXT, "@type": message_type}
    if message_id:
        body["@id"] = message_id
    body.update({k: v for k, v in fields.items() if v is not None})
    return body


def negotiation_ack(row: NegotiationRow) -> dict[str, Any]:
    return envelope(
        "ContractNegotiation",
        providerPid=row.provider_pid or "",
        consumerPid=row.consumer_pid or "",
        state=wire_state(row.state),
    )


def transfer_ack(row: TransferRow) -> dict[str, Any]:
    return envelope(
        "TransferProcess",
        providerPid=row.provider_pid or "",
        consumerPid=row.consumer_pid or "",
        state=transfer_wire_state(row.state),
    )


def error_body(error_type: str, *, provider_pid: str = "", consumer_pid: str = "", code: str,
               reason: str) -> dict[str, Any]:
    if error_type == "CatalogError":
        return envelope(error_type, code=code, reason=[reason])
    return envelope(error_type, providerPid=provider_pid, consumerPid=consumer_pid, code=code, reason=[reason])


def message_offer(offer: dict[str, Any], target: str) -> dict[str, Any]:
    """An offer inside a message: it carries `target`, its rules do not."""
    body = {k: v for k, v in offer.items() if k not in ("@context", "target")}
    body.setdefault("@type", "Offer")
    body["target"] = target
    return body


def agreement_body(agreement: AgreementRow) -> dict[str, Any]:
    body: dict[str, Any] = {"@id": agreement.id, "@type": "Agreement"}
    for key in ("permission", "prohibition", "obligation", "profile"):
        if agreement.policy.get(key) not in (None, []):
            body[key] = agreement.policy[key]
    if "permission" not in body and "prohibition" not in body:
        body["permission"] = [{"action": "use"}]
    body.update(
        target=agreement.asset_id,
        assigner=agreement.provider_id,
        assignee=agreement.consumer_id,
        timestamp=agreement.signed_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
    )
    return body


def negotiation_message(kind: NegotiationMessage, row: NegotiationRow, *, message_id: str,
                        callback_address: str, agreement: AgreementRow | None,
                        params: dict[str, Any]) -> dict[str, Any]:
    pids = {"providerPid": row.provider_pid, "consumerPid": row.consumer_pid}
    match kind:
        case NegotiationMessage.CONTRACT_REQUEST:
            offer = message_offer(row.offer, row.asset_id or "")
            if row.provider_pid:  # a counter-request on a negotiation the provider knows
                return envelope(kind.value, message_id, offer=offer, **pids)
            declared = {REQUEST_CONTEXT: row.request_context} if row.request_context else {}
            return envelope(kind.value, message_id, consumerPid=row.consumer_pid,
                            callbackAddress=callback_address, offer=offer, **declared)
        case NegotiationMessage.CONTRACT_OFFER:
            offer = message_offer(row.offer, row.asset_id or "")
            if row.consumer_pid:
                return envelope(kind.value, message_id, offer=offer, **pids)
            return envelope(kind.value, message_id, providerPid=row.provider_pid,
                            callbackAddress=callback_address, offer=offer)
        case NegotiationMessage.AGREEMENT:
            if agreement is None:
                raise ValueError(f"negotiation {row.id} has no agreement to send")
            return envelope(kind.value, message_id, agreement=agreement_body(agreement), **pids)
        case NegotiationMessage.VERIFICATION:
            return envelope(kind.value, message_id, **pids)
        case NegotiationMessage.ACCEPTED_EVENT:
            return envelope("ContractNegotiationEventMessage", message_id, eventType="ACCEPTED", **pids)
        case NegotiationMessage.FINALIZED_EVENT:
            return envelope("ContractNegotiationEventMessage", message_id, eventType="FINALIZED", **pids)
        case NegotiationMessage.TERMINATION:
            return envelope(kind.value, message_id, code=params.get("code"),
                            reason=[params["reason"]] if params.get("reason") else None, **pids)
    raise ValueError(f"no builder for {kind}")


def negotiation_path(kind: NegotiationMessage, row: NegotiationRow) -> str:
    """Where a message goes, relative to the peer's base (provider DSP base or consumer callback)."""
    consumer_side = row.role == "CONSUMER"
    if consumer_side:
        match kind:
            case NegotiationMessage.CONTRACT_REQUEST if not row.provider_pid:
                return "/negotiations/request"
            case NegotiationMessage.CONTRACT_REQUEST:
                return f"/negotiations/{row.provider_pid}/request"
            case NegotiationMessage.ACCEPTED_EVENT:
                return f"/negotiations/{row.provider_pid}/events"
            case NegotiationMessage.VERIFICATION:
                return f"/negotiations/{row.provider_pid}/agreement/verification"
            case NegotiationMessage.TERMINATION:
                return f"/negotiations/{row.provider_pid}/termination"
    else:
        match kind:
            case NegotiationMessage.CONTRACT_OFFER if not row.consumer_pid:
                return "/negotiations/offers"
            case NegotiationMessage.CONTRACT_OFFER:
                return f"/negotiations/{row.consumer_pid}/offers"
            case NegotiationMessage.AGREEMENT:
                return f"/negotiations/{row.consumer_pid}/agreement"
            case NegotiationMessage.FINALIZED_EVENT:
                return f"/negotiations/{row.consumer_pid}/events"
            case NegotiationMessage.TERMINATION:
                return f"/negotiations/{row.consumer_pid}/termination"
    raise ValueError(f"a {row.role.lower()} does not send {kind.value}")


_TRANSFER_SUFFIX = {
    TransferMessage.START: "start",
    TransferMessage.SUSPENSION: "suspension",
    TransferMessage.COMPLETION: "completion",
    TransferMessage.TERMINATION: "termination",
}


def transfer_path(kind: TransferMessage, row: TransferRow) -> str:
    if kind is TransferMessage.REQUEST:
        return "/transfers/request"
    peer_pid = row.provider_pid if row.role == "CONSUMER" else row.consumer_pid
    return f"/transfers/{peer_pid}/{_TRANSFER_SUFFIX[kind]}"


def transfer_message(kind: TransferMessage, row: TransferRow, *, message_id: str, callback_address: str,
                     params: dict[str, Any], data_address: dict[str, Any] | None = None) -> dict[str, Any]:
    pids = {"providerPid": row.provider_pid, "consumerPid": row.consumer_pid}
    match kind:
        case TransferMessage.REQUEST:
            job = {COMPUTE_JOB: params["computeJob"]} if params.get("computeJob") is not None else {}
            return envelope(kind.value, message_id, consumerPid=row.consumer_pid, agreementId=row.agreement_id,
                            format=row.transfer_type, callbackAddress=callback_address,
                            dataAddress=row.data_destination or None, **job)
        case TransferMessage.START:
            return envelope(kind.value, message_id, dataAddress=data_address, **pids)
        case TransferMessage.COMPLETION:
            return envelope(kind.value, message_id, **pids)
        case TransferMessage.SUSPENSION | TransferMessage.TERMINATION:
            return envelope(kind.value, message_id, code=params.get("code"),
                            reason=[params["reason"]] if params.get("reason") else None, **pids)
    raise ValueError(f"no builder for {kind}")

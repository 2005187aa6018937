"""Pydantic models of the management API: `*Input` validates normalised bodies, `*Output` documents answers.

Bodies are read by `jsonld_io` (so JSON-LD and plain JSON arrive alike) and then validated here with `parse`,
which turns Pydantic's errors into a 400 naming the field's JSON pointer. Answers are built as plain dicts by
`representations`; the output models exist so that /api/management/openapi.json describes them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from connector.http.management.errors import invalid

T = TypeVar("T", bound=BaseModel)


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


def parse(model: type[T], body: Mapping[str, Any]) -> T:
    """Validate a normalised body; the first problem becomes a 400 naming its JSON pointer."""
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        error = exc.errors()[0]
        pointer = "/" + "/".join(str(part) for part in error["loc"])
        problem = "is required" if error["type"] == "missing" else f"is invalid: {error['msg'].lower()}"
        raise invalid(pointer, problem, error.get("input") if error["type"] != "missing" else None) from None


def request_body(model: type[BaseModel], *, required: bool = True) -> dict[str, Any]:
    """`openapi_extra` documenting a body the route reads itself (so auth runs before the body is parsed)."""
    schema = model.model_json_schema(by_alias=True)
    definitions = schema.pop("$defs", {})
    return {"requestBody": {"required": required,
                            "content": {"application/json": {"schema": _inline(schema, definitions)}}}}


def _inline(node: Any, definitions: Mapping[str, Any]) -> Any:
    if isinstance(node, dict):
        reference = node.get("$ref")
        if isinstance(reference, str) and reference.startswith("#/$defs/"):
            return _inline(definitions[reference.removeprefix("#/$defs/")], definitions)
        return {k: _inline(v, definitions) for k, v in node.items()}
    if isinstance(node, list):
        return [_inline(v, definitions) for v in node]
    return node


# -- inputs ----------------------------------------------------------------------------------------------------------
class AssetInput(_Model):
    id: str | None = Field(None, alias="@id", description="Generated when absent")
    properties: dict[str, Any] = Field(default_factory=dict, description="Public: shown in the catalog")
    private_properties: dict[str, Any] = Field(default_factory=dict, alias="privateProperties")
    data_address: dict[str, Any] = Field(
        alias="dataAddress",
        description='{"type": "File", "path": "/abs/path"} or {"type": "HttpData", "baseUrl": "https://..."}')


class PolicyDefinitionInput(_Model):
    id: str | None = Field(None, alias="@id")
    policy: dict[str, Any] = Field(description="ODRL policy; stored in DSP 2025-1 compact shape")
    private_properties: dict[str, Any] = Field(default_factory=dict, alias="privateProperties")


class CriterionInput(_Model):
    operand_left: str = Field(alias="operandLeft")
    operator: str
    operand_right: Any = Field(None, alias="operandRight")


class ContractDefinitionInput(_Model):
    id: str | None = Field(None, alias="@id")
    access_policy_id: str = Field(alias="accessPolicyId")
    contract_policy_id: str = Field(alias="contractPolicyId")
    assets_selector: list[Any] = Field(default_factory=list, alias="assetsSelector",
                                       description="Criteria that must all hold; empty selects every asset")
    auto_agree: bool = Field(True, alias="autoAgree",
                             description="Sovra extension: agree without an operator when the request matches")


class QuerySpecInput(_Model):
    offset: int = 0
    limit: int = Field(50, le=1000)
    sort_field: str | None = Field(None, alias="sortField")
    sort_order: str = Field("ASC", alias="sortOrder", description="ASC or DESC")
    filter_expression: list[CriterionInput] = Field(default_factory=list, alias="filterExpression",
                                                    description="Operators: = != < > <= >= in like")


class _CounterParty(_Model):
    counter_party_address: str = Field(alias="counterPartyAddress",
                                       description="The peer's DSP base URL, e.g. https://host/api/dsp/2025-1")
    counter_party_id: str | None = Field(None, alias="counterPartyId",
                                         description="Defaults to the did:web of the address's origin")
    protocol: str | None = Field(None, description="dataspace-protocol-http:2025-1")


class CatalogRequestInput(_CounterParty):
    query_spec: dict[str, Any] = Field(default_factory=dict, alias="querySpec",
                                       description="offset and limit over the provider's datasets")


class DatasetRequestInput(_CounterParty):
    id: str = Field(alias="@id", description="The dataset id")


class ContractRequestInput(_CounterParty):
    policy: dict[str, Any] = Field(description="The offer from the catalog, with @id, assigner and target")
    request_context: dict[str, Any] | None = Field(
        None, alias="requestContext",
        description="What we declare for the contract policy, by left operand (e.g. {\"purpose\": <IRI>}); "
                    "sent to the provider with the request and kept with the agreement")
    callback_addresses: list[Any] = Field(default_factory=list, alias="callbackAddresses",
                                          description="Accepted and ignored: Sovra sends no callbacks")


class ContractOfferInput(_CounterParty):
    counter_party_address: str = Field(alias="counterPartyAddress", description="The consumer's DSP base URL")
    asset_id: str = Field(alias="assetId")
    policy: dict[str, Any] | None = Field(None, description="The offer; or name a policy definition instead")
    policy_id: str | None = Field(None, alias="policyId")


class CounterOfferInput(_Model):
    policy: dict[str, Any]


class ReasonInput(_Model):
    reason: str | None = None


class TransferRequestInput(_Model):
    counter_party_address: str | None = Field(None, alias="counterPartyAddress",
                                              description="Defaults to the address the agreement was negotiated with")
    contract_id: str = Field(alias="contractId", description="The contract agreement id")
    transfer_type: str = Field(alias="transferType", description="HttpData-PULL or HttpData-PUSH")
    data_destination: dict[str, Any] | None = Field(
        None, alias="dataDestination", description='Push only: {"type": "HttpData", "baseUrl": ...}')
    protocol: str | None = None
    connector_id: str | None = Field(None, alias="connectorId", description="Accepted and ignored")


# -- outputs (documentation) -----------------------------------------------------------------------------------------
class _Output(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)
    context: dict[str, str] = Field(alias="@context")
    id: str = Field(alias="@id")
    type: str = Field(alias="@type")


class IdResponse(_Output):
    created_at: int = Field(alias="createdAt", description="Epoch milliseconds")


class AssetOutput(_Output):
    properties: dict[str, Any]
    private_properties: dict[str, Any] = Field(alias="privateProperties")
    data_address: dict[str, Any] = Field(alias="dataAddress")
    created_at: int = Field(alias="createdAt")


class PolicyDefinitionOutput(_Output):
    policy: dict[str, Any]
    private_properties: dict[str, Any] = Field(alias="privateProperties")
    created_at: int = Field(alias="createdAt")


class ContractDefinitionOutput(_Output):
    access_policy_id: str = Field(alias="accessPolicyId")
    contract_policy_id: str = Field(alias="contractPolicyId")
    assets_selector: list[CriterionInput] = Field(alias="assetsSelector")
    auto_agree: bool = Field(alias="autoAgree")
    created_at: int = Field(alias="createdAt")


class ContractNegotiationOutput(_Output):
    type_: str = Field(alias="type", description="CONSUMER or PROVIDER")
    state: str
    protocol: str
    counter_party_id: str = Field(alias="counterPartyId")
    counter_party_address: str = Field(alias="counterPartyAddress")
    correlation_id: str | None = Field(None, alias="correlationId", description="The peer's process id")
    contract_agreement_id: str | None = Field(None, alias="contractAgreementId")
    asset_id: str | None = Field(None, alias="assetId")
    pending: bool = Field(description="Sovra extension: waiting for approve/decline or accept")
    error_detail: str | None = Field(None, alias="errorDetail")
    created_at: int = Field(alias="createdAt")
    state_timestamp: int = Field(alias="stateTimestamp")


class ContractAgreementOutput(_Output):
    asset_id: str = Field(alias="assetId")
    policy: dict[str, Any]
    contract_signing_date: int = Field(alias="contractSigningDate", description="Epoch seconds")
    consumer_id: str = Field(alias="consumerId")
    provider_id: str = Field(alias="providerId")


class TransferProcessOutput(_Output):
    type_: str = Field(alias="type")
    state: str
    protocol: str
    correlation_id: str | None = Field(None, alias="correlationId")
    contract_id: str = Field(alias="contractId")
    asset_id: str | None = Field(None, alias="assetId")
    transfer_type: str = Field(alias="transferType")
    counter_party_id: str = Field(alias="counterPartyId")
    counter_party_address: str = Field(alias="counterPartyAddress")
    data_destination: dict[str, Any] | None = Field(None, alias="dataDestination")
    error_detail: str | None = Field(None, alias="errorDetail")
    created_at: int = Field(alias="createdAt")
    state_timestamp: int = Field(alias="stateTimestamp")


class StateOutput(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    type: str = Field(alias="@type", description="NegotiationState or TransferState")
    state: str


class EdrEntryOutput(_Output):
    transfer_process_id: str = Field(alias="transferProcessId")
    agreement_id: str = Field(alias="agreementId")
    contract_negotiation_id: str | None = Field(None, alias="contractNegotiationId")
    asset_id: str | None = Field(None, alias="assetId")
    provider_id: str = Field(alias="providerId")
    created_at: int = Field(alias="createdAt")


class DataAddressOutput(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)
    type: str = Field(alias="@type")
    endpoint_type: str = Field(alias="endpointType")
    endpoint: str | None = None
    authorization: str | None = Field(None, description="Send it as the Authorization header")
    auth_type: str | None = Field(None, alias="authType")


class EventOutput(BaseModel):
    seq: int
    direction: str = Field(description="in or out")
    message: str
    state: str
    detail: str | None = None
    at: int = Field(description="Epoch milliseconds")


class ApiError(BaseModel):
    message: str
    type: str
    path: str | None = None
    invalid_value: Any = Field(None, alias="invalidValue")


class EvaluationRequestInput(_Model):
    assignee: str | None = Field(None, description="Who asks (a participant DID)")
    action: str | None = Field(None, description="ODRL action (term or IRI); default: the action each rule governs")
    target: str | None = Field(None, description="The asset; default: the policy's own target")
    context: dict[str, Any] = Field(default_factory=dict,
                                    description="Request parameters by left operand: purpose, spatial, ...")


class EvaluationStateInput(_Model):
    now: AwareDatetime | None = Field(None, description="xsd:dateTime with time zone; default: the current time")
    agreement_start: AwareDatetime | None = Field(None, alias="agreementStart")
    use_count: int | None = Field(None, alias="useCount", ge=0, description="Uses of the agreement so far")
    dp_epsilon_spent: float | None = Field(None, alias="dpEpsilonSpent", ge=0)
    consent_given: bool | None = Field(None, alias="consentGiven")
    claims: dict[str, Any] = Field(default_factory=dict, description="membership, role, country, ...")
    part_of: dict[str, list[str]] = Field(default_factory=dict, alias="partOf")
    duty_states: dict[str, str] = Field(default_factory=dict, alias="dutyStates")
    facts: dict[str, Any] = Field(default_factory=dict)


class PolicyEvaluationInput(_Model):
    policy: dict[str, Any] = Field(description="An ODRL policy in JSON-LD (any context)")
    request: EvaluationRequestInput = Field(default_factory=EvaluationRequestInput)
    state: EvaluationStateInput = Field(default_factory=EvaluationStateInput)
    scope: str = Field("negotiation", description="catalog, negotiation, transfer, monitor or compute")


class TemplateParametersInput(_Model):
    model_config = ConfigDict(extra="allow", populate_by_name=True)

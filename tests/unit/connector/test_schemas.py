"""connector.protocol.schemas: the DSP 2025-1 schemas accept the spec's examples and reject what NOTES §2 lists."""

from __future__ import annotations

import copy
import json
import time
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from jsonschema import Draft201909Validator

from connector.protocol import schemas
from connector.protocol.errors import ProtocolError, SchemaViolationError
from connector.protocol.schemas import MESSAGE_SCHEMAS, REGISTRY, SCHEMA_BASE, validate_message
from tests.dsp_examples import SPEC_DIR

# common/example/*-did-service.json are DID document entries, not DSP messages; the DataService one even fails
# its own did-service schema (serviceEndpoint must end in /catalog), which is why that schema is never used.
EXAMPLES = sorted(
    path.relative_to(SPEC_DIR).as_posix()
    for path in SPEC_DIR.glob("*/example/*.json")
    if "did-service" not in path.name
)


def _example(name: str) -> dict[str, Any]:
    return json.loads((SPEC_DIR / name).read_text(encoding="utf-8"))


def _schema_name(name: str) -> str:
    return "protocol-version" if name.endswith("protocol-version.json") else _example(name)["@type"]


def _violation(message: Any, **kwargs: Any) -> SchemaViolationError:
    with pytest.raises(SchemaViolationError) as caught:
        validate_message(message, **kwargs)
    return caught.value


# --- the spec's examples --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", [name for name in EXAMPLES if not name.endswith("protocol-version.json")])
def test_spec_example_validates_by_its_type(name: str) -> None:
    validate_message(_example(name))


def test_version_response_example_validates_by_schema_name() -> None:
    validate_message(_example("common/example/protocol-version.json"), schema="protocol-version")


def test_every_message_type_of_the_brief_has_a_schema() -> None:
    expected = {
        "ContractRequestMessage", "ContractOfferMessage", "ContractAgreementMessage",
        "ContractAgreementVerificationMessage", "ContractNegotiationEventMessage",
        "ContractNegotiationTerminationMessage", "ContractNegotiation", "ContractNegotiationError",
        "TransferRequestMessage", "TransferStartMessage", "TransferSuspensionMessage", "TransferCompletionMessage",
        "TransferTerminationMessage", "TransferProcess", "TransferError", "CatalogRequestMessage",
        "DatasetRequestMessage", "Catalog", "Dataset", "CatalogError", "protocol-version",
    }
    assert set(MESSAGE_SCHEMAS) == expected


def test_did_service_schema_is_registered_but_never_used_to_validate() -> None:
    did_service = SCHEMA_BASE + "common/did-service-schema.json"

    assert REGISTRY.contents(did_service)["$id"] == did_service
    assert "common/did-service-schema.json" not in MESSAGE_SCHEMAS.values()


# --- the invalid cases of shared/dsp/README.md ---------------------------------------------------------------------


def test_contract_request_with_both_provider_pid_and_callback_is_rejected_at_the_root() -> None:
    message = _example("negotiation/example/contract-request-message.json")
    message["callbackAddress"] = "https://consumer.example/callback"

    error = _violation(message)

    assert (error.message_type, error.pointer) == ("ContractRequestMessage", "")
    assert "callbackAddress" in error.reason and "providerPid" in error.reason


def test_contract_request_with_neither_provider_pid_nor_callback_is_rejected() -> None:
    message = _example("negotiation/example/contract-request-message.json")
    del message["providerPid"]

    error = _violation(message)

    assert error.pointer == ""
    assert "callbackAddress" in error.reason


def test_string_context_is_rejected_at_the_context() -> None:
    message = _example("negotiation/example/contract-request-message.json")
    message["@context"] = message["@context"][0]

    error = _violation(message)

    assert error.pointer == "/@context"
    assert "array" in error.reason


def test_context_without_the_dsp_context_is_rejected() -> None:
    message = _example("transfer/example/transfer-process.json")
    message["@context"] = ["https://w3id.org/dspace/2024/1/context.json"]

    error = _violation(message)

    assert error.pointer == "/@context"
    assert "https://w3id.org/dspace/2025/1/context.jsonld" in error.reason


def test_offer_with_target_inside_a_catalog_is_rejected_at_that_offer() -> None:
    catalog = _example("catalog/example/catalog.json")
    catalog["dataset"][0]["hasPolicy"][0]["target"] = "urn:uuid:3dd1add8-4d2d-569e-d634-8394a8836a88"

    error = _violation(catalog)

    assert (error.message_type, error.pointer) == ("Catalog", "/dataset/0/hasPolicy/0")
    assert "remove the property 'target'" in error.reason


def test_empty_endpoint_properties_are_rejected_at_that_array() -> None:
    message = _example("transfer/example/transfer-start-message.json")
    message["dataAddress"]["endpointProperties"] = []

    error = _violation(message)

    assert error.pointer == "/dataAddress/endpointProperties"
    assert "at least 1" in error.reason


# --- @type handling ------------------------------------------------------------------------------------------------


def test_unknown_type_is_rejected_at_the_type() -> None:
    error = _violation({"@context": ["https://w3id.org/dspace/2025/1/context.jsonld"], "@type": "dspace:Catalog"})

    assert (error.message_type, error.pointer) == ("dspace:Catalog", "/@type")
    assert "not a DSP 2025-1 message type" in error.reason


def test_missing_type_is_rejected_at_the_type() -> None:
    message = _example("transfer/example/transfer-completion-message.json")
    del message["@type"]

    assert _violation(message).pointer == "/@type"


def test_type_given_as_a_list_is_rejected_at_the_type() -> None:
    message = _example("transfer/example/transfer-completion-message.json")
    message["@type"] = [message["@type"]]

    error = _violation(message)

    assert error.pointer == "/@type"
    assert "single string" in error.reason


def test_version_response_cannot_be_selected_through_type() -> None:
    assert _violation({"@type": "protocol-version"}).pointer == "/@type"


def test_non_object_message_is_rejected_at_the_root() -> None:
    assert _violation([]).pointer == ""


def test_unknown_schema_name_is_a_caller_bug() -> None:
    with pytest.raises(ValueError, match="no DSP schema named"):
        validate_message({}, schema="VersionResponse")


def test_explicit_schema_checks_the_type_too() -> None:
    error = _violation(_example("transfer/example/transfer-process.json"), schema="ContractNegotiation")

    assert (error.message_type, error.pointer) == ("ContractNegotiation", "/@type")


# --- other violations carry a pointer and a fix ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "mutate", "pointer", "fix"),
    [
        ("negotiation/example/contract-negotiation.json", lambda m: m.update(state="PENDING"), "/state",
         '"REQUESTED"'),
        ("negotiation/example/contract-agreement-message.json",
         lambda m: m["agreement"].update(timestamp="yesterday"), "/agreement/timestamp", "xsd:dateTime"),
        ("negotiation/example/contract-agreement-message.json", lambda m: m["agreement"].pop("assignee"),
         "/agreement", "'assignee'"),
        ("transfer/example/transfer-error.json", lambda m: m.update(reason=[]), "/reason", "at least 1"),
        ("transfer/example/transfer-suspension-message.json", lambda m: m.pop("providerPid"), "",
         "'providerPid'"),
        ("transfer/example/transfer-termination-message.json", lambda m: m.update(code=99), "/code", "string"),
        ("catalog/example/catalog.json", lambda m: m.pop("participantId"), "", "'participantId'"),
        ("catalog/example/dataset.json", lambda m: m["distribution"][0].pop("format"), "/distribution/0",
         "'format'"),
        ("negotiation/example/contract-offer-message.json",
         lambda m: m["offer"]["permission"][0]["constraint"][0].update(operator="approx"),
         "/offer/permission/0/constraint/0/operator", '"eq"'),
        ("common/example/protocol-version.json", lambda m: m["protocolVersions"][0].update(binding="HTTP"),
         "/protocolVersions/0/binding", '"HTTPS"'),
    ],
)
def test_violation_reports_pointer_and_fix(name: str, mutate: Any, pointer: str, fix: str) -> None:
    message = _example(name)
    mutate(message)

    error = _violation(message, schema=_schema_name(name))

    assert error.pointer == pointer
    assert fix in error.reason
    assert isinstance(error, ProtocolError)
    assert error.message_type in str(error)


def test_pointer_escapes_slash_and_tilde() -> None:
    message = _example("catalog/example/catalog.json")
    message["dataset"][0]["hasPolicy"][0]["permission"][0]["constraint"][0]["rightOperand"] = 5

    error = _violation(message)

    assert error.pointer.startswith("/dataset/0/hasPolicy/0/permission/0/constraint/0")
    assert schemas._json_pointer(_FakeError(["a/b", "c~d", 0])) == "/a~1b/c~0d/0"  # type: ignore[arg-type]


class _FakeError:
    def __init__(self, path: list[str | int]) -> None:
        self.absolute_path = path


# --- the compiled fast check agrees with jsonschema ----------------------------------------------------------------

_INTERESTING_VALUES = [
    None, True, 0, 1.5, "", "use", "eq", "REQUESTED", "Offer", "Agreement", "DataAddress", "EndpointProperty",
    "2023-01-01T01:00:00Z", "https://w3id.org/dspace/2025/1/context.jsonld", [], {}, [{}], ["x"],
    {"@id": "urn:x", "@type": "Offer"}, {"action": "use"}, {"leftOperand": "a", "operator": "eq", "rightOperand": "b"},
    {"and": []}, {"or": [{"leftOperand": "a", "operator": "eq", "rightOperand": "b"}]},
]
_ATOMIC = {"leftOperand": "purpose", "operator": "eq", "rightOperand": "research"}
# Keys the schemas care about, each with a value that is plausible for it, so that added keys often keep the
# message valid or trip exactly one rule (oneOf with two matches, not-required target, and so on).
_PLAUSIBLE = {
    "target": "urn:uuid:dataset", "callbackAddress": "https://consumer.example/cb", "providerPid": "urn:uuid:p",
    "consumerPid": "urn:uuid:c", "and": [_ATOMIC], "or": [_ATOMIC], "xone": [_ATOMIC], "andSequence": [_ATOMIC],
    "@type": "Offer", "@id": "urn:uuid:x", "permission": [{"action": "use"}], "prohibition": [{"action": "use"}],
    "obligation": [{"action": "use"}], "constraint": [_ATOMIC], "profile": ["https://profile.example"],
    "endpointProperties": [{"@type": "EndpointProperty", "name": "a", "value": "b"}], "reason": ["because"],
    "dataset": "urn:uuid:dataset",
    "hasPolicy": [{"@id": "urn:uuid:o", "@type": "Offer", "permission": [{"action": "use"}]}],
    "accessService": "urn:uuid:service", "leftOperand": "purpose", "operator": "eq", "rightOperand": "research",
    "timestamp": "2023-01-01T01:00:00Z", "assigner": "urn:a", "assignee": "urn:b", "code": "1",
}
_INTERESTING_KEYS = sorted(_PLAUSIBLE)


def _locations(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [path]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _locations(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _locations(item, (*path, index))
    return found


def _mutate(message: Any, path: tuple[Any, ...], kind: str, value: Any, key: str) -> Any:
    node = message
    for step in path:
        node = node[step]
    if kind == "add":
        if isinstance(node, dict):
            node[key] = value
        return message
    if not path:
        return value if kind == "replace" else message
    parent = message
    for step in path[:-1]:
        parent = parent[step]
    last = path[-1]
    if kind == "delete":
        del parent[last]
    elif kind == "replace":
        parent[last] = value
    elif kind == "wrap":
        parent[last] = [node]
    elif kind == "unwrap" and isinstance(node, list) and node:
        parent[last] = node[0]
    return message


_REFERENCE = {
    name: Draft201909Validator(REGISTRY.contents(SCHEMA_BASE + path), registry=REGISTRY)
    for name, path in MESSAGE_SCHEMAS.items()
}


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_compiled_check_agrees_with_jsonschema_on_mutated_examples(data: st.DataObject) -> None:
    name = data.draw(st.sampled_from(EXAMPLES))
    schema_name = _schema_name(name)
    message: Any = _example(name)
    for _ in range(data.draw(st.integers(min_value=1, max_value=3))):
        path = data.draw(st.sampled_from(_locations(message)))
        kind = data.draw(st.sampled_from(["delete", "replace", "wrap", "unwrap", "add", "add"]))
        key = data.draw(st.sampled_from(_INTERESTING_KEYS))
        pool = [_PLAUSIBLE[key], *_INTERESTING_VALUES] if kind == "add" else _INTERESTING_VALUES
        value = copy.deepcopy(data.draw(st.sampled_from(pool)))
        message = _mutate(message, path, kind, value, key)

    reference_accepts = _REFERENCE[schema_name].is_valid(message)
    compiled_check, _ = schemas._VALIDATORS[schema_name]
    event("accepted" if reference_accepts else "rejected")

    assert compiled_check(message) == reference_accepts
    if reference_accepts:
        validate_message(message, schema=schema_name)
    else:
        with pytest.raises(SchemaViolationError):
            validate_message(message, schema=schema_name)


def _assert_agreement(message: Any, schema_name: str) -> None:
    compiled_check, _ = schemas._VALIDATORS[schema_name]
    assert compiled_check(message) == _REFERENCE[schema_name].is_valid(message), json.dumps(message)


# contract-agreement-message-full.json repeats the same rule shapes seven times (13 s of sweeping for nothing new);
# the random mutations above still cover it.
@pytest.mark.parametrize("name", [name for name in EXAMPLES if not name.endswith("-full.json")])
def test_compiled_check_agrees_with_jsonschema_on_every_single_edit(name: str) -> None:
    """Every location of the example: deleted, and (for objects) given each schema-relevant key in turn."""
    schema_name = _schema_name(name)
    for path in _locations(_example(name)):
        _assert_agreement(_mutate(_example(name), path, "delete", None, ""), schema_name)
        _assert_agreement(_mutate(_example(name), path, "wrap", None, ""), schema_name)
        for key, value in _PLAUSIBLE.items():
            _assert_agreement(_mutate(_example(name), path, "add", copy.deepcopy(value), key), schema_name)


# --- speed: validation sits on every inbound message -----------------------------------------------------------


def _catalog_with_datasets(count: int) -> dict[str, Any]:
    catalog = _example("catalog/example/catalog.json")
    template = catalog["dataset"][0]
    catalog["dataset"] = [
        {**copy.deepcopy(template), "@id": f"urn:uuid:dataset-{index}"} for index in range(count)
    ]
    return catalog


@pytest.mark.parametrize(
    "message",
    [
        _example("negotiation/example/contract-request-message.json"),
        _example("negotiation/example/contract-agreement-message.json"),
        _example("transfer/example/transfer-start-message.json"),
        _catalog_with_datasets(10),
    ],
    ids=["contract-request", "contract-agreement", "transfer-start", "catalog-10-datasets"],
)
def test_valid_message_validates_well_under_a_millisecond(message: dict[str, Any]) -> None:
    validate_message(message)
    timings = []
    for _ in range(50):
        started = time.perf_counter()
        validate_message(message)
        timings.append(time.perf_counter() - started)

    assert sorted(timings)[len(timings) // 2] < 0.001

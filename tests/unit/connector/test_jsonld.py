"""connector.protocol.jsonld: bundled contexts only, the DSP fast path, and the slow path back to the DSP shape."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from pyld import jsonld as pyld_jsonld

from connector.protocol import jsonld
from connector.protocol.errors import JsonLdError, UnknownContextError
from connector.protocol.jsonld import (
    BUNDLED_CONTEXTS,
    DSP_CONTEXT,
    DSP_ODRL_CONTEXT,
    DSPACE_NS,
    compact,
    expand,
    load_document,
    to_dsp_shape,
)
from connector.protocol.schemas import validate_message
from tests.dsp_examples import SPEC_DIR

ODRL = "http://www.w3.org/ns/odrl/2/"
DCAT = "http://www.w3.org/ns/dcat#"
DCT = "http://purl.org/dc/terms/"
PREFIXES = {"dspace": DSPACE_NS, "odrl": ODRL, "dcat": DCAT, "dct": DCT}


# The DID service examples are DID document fragments, not DSP messages (they use the DID context's id/type), and
# protocol-version.json is plain JSON without @context.
DSP_MESSAGE_EXAMPLES = sorted(
    path.relative_to(SPEC_DIR).as_posix()
    for path in SPEC_DIR.glob("*/example/*.json")
    if "did-service" not in path.name and path.name != "protocol-version.json"
)


def _example(name: str) -> dict[str, Any]:
    return json.loads((SPEC_DIR / name).read_text(encoding="utf-8"))


def _prefixed_form(message: dict[str, Any]) -> dict[str, Any]:
    """The same graph written with prefixed IRIs under an inline context and no DSP context at all."""
    return compact(expand(message), {"@context": PREFIXES})


def _expanded_form(message: dict[str, Any]) -> list[dict[str, Any]]:
    return expand(message)


def _with_extra_inline_context(message: dict[str, Any]) -> dict[str, Any]:
    return {**message, "@context": [DSP_CONTEXT, {"ex": "https://example.com/ns#"}]}


def _with_http_url_variant(message: dict[str, Any]) -> dict[str, Any]:
    return {**message, "@context": ["http://w3id.org/dspace/2025/1/context.jsonld#"]}


REWRITES = {
    "prefixed": _prefixed_form,
    "expanded": _expanded_form,
    "extra-inline-context": _with_extra_inline_context,
    "http-url-variant": _with_http_url_variant,
}


def _slow_path_input(rewrite: str, message: dict[str, Any]) -> dict[str, Any]:
    rewritten = REWRITES[rewrite](message)
    # to_dsp_shape takes one object; an expanded document is a one-node array, so wrap it in @graph-free form.
    if isinstance(rewritten, list):
        (node,) = rewritten
        return {"@context": [], **node}
    return rewritten


@pytest.fixture
def pyld_forbidden(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("pyld was called on the fast path")

    for name in ("expand", "compact", "flatten", "frame", "normalize", "to_rdf"):
        monkeypatch.setattr(pyld_jsonld, name, refuse)


# --- fast path -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", DSP_MESSAGE_EXAMPLES)
def test_dsp_context_body_is_returned_as_is_without_pyld(name: str, pyld_forbidden: None) -> None:
    message = _example(name)
    original = copy.deepcopy(message)

    shaped = to_dsp_shape(message)

    assert shaped is message
    assert shaped == original


def test_dsp_plus_odrl_profile_context_takes_the_fast_path(pyld_forbidden: None) -> None:
    message = {**_example("negotiation/example/contract-request-message.json")}
    message["@context"] = [DSP_CONTEXT, DSP_ODRL_CONTEXT]

    assert to_dsp_shape(message) is message


def test_bare_string_dsp_context_is_normalised_to_a_list_without_pyld(pyld_forbidden: None) -> None:
    listed = _example("transfer/example/transfer-start-message.json")
    bare = {**listed, "@context": DSP_CONTEXT}

    shaped = to_dsp_shape(bare)

    assert shaped == listed
    assert bare["@context"] == DSP_CONTEXT
    validate_message(shaped)


def test_body_without_context_is_left_for_schema_validation_to_reject(pyld_forbidden: None) -> None:
    body = {"@type": "CatalogRequestMessage"}

    assert to_dsp_shape(body) is body


# --- slow path: other but equivalent JSON-LD comes back in the DSP shape --------------------------------------------


@pytest.mark.parametrize("rewrite", sorted(REWRITES))
@pytest.mark.parametrize("name", DSP_MESSAGE_EXAMPLES)
def test_equivalent_json_ld_comes_back_as_the_spec_example(name: str, rewrite: str) -> None:
    example = _example(name)
    rewritten = _slow_path_input(rewrite, example)
    assert rewritten != example

    shaped = to_dsp_shape(rewritten)

    assert shaped == example
    validate_message(shaped)


def test_hand_written_prefixed_contract_request_comes_back_as_the_spec_example() -> None:
    prefixed = {
        "@context": PREFIXES,
        "@type": "dspace:ContractRequestMessage",
        "dspace:providerPid": {"@id": "urn:uuid:a343fcbf-99fc-4ce8-8e9b-148c97605aab"},
        "dspace:consumerPid": {"@id": "urn:uuid:32541fe6-c580-409e-85a8-8a9a32fbe833"},
        "dspace:offer": {
            "@type": "odrl:Offer",
            "@id": "urn:uuid:d526561f-528e-4d5a-ae12-9a9dd9b7a815",
            "odrl:target": {"@id": "urn:uuid:3dd1add8-4d2d-569e-d634-8394a8836a88"},
            "odrl:permission": {
                "odrl:action": {"@id": "odrl:use"},
                "odrl:constraint": {
                    "odrl:leftOperand": {"@id": "dateTime"},
                    "odrl:operator": {"@id": "odrl:lteq"},
                    "odrl:rightOperand": "2023-12-31T06:00Z",
                },
            },
        },
    }

    assert to_dsp_shape(prefixed) == _example("negotiation/example/contract-request-message.json")


def test_hand_written_expanded_transfer_start_comes_back_as_the_spec_example() -> None:
    def literal(value: str) -> list[dict[str, str]]:
        return [{"@value": value}]

    def endpoint_property(name: str, value: str) -> dict[str, Any]:
        return {
            "@type": [DSPACE_NS + "EndpointProperty"],
            DSPACE_NS + "name": literal(name),
            DSPACE_NS + "value": literal(value),
        }

    expanded = {
        "@type": [DSPACE_NS + "TransferStartMessage"],
        DSPACE_NS + "providerPid": [{"@id": "urn:uuid:a343fcbf-99fc-4ce8-8e9b-148c97605aab"}],
        DSPACE_NS + "consumerPid": [{"@id": "urn:uuid:32541fe6-c580-409e-85a8-8a9a32fbe833"}],
        DSPACE_NS + "dataAddress": [{
            "@type": [DSPACE_NS + "DataAddress"],
            DSPACE_NS + "endpointType": [{"@id": "https://w3id.org/idsa/v4.1/HTTP"}],
            DSPACE_NS + "endpoint": literal("http://example.com"),
            DSPACE_NS + "endpointProperties": [
                endpoint_property("authorization", "TOKEN-ABCDEFG"),
                endpoint_property("authType", "bearer"),
            ],
        }],
    }

    shaped = to_dsp_shape({"@context": [], **expanded})

    assert shaped == _example("transfer/example/transfer-start-message.json")


def test_single_operand_of_a_logical_constraint_stays_a_list() -> None:
    prefixed = {
        "@context": PREFIXES,
        "@type": "odrl:Offer",
        "@id": "urn:offer:1",
        "odrl:permission": {
            "odrl:action": {"@id": "odrl:use"},
            "odrl:constraint": {
                "odrl:and": {
                    "odrl:leftOperand": {"@id": "purpose"},
                    "odrl:operator": {"@id": "odrl:eq"},
                    "odrl:rightOperand": "research",
                }
            },
        },
    }
    message = {
        "@context": PREFIXES,
        "@type": "dspace:ContractRequestMessage",
        "dspace:consumerPid": {"@id": "urn:uuid:c"},
        "dspace:callbackAddress": "https://consumer.example/callback",
        "dspace:offer": {**prefixed, "odrl:target": {"@id": "urn:dataset:1"}},
    }
    message["dspace:offer"].pop("@context")

    shaped = to_dsp_shape(message)

    constraint = shaped["offer"]["permission"][0]["constraint"][0]
    assert constraint == {"and": [{"leftOperand": "purpose", "operator": "eq", "rightOperand": "research"}]}
    validate_message(shaped)


def test_node_reference_where_the_schema_wants_a_string_becomes_the_iri() -> None:
    dataset = _example("catalog/example/dataset.json")
    expanded = expand(dataset)[0]
    distribution = expanded[DCAT + "distribution"][0]
    distribution[DCAT + "accessService"] = [{"@id": "urn:uuid:4aa2dcc8-4d2d-569e-d634-8394a8834d77"}]

    shaped = to_dsp_shape({"@context": [], **expanded})

    assert shaped["distribution"][0]["accessService"] == "urn:uuid:4aa2dcc8-4d2d-569e-d634-8394a8834d77"
    validate_message(shaped)


def test_slow_path_results_do_not_depend_on_what_was_processed_before() -> None:
    # pyld 3.3.0 reuses an @import merge across type scopes: after a Dataset, a ContractAgreementMessage used to
    # lose its `agreement`. The loader inlines the DSP context's imports, so every order gives the same answers.
    names = DSP_MESSAGE_EXAMPLES + DSP_MESSAGE_EXAMPLES[::-1]
    for name in names:
        example = _example(name)
        assert to_dsp_shape(_with_extra_inline_context(example)) == example, name


def test_keys_without_meaning_in_the_senders_context_are_dropped() -> None:
    body = {**_example("catalog/example/catalog-request-message.json"), "@context": [DSP_CONTEXT, {}]}
    body["undefinedKey"] = "ignored"

    shaped = to_dsp_shape(body)

    assert shaped == _example("catalog/example/catalog-request-message.json")


# --- errors --------------------------------------------------------------------------------------------------------


def test_unknown_context_url_is_refused_with_the_url_and_the_fix() -> None:
    url = "https://contexts.example.com/custom.jsonld"
    body = {**_example("negotiation/example/contract-negotiation.json"), "@context": [DSP_CONTEXT, url]}

    with pytest.raises(UnknownContextError) as caught:
        to_dsp_shape(body)

    assert caught.value.url == url
    message = str(caught.value)
    assert url in message
    assert "not bundled" in message
    assert "never fetches" in message
    assert DSP_CONTEXT in message


def test_loader_refuses_unknown_urls_itself() -> None:
    with pytest.raises(UnknownContextError):
        load_document("https://schema.org/")


def test_redefining_a_protected_dsp_term_is_a_json_ld_error() -> None:
    body = {**_example("catalog/example/catalog.json"), "@context": [DSP_CONTEXT, {"Catalog": "urn:other:Catalog"}]}

    with pytest.raises(JsonLdError) as caught:
        to_dsp_shape(body)

    assert "protected term redefinition" in caught.value.reason


def test_several_top_level_nodes_are_a_json_ld_error() -> None:
    body = {"@context": [DSP_CONTEXT, {}], "@graph": [{"@type": "Catalog"}, {"@type": "Dataset"}]}

    with pytest.raises(JsonLdError, match="one node"):
        to_dsp_shape(body)


def test_inline_import_of_a_bundled_context_fails_and_leaves_later_messages_intact() -> None:
    agreement = _example("negotiation/example/contract-agreement-message.json")
    poisoned = {
        **agreement,
        "@context": [DSP_CONTEXT, {"@import": DSP_ODRL_CONTEXT, "permission": "urn:evil:permission"}],
    }

    with pytest.raises(JsonLdError, match="@import"):
        to_dsp_shape(poisoned)

    assert to_dsp_shape(_with_extra_inline_context(agreement)) == agreement
    offer = _example("negotiation/example/contract-offer-message.json")
    assert to_dsp_shape({**offer, "@context": [DSP_CONTEXT, DSP_ODRL_CONTEXT, {}]}) == offer


# --- bundled contexts ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("url", sorted(BUNDLED_CONTEXTS))
def test_every_bundled_context_loads_under_its_url_and_variants(url: str) -> None:
    for variant in (url, url + "#", url.replace("https://", "http://"), url.replace("http://", "https://")):
        document = load_document(variant)["document"]
        assert isinstance(document["@context"], dict | pyld_jsonld.frozendict)


def test_bundled_dsp_context_no_longer_imports_at_run_time() -> None:
    dsp = load_document(DSP_CONTEXT)["document"]["@context"]

    scoped = dsp["ContractRequestMessage"]["@context"]
    assert "@import" not in scoped
    assert scoped["permission"] == {"@type": "@id", "@id": "odrl:permission", "@container": "@set"}
    assert scoped["offer"] == {"@type": "@id", "@id": "dspace:offer"}


def test_odrl_context_maps_neq_to_odrl_neq_and_uid_to_the_node_id() -> None:
    policy = {
        "@context": "http://www.w3.org/ns/odrl.jsonld",
        "@type": "Set",
        "uid": "urn:policy:1",
        "permission": [{"action": "use", "constraint": [{"leftOperand": "purpose", "operator": "neq",
                                                          "rightOperand": "marketing"}]}],
    }

    (node,) = expand(policy)

    assert node["@id"] == "urn:policy:1"
    constraint = node[ODRL + "permission"][0][ODRL + "constraint"][0]
    assert constraint[ODRL + "operator"] == [{"@id": ODRL + "neq"}]
    assert constraint[ODRL + "leftOperand"] == [{"@id": ODRL + "purpose"}]


def test_edc_management_context_puts_unprefixed_keys_in_the_edc_namespace() -> None:
    edc = "https://w3id.org/edc/v0.0.1/ns/"
    asset = {
        "@context": "https://w3id.org/edc/connector/management/v0.0.1",
        "@id": "asset-1",
        "properties": {"name": "weather"},
        "odrl:hasPolicy": {"@id": "urn:policy:1"},
    }

    (node,) = expand(asset)

    assert node[edc + "properties"] == [{edc + "name": [{"@value": "weather"}]}]
    assert node[ODRL + "hasPolicy"] == [{"@id": "urn:policy:1"}]


def test_did_and_credential_contexts_expand_offline() -> None:
    did_document = {
        "@context": ["https://www.w3.org/ns/did/v1", "https://w3id.org/security/suites/jws-2020/v1"],
        "id": "did:web:provider.example",
        "verificationMethod": [{"id": "did:web:provider.example#key-1", "type": "JsonWebKey2020",
                                "controller": "did:web:provider.example",
                                "publicKeyJwk": {"kty": "OKP", "crv": "Ed25519", "x": "abc"}}],
        "service": [{"id": "#dsp", "type": "DataService", "serviceEndpoint": "https://provider.example/dsp"}],
    }
    credential_v1 = {
        "@context": ["https://www.w3.org/2018/credentials/v1"],
        "type": ["VerifiableCredential"],
        "issuer": "did:web:issuer.example",
        "issuanceDate": "2025-01-01T00:00:00Z",
        "credentialSubject": {"id": "did:web:provider.example"},
    }
    credential_v2 = {key: value for key, value in credential_v1.items() if key != "issuanceDate"}
    credential_v2.update({"@context": ["https://www.w3.org/ns/credentials/v2"], "validFrom": "2025-01-01T00:00:00Z"})

    (did,) = expand(did_document)
    (vc1,) = expand(credential_v1)
    (vc2,) = expand(credential_v2)

    assert did["https://www.w3.org/ns/did#service"][0]["https://www.w3.org/ns/did#serviceEndpoint"] == [
        {"@id": "https://provider.example/dsp"}
    ]
    method = did["https://w3id.org/security#verificationMethod"][0]
    assert method["@type"] == ["https://w3id.org/security#JsonWebKey2020"]
    assert vc1["@type"] == ["https://www.w3.org/2018/credentials#VerifiableCredential"]
    assert vc2["https://www.w3.org/2018/credentials#issuer"] == [{"@id": "did:web:issuer.example"}]


def test_compact_accepts_a_bare_context_value() -> None:
    (node,) = expand(_example("negotiation/example/contract-negotiation.json"))

    compacted = compact(node, PREFIXES)

    assert compacted["@type"] == "dspace:ContractNegotiation"
    assert compacted["dspace:state"] == {"@id": "dspace:REQUESTED"}


def test_pyld_global_loader_is_left_untouched() -> None:
    before = pyld_jsonld.get_document_loader()

    to_dsp_shape(_with_extra_inline_context(_example("transfer/example/transfer-process.json")))

    assert pyld_jsonld.get_document_loader() is before
    assert jsonld.load_document is not before

"""Check DSP 2025-1 messages against the normative JSON schemas bundled in `connector/resources/dsp/2025-1/`.

The rule kept here: a message is valid exactly when the official schema (draft 2019-09) accepts it, with two
repairs of known defects in the 2025-1 artifacts (NOTES §2): the `#definitions/…` pointers that lack a `/` are
fixed at load, and `common/did-service-schema.json`, which rejects the specification's own example, is never used
to validate.

Validation runs on every inbound message, so it is split in two. Each schema is compiled once, at import, into a
tree of small Python predicates covering the keywords the 2025-1 schemas use; a message they accept is valid and
costs tens of microseconds. Only a rejected message goes through `jsonschema` (draft 2019-09, over a
`referencing` registry), which is the reference: it decides, and its `best_match` error gives the pointer and
reason reported. The unit tests check that both agree on the examples and on thousands of generated variants.

Bodies reach `validate_message` after `jsonld.to_dsp_shape`, so they have the compacted shape the schemas
describe.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping
from importlib.resources import files
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from jsonschema import Draft201909Validator
from jsonschema.exceptions import ValidationError, best_match
from referencing import Registry
from referencing.jsonschema import DRAFT201909

from connector.protocol.errors import SchemaViolationError

if TYPE_CHECKING:
    from referencing._core import Resolver  # not re-exported by referencing; used for annotations only

SCHEMA_BASE = "https://w3id.org/dspace/2025/1/"

MESSAGE_SCHEMAS: Mapping[str, str] = MappingProxyType({
    "CatalogRequestMessage": "catalog/catalog-request-message-schema.json",
    "DatasetRequestMessage": "catalog/dataset-request-message-schema.json",
    "Catalog": "catalog/catalog-schema.json",
    "Dataset": "catalog/dataset-schema.json",
    "CatalogError": "catalog/catalog-error-schema.json",
    "ContractRequestMessage": "negotiation/contract-request-message-schema.json",
    "ContractOfferMessage": "negotiation/contract-offer-message-schema.json",
    "ContractAgreementMessage": "negotiation/contract-agreement-message-schema.json",
    "ContractAgreementVerificationMessage": "negotiation/contract-agreement-verification-message-schema.json",
    "ContractNegotiationEventMessage": "negotiation/contract-negotiation-event-message-schema.json",
    "ContractNegotiationTerminationMessage": (
        "negotiation/contract-negotiation-termination-message-schema.json"
    ),
    "ContractNegotiation": "negotiation/contract-negotiation-schema.json",
    "ContractNegotiationError": "negotiation/contract-negotiation-error-schema.json",
    "TransferRequestMessage": "transfer/transfer-request-message-schema.json",
    "TransferStartMessage": "transfer/transfer-start-message-schema.json",
    "TransferSuspensionMessage": "transfer/transfer-suspension-message-schema.json",
    "TransferCompletionMessage": "transfer/transfer-completion-message-schema.json",
    "TransferTerminationMessage": "transfer/transfer-termination-message-schema.json",
    "TransferProcess": "transfer/transfer-process-schema.json",
    "TransferError": "transfer/transfer-error-schema.json",
    "protocol-version": "common/protocol-version-schema.json",
})
"""What `validate_message` checks: DSP `@type` values, plus "protocol-version" for the plain-JSON VersionResponse."""

_DISPLAY_NAMES = {"protocol-version": "VersionResponse"}
_SCHEMA_DIRS = ("catalog", "common", "negotiation", "transfer")
_BROKEN_POINTER = (".json#definitions/", ".json#/definitions/")


def _load_schemas() -> Iterator[dict[str, Any]]:
    root = files("connector") / "resources" / "dsp" / "2025-1"
    for directory in _SCHEMA_DIRS:
        for entry in sorted((root / directory).iterdir(), key=lambda item: item.name):
            if entry.name.endswith("-schema.json"):
                yield json.loads(entry.read_text(encoding="utf-8").replace(*_BROKEN_POINTER))


def _build_registry() -> Registry[Any]:
    resources = [(schema["$id"], DRAFT201909.create_resource(schema)) for schema in _load_schemas()]
    return Registry().with_resources(resources).crawl()


REGISTRY: Registry[Any] = _build_registry()
"""Every bundled 2025-1 schema by `$id` (did-service included, for reference only)."""

_Check = Callable[[Any], bool]


def _compile(schema: Any, resolver: Resolver[Any], memo: dict[int, list[_Check]]) -> _Check:
    """Turn a draft 2019-09 (sub)schema into one predicate; unknown keywords fail loudly at import."""
    if isinstance(schema, bool):
        return (lambda _instance: True) if schema else (lambda _instance: False)
    if "$id" in schema:
        resolver = resolver.in_subresource(DRAFT201909.create_resource(schema))
    checks = []
    for keyword, value in schema.items():
        if keyword in _ANNOTATIONS:
            continue
        builder = _KEYWORDS.get(keyword)
        if builder is None:
            raise ValueError(f"schema keyword {keyword!r} has no compiled form; add it to _KEYWORDS")
        checks.append(builder(value, resolver, memo))
    return _all_of_checks(checks)


def _all_of_checks(checks: list[_Check]) -> _Check:
    if len(checks) == 1:
        return checks[0]

    def check(instance: Any) -> bool:
        for each in checks:
            if not each(instance):
                return False
        return True

    return check


def _ref(value: str, resolver: Resolver[Any], memo: dict[int, list[_Check]]) -> _Check:
    resolved = resolver.lookup(value)
    key = id(resolved.contents)
    cell = memo.get(key)
    if cell is None:
        memo[key] = cell = []  # an empty cell first, so recursive definitions (Constraint) terminate
        cell.append(_compile(resolved.contents, resolved.resolver, memo))
    if cell:
        return cell[0]
    return lambda instance: cell[0](instance)  # a reference back into a definition still being compiled


def _type(value: str | list[str], resolver: Resolver[Any], memo: dict[int, list[_Check]]) -> _Check:
    names = [value] if isinstance(value, str) else value
    tests = [_TYPE_TESTS[name] for name in names]
    if len(tests) == 1:
        return tests[0]
    return lambda instance: any(test(instance) for test in tests)


def _properties(value: dict[str, Any], resolver: Resolver[Any], memo: dict[int, list[_Check]]) -> _Check:
    compiled = [(name, _compile(sub, resolver, memo)) for name, sub in value.items()]

    def check(instance: Any) -> bool:
        if not isinstance(instance, dict):
            return True
        for name, each in compiled:
            if name in instance and not each(instance[name]):
                return False
        return True

    return check


def _required(value: list[str], resolver: Resolver[Any], memo: dict[int, list[_Check]]) -> _Check:
    if len(value) == 1:
        name = value[0]
        return lambda instance: not isinstance(instance, dict) or name in instance
    return lambda instance: not isinstance(instance, dict) or all(name in instance for name in value)


def _items(value: Any, resolver: Resolver[Any], memo: dict[int, list[_Check]]) -> _Check:
    if isinstance(value, list):
        prefix = [_compile(sub, resolver, memo) for sub in value]
        return lambda instance: not isinstance(instance, list) or all(
            each(item) for each, item in zip(prefix, instance, strict=False)
        )
    each = _compile(value, resolver, memo)
    return lambda instance: not isinstance(instance, list) or all(each(item) for item in instance)


def _min_items(value: int, resolver: Resolver[Any], memo: dict[int, list[_Check]]) -> _Check:
    return lambda instance: not isinstance(instance, list) or len(instance) >= value


def _contains(value: Any, resolver: Resolver[Any], memo: dict[int, list[_Check]]) -> _Check:
    each = _compile(value, resolver, memo)
    return lambda instance: not isinstance(instance, list) or any(each(item) for item in instance)


def _const(value: Any, resolver: Resolver[Any], memo: dict[int, list[_Check]]) -> _Check:
    if isinstance(value, str):
        return lambda instance: isinstance(instance, str) and instance == value
    return lambda instance: _json_equal(instance, value)


def _enum(value: list[Any], resolver: Resolver[Any], memo: dict[int, list[_Check]]) -> _Check:
    if all(isinstance(option, str) for option in value):
        options = frozenset(value)
        return lambda instance: isinstance(instance, str) and instance in options
    return lambda instance: any(_json_equal(instance, option) for option in value)


def _pattern(value: str, resolver: Resolver[Any], memo: dict[int, list[_Check]]) -> _Check:
    regex = re.compile(value)
    return lambda instance: not isinstance(instance, str) or regex.search(instance) is not None


def _all_of(value: list[Any], resolver: Resolver[Any], memo: dict[int, list[_Check]]) -> _Check:
    return _all_of_checks([_compile(sub, resolver, memo) for sub in value])


def _any_of(value: list[Any], resolver: Resolver[Any], memo: dict[int, list[_Check]]) -> _Check:
    subs = [_compile(sub, resolver, memo) for sub in value]
    return lambda instance: any(each(instance) for each in subs)


def _one_of(value: list[Any], resolver: Resolver[Any], memo: dict[int, list[_Check]]) -> _Check:
    subs = [_compile(sub, resolver, memo) for sub in value]

    def check(instance: Any) -> bool:
        matches = 0
        for each in subs:
            if each(instance):
                matches += 1
                if matches > 1:
                    return False
        return matches == 1

    return check


def _not(value: Any, resolver: Resolver[Any], memo: dict[int, list[_Check]]) -> _Check:
    sub = _compile(value, resolver, memo)
    return lambda instance: not sub(instance)


def _json_equal(left: Any, right: Any) -> bool:
    """JSON equality as JSON Schema defines it: 1 == 1.0, but true != 1."""
    if isinstance(left, bool) or isinstance(right, bool):
        return isinstance(left, bool) and isinstance(right, bool) and left == right
    if isinstance(left, int | float) and isinstance(right, int | float):
        return left == right
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(_json_equal(left[key], right[key]) for key in left)
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(_json_equal(a, b) for a, b in zip(left, right, strict=True))
    return type(left) is type(right) and left == right


_TYPE_TESTS: dict[str, _Check] = {
    "object": lambda instance: isinstance(instance, dict),
    "array": lambda instance: isinstance(instance, list),
    "string": lambda instance: isinstance(instance, str),
    "boolean": lambda instance: isinstance(instance, bool),
    "null": lambda instance: instance is None,
    "number": lambda instance: isinstance(instance, int | float) and not isinstance(instance, bool),
    "integer": lambda instance: (isinstance(instance, int) and not isinstance(instance, bool))
    or (isinstance(instance, float) and instance.is_integer()),
}
_KEYWORDS: dict[str, Callable[[Any, Resolver[Any], dict[int, list[_Check]]], _Check]] = {
    "$ref": _ref, "type": _type, "properties": _properties, "required": _required, "items": _items,
    "minItems": _min_items, "contains": _contains, "const": _const, "enum": _enum, "pattern": _pattern,
    "allOf": _all_of, "anyOf": _any_of, "oneOf": _one_of, "not": _not,
}
_ANNOTATIONS = frozenset({"$schema", "$id", "$comment", "title", "description", "definitions"})


def _build_validators() -> dict[str, tuple[_Check, Draft201909Validator]]:
    memo: dict[int, list[_Check]] = {}
    validators = {}
    for name, path in MESSAGE_SCHEMAS.items():
        uri = SCHEMA_BASE + path
        contents = REGISTRY.contents(uri)
        compiled = _compile(contents, REGISTRY.resolver(base_uri=uri), memo)
        validators[name] = (compiled, Draft201909Validator(contents, registry=REGISTRY))
    return validators


_VALIDATORS = _build_validators()


def validate_message(message: dict[str, Any], *, schema: str | None = None) -> None:
    """Raise `SchemaViolationError` unless `message` satisfies the DSP 2025-1 schema for its type.

    The schema is chosen by `message["@type"]` unless `schema` names one of `MESSAGE_SCHEMAS` (needed for the
    VersionResponse, which has no @type). A missing, non-string or unknown @type is itself a violation at
    "/@type". Of several violations, the one jsonschema's `best_match` ranks first is reported.

    Raises `ValueError` for a `schema` name outside `MESSAGE_SCHEMAS`, which is a bug in the caller.
    """
    if schema is not None:
        if schema not in _VALIDATORS:
            raise ValueError(f"no DSP schema named {schema!r}; use one of {', '.join(sorted(_VALIDATORS))}")
        message_type = _DISPLAY_NAMES.get(schema, schema)
        is_valid, validator = _VALIDATORS[schema]
    else:
        message_type, (is_valid, validator) = _validator_for_type(message)
    if is_valid(message):
        return
    # jsonschema is the reference: should the compiled predicates ever be stricter, its verdict wins.
    error = best_match(validator.iter_errors(message))
    if error is not None:
        raise SchemaViolationError(message_type, _json_pointer(error), _fix_for(error))


def _validator_for_type(message: Any) -> tuple[str, tuple[_Check, Draft201909Validator]]:
    if not isinstance(message, dict):
        raise SchemaViolationError("unknown", "", "send a JSON object as the message body")
    if "@type" not in message:
        raise SchemaViolationError("unknown", "/@type", "add @type naming the DSP message type")
    message_type = message["@type"]
    if not isinstance(message_type, str):
        raise SchemaViolationError("unknown", "/@type", "give @type as a single string, not a list or object")
    validators = _VALIDATORS.get(message_type)
    if validators is None or message_type in _DISPLAY_NAMES:
        shown = message_type[:80]
        raise SchemaViolationError(
            shown, "/@type", f"{shown!r} is not a DSP 2025-1 message type; use one such as "
            "ContractRequestMessage, TransferStartMessage or CatalogRequestMessage, unprefixed"
        )
    return message_type, validators


def _json_pointer(error: ValidationError) -> str:
    """RFC 6901 pointer to the failing value inside the message ("" is the whole message)."""
    return "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in error.absolute_path)


def _fix_for(error: ValidationError) -> str:
    """Say what to change, in the peer's terms, without echoing the payload."""
    rule, expected, instance = error.validator, error.validator_value, error.instance
    if rule == "required":
        missing = [name for name in expected if isinstance(instance, dict) and name not in instance]
        return f"add the required property {missing[0] if missing else expected[0]!r}"
    if rule == "type":
        return f"use a JSON {expected if isinstance(expected, str) else ' or '.join(expected)} here"
    if rule == "const":
        return f"use the value {json.dumps(expected)}"
    if rule == "enum":
        return f"use one of {', '.join(json.dumps(value) for value in expected)}"
    if rule == "minItems":
        return f"give at least {expected} item(s), or leave the property out where it is optional"
    if rule == "pattern" and error.path and error.path[-1] == "timestamp":
        return 'use an xsd:dateTime such as "2025-01-31T12:00:00Z"'
    if rule == "pattern":
        return f"use a string that matches the pattern {expected}"
    if rule == "contains" and isinstance(expected, dict) and "const" in expected:
        return f"include {json.dumps(expected['const'])} in this array"
    if rule == "oneOf":
        return _fix_for_one_of(expected)
    if rule == "not" and isinstance(expected, dict) and expected.get("required"):
        return f"remove the property {expected['required'][0]!r}, which is not allowed here"
    return f"make the value satisfy the schema's {rule!r} rule ({json.dumps(expected)[:120]})"


def _fix_for_one_of(alternatives: list[Any]) -> str:
    names = [
        alt["required"][0] for alt in alternatives if isinstance(alt, dict) and len(alt.get("required", ())) == 1
    ]
    if len(names) == len(alternatives):
        return f"send exactly one of {' or '.join(repr(name) for name in names)}, not both or neither"
    return "make the value match exactly one of the shapes the schema allows here"

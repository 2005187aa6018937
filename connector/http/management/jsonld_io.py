"""Read management bodies as EDC's JSON-LD or as plain JSON, and answer in EDC's compacted shape.

The rule kept here: views only ever see plain field names. A body with `@context` (EDC's `{"@vocab": edc}` object
or the bundled EDC management context URL) is expanded with the bundled contexts only (never fetched) and
compacted against `MANAGEMENT_CONTEXT`, which yields unprefixed EDC names. A body without `@context` is taken as
plain JSON; an `edc:` prefix or the full EDC namespace on a key is stripped so both spellings read the same.

A `policy` member is ODRL and is read differently: unprefixed ODRL terms (`permission`, `action`, ...) mean ODRL
even under an EDC `@vocab`, as EDC's own management context defines them, and the result is the DSP 2025-1
compact shape the policy engine and the catalog use. That is lenient on purpose: EDC's JSON-LD friction
(properties silently landing in the wrong namespace) is its users' most common complaint.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cache
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from connector.http.body import BodyError, read_json
from connector.http.management.errors import invalid
from connector.protocol.errors import JsonLdError, ProtocolError, UnknownContextError
from connector.protocol.jsonld import DSP_CONTEXT, DSP_ODRL_CONTEXT, DSPACE_NS, compact, expand, load_document
from policies import ODRL

EDC_NS = "https://w3id.org/edc/v0.0.1/ns/"
ODRL_NS = ODRL  # one spelling of the ODRL namespace, the policy domain's
EDC_MANAGEMENT_CONTEXT_URL = "https://w3id.org/edc/connector/management/v0.0.1"
MANAGEMENT_CONTEXT: dict[str, str] = {"@vocab": EDC_NS, "edc": EDC_NS, "odrl": ODRL_NS}
BODY_LIMIT = 4 * 1024 * 1024

_PREFIXES = {"edc": EDC_NS, "odrl": ODRL_NS, "dspace": DSPACE_NS, "xsd": "http://www.w3.org/2001/XMLSchema#",
             "dct": "http://purl.org/dc/terms/", "dcat": "http://www.w3.org/ns/dcat#"}
# Management fields that are lists even when a client (or compaction) gives a single object.
_LIST_FIELDS = frozenset({"assetsSelector", "filterExpression", "callbackAddresses", "events", "additionalScopes"})
# ODRL terms of the DSP profile, and the shape DSP 2025-1 gives each.
_ODRL_LISTS = frozenset({"permission", "prohibition", "obligation", "duty", "constraint", "and", "or", "xone",
                         "andSequence", "remedy", "consequence", "refinement"})
_ODRL_SCALARS = frozenset({"action", "leftOperand", "operator", "target", "assigner", "assignee", "profile"})
_ODRL_TERMS = _ODRL_LISTS | _ODRL_SCALARS | {"rightOperand", "rightOperandReference", "hasPolicy", "unit",
                                             "dataType", "uid"}
_DCAT_DATASET = "http://www.w3.org/ns/dcat#Dataset"
_ODRL_HAS_POLICY = ODRL_NS + "hasPolicy"
_ODRL_VOCAB_VALUED = frozenset({"action", "operator", "leftOperand"})


# -- reading -------------------------------------------------------------------------------------------------------
def normalise(raw: Mapping[str, Any]) -> dict[str, Any]:
    """A management body with plain field names and any `policy` in DSP compact shape.

    Raises ManagementRequestError (400) when JSON-LD processing fails or the policy is not an object.
    """
    body = dict(raw)
    policy_keys = [k for k in body if _plain_key(k) == "policy"]
    policies = [body.pop(k) for k in policy_keys]
    context = body.pop("@context", None)
    plain = _strip_edc(body) if context is None else _from_jsonld(context, body)
    for field in _LIST_FIELDS & plain.keys():
        if not isinstance(plain[field], list):
            plain[field] = [plain[field]]
    if policies:
        plain["policy"] = normalise_policy(policies[-1], prefixes=_prefixes(context))
    return plain


def _plain_key(key: str) -> str:
    return key.removeprefix(EDC_NS).removeprefix("edc:")


def _strip_edc(value: Any) -> Any:
    if isinstance(value, dict):
        return {_plain_key(k): _strip_edc(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_strip_edc(v) for v in value]
    return value


def _from_jsonld(context: Any, body: dict[str, Any]) -> dict[str, Any]:
    # The @id is taken as given: JSON-LD drops a top-level node holding nothing but its @id, and would resolve a
    # relative id against a base. Management ids are opaque strings.
    node_id = body.pop("@id", None)
    compacted = _compacted(context, body) if body else {}
    return compacted if node_id is None else {"@id": node_id, **compacted}


def _compacted(context: Any, body: dict[str, Any]) -> dict[str, Any]:
    try:
        # Common prefixes go first, so `edc:x` or `dct:y` mean what they mean in EDC even when the client's own
        # context forgot to declare them (compaction would otherwise fail on "edc" used as an IRI scheme).
        user_contexts = context if isinstance(context, list) else [context]
        expanded = expand({"@context": [_PREFIXES, *user_contexts], **body})
        if not expanded:
            return {}
        if len(expanded) > 1:
            raise invalid(None, "the body holds several top-level JSON-LD nodes; send exactly one object")
        compacted = compact(expanded[0], MANAGEMENT_CONTEXT)
    except ProtocolError as exc:
        raise invalid("/@context", f"cannot be applied: {_explain(exc)}") from exc
    compacted.pop("@context", None)
    return compacted


def _explain(exc: ProtocolError) -> str:
    if isinstance(exc, UnknownContextError):
        return (f"context {exc.url} is not bundled and contexts are never fetched; use "
                f'{{"@vocab": "{EDC_NS}"}} or {EDC_MANAGEMENT_CONTEXT_URL}')
    return exc.reason if isinstance(exc, JsonLdError) else str(exc)


def _prefixes(context: Any) -> dict[str, str]:
    """Prefix definitions of the body's own context (never its @vocab), for reading a nested policy."""
    entries = context if isinstance(context, list) else [context]
    found: dict[str, str] = {}
    for entry in entries:
        if isinstance(entry, Mapping):
            found.update({k: v for k, v in entry.items() if isinstance(v, str) and not k.startswith("@")})
    return found


@cache
def _odrl_terms() -> str:
    """The DSP ODRL profile's term definitions, as JSON text (never handed to pyld itself)."""
    return json.dumps(load_document(DSP_ODRL_CONTEXT)["document"]["@context"])


def _policy_context(prefixes: Mapping[str, str]) -> dict[str, Any]:
    """A fresh inline context: the ODRL profile's terms plus prefixes.

    pyld keys the resolved contexts it caches, process-wide and shared with DSP message processing, by their
    content, and its `@import` handling writes into a cached context. So this context is never the bundled profile
    itself (its content differs by the prefixes) and never an object kept here: a peer's `@import` can neither
    reach it nor be affected by it.
    """
    terms: dict[str, Any] = json.loads(_odrl_terms())
    return {**terms, **_PREFIXES, **prefixes}


def normalise_policy(policy: Any, *, prefixes: Mapping[str, str] | None = None,
                     pointer: str = "/policy") -> dict[str, Any]:
    """An ODRL policy in DSP 2025-1 compact shape; unprefixed ODRL terms are read as ODRL.

    The policy is compacted the way DSP processing compacts a catalog, as the `hasPolicy` of a Dataset under the
    DSP context alone.
    """
    if not isinstance(policy, Mapping):
        raise invalid(pointer, "must be a JSON object (an ODRL policy)", policy)
    if not prefixes and _is_dsp_compact(policy):
        return _tidy(dict(policy))  # already the plain DSP shape (what our own catalog hands out): no pyld
    own = policy.get("@context")
    contexts: list[Any] = [_policy_context(prefixes or {})]
    contexts += own if isinstance(own, list) else [own] if own else []
    try:
        expanded = expand({**{k: v for k, v in policy.items() if k != "@context"}, "@context": contexts})
        if len(expanded) > 1:
            raise invalid(pointer, "holds several JSON-LD nodes; send one policy object")
        if not expanded:
            return {}
        dataset = compact({"@type": [_DCAT_DATASET], _ODRL_HAS_POLICY: expanded}, [DSP_CONTEXT])
    except ProtocolError as exc:
        raise invalid(pointer, f"cannot be read as ODRL: {_explain(exc)}") from exc
    compacted = dataset.get("hasPolicy") or [{}]
    return _tidy(compacted[0])


_COMPACT_KEYS = frozenset({
    "@id", "@type", "permission", "prohibition", "obligation", "duty", "action", "constraint", "leftOperand",
    "operator", "rightOperand", "target", "assigner", "assignee", "profile", "and", "or", "xone", "andSequence",
    "refinement", "remedy", "consequence", "uid",
})
_BARE_VALUED = frozenset({"action", "leftOperand", "operator"})


def _is_dsp_compact(value: Any, key: str | None = None) -> bool:
    """Whether a policy already uses only unprefixed DSP/ODRL terms, so JSON-LD processing would change nothing.

    Conservative: any @context, unknown or prefixed key, or a prefixed action/operator/left operand sends the
    policy through pyld instead. Right operands are opaque values and are not inspected.
    """
    if key == "rightOperand":
        return True
    if isinstance(value, list):
        return all(_is_dsp_compact(v, key) for v in value)
    if isinstance(value, Mapping):
        return all(k in _COMPACT_KEYS and _is_dsp_compact(v, k) for k, v in value.items())
    if key in _BARE_VALUED:
        return isinstance(value, str) and ":" not in value and "/" not in value
    return isinstance(value, str | int | float | bool)


def _tidy(node: dict[str, Any]) -> dict[str, Any]:
    """Finish the DSP shape: `odrl:` keys a literal left prefixed, list and scalar members, bare values, and no
    empty rule or constraint lists."""
    tidy: dict[str, Any] = {}
    for key, value in node.items():
        name = key[5:] if key.startswith("odrl:") and key[5:] in _ODRL_TERMS else key
        value = _tidy_value(value)
        if name in _ODRL_LISTS and value == []:
            continue  # EDC clients send "prohibition": [] and the like; DSP schemas refuse empty rule lists
        if name in _ODRL_LISTS and not isinstance(value, list):
            value = [value]
        elif name in _ODRL_SCALARS:
            value = _scalar(value, bare=name in _ODRL_VOCAB_VALUED)
        elif name == "@type" and isinstance(value, str):
            value = value.removeprefix("odrl:")
        if name in tidy and isinstance(tidy[name], list) and isinstance(value, list):
            tidy[name] = tidy[name] + value
        else:
            tidy[name] = value
    return tidy


def _tidy_value(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"@value"}:
            return value["@value"]
        return _tidy(value)
    if isinstance(value, list):
        return [_tidy_value(v) for v in value]
    return value


def _scalar(value: Any, *, bare: bool) -> Any:
    """One value; for action, operator and leftOperand an ODRL term loses its prefix, as plain DSP JSON has it."""
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    if isinstance(value, dict) and set(value) == {"@id"}:
        value = value["@id"]
    if bare and isinstance(value, str):
        value = value.removeprefix(ODRL_NS).removeprefix("odrl:")
    return value


async def _read(request: Request, *, required: bool) -> dict[str, Any]:
    try:
        raw = await read_json(request, limit=BODY_LIMIT)
    except BodyError as exc:
        if exc.code == "body.missing" and not required:
            return {}
        raise
    if not isinstance(raw, dict):
        raise invalid(None, "the body must be a JSON object")
    size = request.headers.get("content-length", "")
    if size.isdigit() and int(size) <= INLINE_LIMIT and _plain_json(raw):
        return normalise(raw)  # small and no pyld: cheaper here than a hop to a worker thread and back
    return await run_in_threadpool(normalise, raw)


INLINE_LIMIT = 16 * 1024  # bytes of a body that may be normalised on the event loop


def _plain_json(raw: Mapping[str, Any]) -> bool:
    """Whether `normalise` will only rename keys: no @context, and any policy already in DSP compact shape."""
    return "@context" not in raw and all(_is_dsp_compact(v) for k, v in raw.items() if _plain_key(k) == "policy"
                                         and isinstance(v, Mapping))


async def json_body(request: Request) -> dict[str, Any]:
    """Dependency: the request's JSON object, normalised (a body is required)."""
    return await _read(request, required=True)


async def optional_json_body(request: Request) -> dict[str, Any]:
    """Dependency: as `json_body`, but an empty body reads as `{}` (query specs, command reasons)."""
    return await _read(request, required=False)


Body = Annotated[dict[str, Any], Depends(json_body)]
OptionalBody = Annotated[dict[str, Any], Depends(optional_json_body)]


# -- answering -----------------------------------------------------------------------------------------------------
def with_context(entity: dict[str, Any]) -> dict[str, Any]:
    return {"@context": MANAGEMENT_CONTEXT, **{k: v for k, v in entity.items() if v is not None}}


def respond(entity: dict[str, Any] | list[dict[str, Any]], status: int = 200) -> JSONResponse:
    """EDC's answer shape: every object carries the management @context; absent values are left out."""
    if isinstance(entity, list):
        return JSONResponse([with_context(e) for e in entity], status_code=status)
    return JSONResponse(with_context(entity), status_code=status)

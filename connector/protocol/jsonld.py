"""Read DSP 2025-1 messages as JSON-LD without ever touching the network.

The rule kept here: every JSON-LD context is resolved from package data (`connector/resources/`), and every
inbound DSP message leaves `to_dsp_shape` in the compacted shape a plain-JSON DSP implementation emits (DSP 2025-1
§2: the context is "designed to produce Message serializations using compaction that validate against the JSON
Schema").

Most peers already send that shape with `"@context": ["https://w3id.org/dspace/2025/1/context.jsonld"]`, so
`to_dsp_shape` recognises it and skips pyld entirely (the fast path, two to three orders of magnitude cheaper).
Anything else (prefixed IRIs, extra contexts, expanded form) is expanded and compacted against the DSP context.

The static loader and Sovra's own context cache are passed per call in pyld's options and never installed
globally, so other pyld users in the process keep their own loader and cannot leak contexts into ours.
"""

from __future__ import annotations

import copy
import json
import threading
from functools import cache
from importlib.resources import files
from typing import Any

from pyld import jsonld as pyld_jsonld
from pyld.context_resolver import ContextResolver

from connector.protocol.errors import JsonLdError, UnknownContextError

DSP_CONTEXT = "https://w3id.org/dspace/2025/1/context.jsonld"
DSP_ODRL_CONTEXT = "https://w3id.org/dspace/2025/1/odrl-profile.jsonld"
DSPACE_NS = "https://w3id.org/dspace/2025/1/"

# Context URL -> file under connector/resources/ (provenance in the NOTICE.md files next to them).
_BUNDLED_FILES: dict[str, str] = {
    DSP_CONTEXT: "dsp/2025-1/context/dspace.jsonld",
    DSP_ODRL_CONTEXT: "dsp/2025-1/context/odrl.jsonld",
    "http://www.w3.org/ns/odrl.jsonld": "contexts/odrl-2.2.jsonld",
    "https://w3id.org/edc/connector/management/v0.0.1": "contexts/edc-management-v0.0.1.jsonld",
    "https://w3id.org/edc/dspace/v0.0.1": "contexts/edc-dspace-v0.0.1.jsonld",
    "https://www.w3.org/ns/did/v1": "contexts/did-v1.jsonld",
    "https://w3id.org/security/suites/jws-2020/v1": "contexts/security-jws-2020-v1.jsonld",
    "https://www.w3.org/2018/credentials/v1": "contexts/credentials-v1.jsonld",
    "https://www.w3.org/ns/credentials/v2": "contexts/credentials-v2.jsonld",
    # Sovra's policy profile (compute-to-data and participant-claim left operands), owned by the policy domain.
    "https://w3id.org/sovra/c2d/v1/context.jsonld": "policies:sovra-c2d-v1.jsonld",
}

BUNDLED_CONTEXTS: frozenset[str] = frozenset(_BUNDLED_FILES)
"""The context URLs Sovra can resolve (http/https and a trailing "#" are tolerated on lookup)."""

_FAST_PATH_CONTEXTS = ([DSP_CONTEXT], [DSP_CONTEXT, DSP_ODRL_CONTEXT])
_DSP_COMPACTION_CONTEXT = {"@context": [DSP_CONTEXT]}

# Properties the DSP 2025-1 schemas type as arrays. Most are `@set` in the DSP context already; `and`, `or`,
# `xone` and `andSequence` are not, so compaction collapses a one-element list to an object the schema rejects.
_ARRAY_KEYS = frozenset({
    "permission", "prohibition", "obligation", "duty", "constraint", "and", "or", "xone", "andSequence",
    "dataset", "catalog", "service", "distribution", "hasPolicy", "servesDataset", "reason", "filter",
    "endpointProperties",
})
# Properties the schemas type as strings. Compaction already yields scalars; a node reference `{"@id": x}` (from a
# sender that typed a literal term as an IRI) is collapsed to `x`.
_STRING_KEYS = frozenset({
    "providerPid", "consumerPid", "agreementId", "callbackAddress", "format", "state", "eventType", "code",
    "target", "assigner", "assignee", "timestamp", "action", "leftOperand", "operator", "endpoint",
    "endpointType", "name", "value", "participantId", "endpointURL", "endpointDescription", "accessService",
})
# `dataset` is the dataset id (a string) in a DatasetRequestMessage, but a list of Datasets everywhere else.
_STRING_KEYS_BY_TYPE = {"DatasetRequestMessage": frozenset({"dataset"})}
_NO_KEYS: frozenset[str] = frozenset()

# pyld reports some malformed input as plain Python errors rather than its own JsonLdError.
_PYLD_FAILURES = (pyld_jsonld.JsonLdError, TypeError, ValueError, KeyError, AttributeError, RecursionError)


def _url_key(url: str) -> str:
    """Reduce a context URL to its lookup key: no scheme (http and https name one context), no final "#"."""
    key = url.strip().rstrip("#")
    for scheme in ("https:", "http:"):
        if key.startswith(scheme):
            return key[len(scheme):]
    return key


_FILES_BY_KEY = {_url_key(url): path for url, path in _BUNDLED_FILES.items()}


@cache
def _bundled_document(path: str) -> dict[str, Any]:
    package, _, in_package = path.rpartition(":")
    resource = files(package or "connector") / "resources"
    path = in_package
    for part in path.split("/"):
        resource = resource / part
    document = json.loads(resource.read_text(encoding="utf-8"))
    _inline_imports(document)
    return document


def _inline_imports(document: dict[str, Any]) -> None:
    """Replace each type-scoped `"@import": <bundled URL>` with the imported terms, the local terms winning.

    This is exactly what JSON-LD 1.1 @import means, done once at load time because pyld 3.3.0 gets @import
    wrong: it merges the importing context into the cached imported one and reuses that merge for every other
    type that imports the same URL, so once a Dataset has been read a ContractAgreementMessage silently loses
    `agreement` (the defect jsonld.js issue #537 describes). The DSP context imports the ODRL profile in four
    type scopes.
    """
    terms = document.get("@context")
    if not isinstance(terms, dict):
        return
    for definition in terms.values():
        scoped = definition.get("@context") if isinstance(definition, dict) else None
        if not (isinstance(scoped, dict) and isinstance(scoped.get("@import"), str)):
            continue
        imported_path = _FILES_BY_KEY.get(_url_key(scoped["@import"]))
        if imported_path is None:
            continue
        imported_terms = copy.deepcopy(_bundled_document(imported_path)["@context"])
        local_terms = {key: value for key, value in scoped.items() if key != "@import"}
        definition["@context"] = {**imported_terms, **local_terms}


def load_document(url: str, options: dict[str, Any] | None = None) -> dict[str, Any]:
    """Serve a bundled context to pyld, or raise `UnknownContextError` for any other URL.

    This is a pyld document loader (pass it as `documentLoader`). The context object handed out is a frozen
    copy: pyld's @import handling writes into the imported context, so a sender's inline `{"@import": ...}` would
    otherwise rewrite a cached bundled context for every later message; frozen, only that body fails.
    `tag: "static"` lets pyld keep the processed context in the cache, which is safe because bundled files never
    change.
    """
    path = _FILES_BY_KEY.get(_url_key(url))
    if path is None:
        raise UnknownContextError(url)
    document = copy.deepcopy(_bundled_document(path))
    document["@context"] = pyld_jsonld.freeze(document["@context"])
    return {
        "contentType": "application/ld+json",
        "contextUrl": None,
        "documentUrl": url,
        "document": document,
        "tag": "static",
    }


class _ContextCache(dict[str, Any]):
    """Sovra's own cache of resolved contexts, bounded so that inline contexts from peers cannot grow it forever.

    It replaces pyld's process-wide cache, so contexts that another pyld user resolved (perhaps over the
    network) are never seen here. Clearing when full is crude but lock-free; refilling costs one context
    processing (about 10 ms for the DSP context).
    """

    _MAX_ENTRIES = 256

    def __setitem__(self, key: str, value: Any) -> None:
        if len(self) >= self._MAX_ENTRIES:
            self.clear()
        super().__setitem__(key, value)


_CONTEXT_CACHE = _ContextCache()
# pyld's caches (ours above, its per-context LRUs, its inverse-context cache) are not safe for concurrent writers.
# pyld is pure Python and holds the GIL anyway, so serialising it costs no throughput.
_PYLD_LOCK = threading.Lock()


def _options() -> dict[str, Any]:
    # base None keeps relative IRIs relative: "leftOperand": "dateTime" must not turn into
    # "http://example.org/base/dateTime" (pyld's default base) on its way through expansion.
    return {
        "documentLoader": load_document,
        "contextResolver": ContextResolver(_CONTEXT_CACHE, load_document),
        "base": None,
    }


def _translate(exc: BaseException) -> Exception:
    """Turn a pyld failure into ours: the loader's `UnknownContextError` if that caused it, else `JsonLdError`."""
    innermost: BaseException = exc
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, UnknownContextError):
            return UnknownContextError(cause.url)
        innermost = cause
        cause = cause.__cause__
    if isinstance(innermost, AttributeError) and "frozendict" in str(innermost):
        reason = "@import of a bundled context is not supported; list that context's URL in @context instead"
    elif isinstance(innermost, pyld_jsonld.JsonLdError):
        message = innermost.args[0] if innermost.args else innermost.type
        reason = f"{innermost.code}: {message}" if innermost.code else str(message)
    else:
        reason = f"{type(innermost).__name__}: {innermost}"
    return JsonLdError(reason)


def expand(doc: dict[str, Any] | list[Any]) -> list[dict[str, Any]]:
    """Expand a JSON-LD document with the bundled contexts only.

    Raises `UnknownContextError` for a context URL that is not bundled and `JsonLdError` for anything else
    pyld rejects (for example a redefinition of a protected DSP term).
    """
    try:
        with _PYLD_LOCK:
            return pyld_jsonld.expand(doc, _options())
    except _PYLD_FAILURES as exc:
        raise _translate(exc) from exc


def compact(doc: dict[str, Any] | list[Any], context: dict[str, Any] | list[Any] | str) -> dict[str, Any]:
    """Compact a JSON-LD document against `context` (a context value, or an object with "@context").

    Same errors as `expand`. The result's "@context" is whatever `context` was; DSP callers want
    `to_dsp_shape`.
    """
    if not (isinstance(context, dict) and "@context" in context):
        context = {"@context": context}
    try:
        with _PYLD_LOCK:
            return pyld_jsonld.compact(doc, context, _options())
    except _PYLD_FAILURES as exc:
        raise _translate(exc) from exc


def to_dsp_shape(body: dict[str, Any]) -> dict[str, Any]:
    """Return `body` in the DSP 2025-1 compacted shape, ready for schema validation.

    Fast path: when "@context" is exactly `[DSP_CONTEXT]` or `[DSP_CONTEXT, DSP_ODRL_CONTEXT]`, `body` itself
    is returned; when it is the bare string `DSP_CONTEXT` (which the schema rejects, but peers send), a shallow
    copy with the context as a one-element list. Such a body is taken at face value, as a plain-JSON DSP
    implementation would read it: nested "@context" entries or prefixed keys in it are not interpreted.

    A body without "@context" is returned unchanged too, so that schema validation names the missing context
    instead of pyld silently dropping every undefined key.

    Otherwise the body is expanded and compacted against the DSP context, then normalised: "@context" becomes
    `[DSP_CONTEXT]`, properties the schema types as arrays are lists and those it types as strings are strings.
    Properties with no meaning under the sender's context are dropped by expansion, as JSON-LD prescribes.

    Raises `UnknownContextError` for a context URL that is not bundled and `JsonLdError` when pyld rejects the
    body or it holds more than one top-level node.
    """
    if "@context" not in body:
        return body
    context = body["@context"]
    if context == DSP_CONTEXT:
        return {**body, "@context": [DSP_CONTEXT]}
    if context in _FAST_PATH_CONTEXTS:
        return body
    compacted = compact(body, _DSP_COMPACTION_CONTEXT)
    if "@graph" in compacted:
        raise JsonLdError("the body holds several top-level nodes, but a DSP message is exactly one node")
    compacted["@context"] = [DSP_CONTEXT]
    _normalise_node(compacted)
    return compacted


def _normalise_node(node: dict[str, Any]) -> None:
    """Coerce array- and string-typed DSP properties in place, recursing into nested nodes."""
    node_type = node.get("@type")
    string_keys = _STRING_KEYS_BY_TYPE.get(node_type, _NO_KEYS) if isinstance(node_type, str) else _NO_KEYS
    for key, value in node.items():
        if key in _STRING_KEYS or key in string_keys:
            value = node[key] = _as_string_value(value)
        elif key in _ARRAY_KEYS and not isinstance(value, list):
            value = node[key] = [value]
        _normalise_children(value)


def _normalise_children(value: Any) -> None:
    if isinstance(value, dict):
        _normalise_node(value)
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, dict):
                _normalise_node(item)


def _as_string_value(value: Any) -> Any:
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    if isinstance(value, dict) and len(value) == 1 and isinstance(value.get("@id"), str):
        return value["@id"]
    return value

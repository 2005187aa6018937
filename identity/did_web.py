"""did:web identifiers, their document URLs, and the DID documents this connector publishes and reads.

Rules kept here (did:web method spec; DCP v1.0.1 base protocol):
- the host part is percent-encoded in the DID (`localhost%3A8181`); path segments become `:`-separated;
- a bare domain resolves to `/.well-known/did.json`, a DID with a path to `<path>/did.json`;
- documents are fetched over https; http is produced only when the caller allows it *and* the host is
  loopback, so a test flag can never downgrade resolution of a real participant.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from urllib.parse import quote, unquote, urlsplit

from identity.errors import InvalidDidError, UnknownKeyError

DID_CONTEXTS = ("https://www.w3.org/ns/did/v1", "https://w3id.org/security/suites/jws-2020/v1")
KEY_RELATIONSHIPS = ("authentication", "assertionMethod", "capabilityInvocation")

_PREFIX = "did:web:"
_SEGMENT = re.compile(r"(?:[A-Za-z0-9._-]|%[0-9A-Fa-f]{2})+")
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_HOSTNAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
_DEFAULT_PORTS = {"http": 80, "https": 443}


def did_from_url(url: str) -> str:
    """Return the did:web DID for a base URL: `http://localhost:8181` -> `did:web:localhost%3A8181`.

    A trailing slash and the scheme's default port are dropped, so equal URLs give equal DIDs.
    """
    parts = urlsplit(url)
    if parts.scheme not in _DEFAULT_PORTS:
        raise InvalidDidError(url, "the URL scheme must be http or https")
    if parts.query or parts.fragment or parts.username is not None or parts.password is not None:
        raise InvalidDidError(url, "the URL must not carry a query, fragment or user info")
    try:
        port = parts.port
    except ValueError as exc:
        raise InvalidDidError(url, "the URL port is not a number between 0 and 65535") from exc
    host = _checked_host(parts.hostname or "", url)
    netloc = f"[{host}]" if ":" in host else host
    if port is not None and port != _DEFAULT_PORTS[parts.scheme]:
        netloc = f"{netloc}:{port}"
    segments = [_encode_segment(unquote(segment)) for segment in parts.path.split("/") if segment]
    did = ":".join([_PREFIX + _encode_segment(netloc), *segments])
    _split_did(did)  # the result must itself be a DID this module accepts
    return did


def _encode_segment(text: str) -> str:
    # quote() keeps "~" unescaped, but "~" is not a DID idchar.
    return quote(text, safe="").replace("~", "%7E")


def document_url_for_did(did: str, *, allow_http: bool) -> str:
    """Return the URL of the DID document; http only when `allow_http` is set and the host is loopback."""
    netloc, host, segments = _split_did(did)
    scheme = "http" if allow_http and is_loopback_host(host) else "https"
    path = "/".join(segments) if segments else ".well-known"
    return f"{scheme}://{netloc}/{path}/did.json"


def is_loopback_host(host: str) -> bool:
    """Say whether `host` (without brackets or port) is localhost or a loopback IP address."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def build_did_document(did: str, jwk: dict[str, str], *,
                       service_endpoints: dict[str, str]) -> dict[str, object]:
    """Build the W3C DID v1 document this connector serves at its did.json URL.

    The single key is listed under authentication, assertionMethod and capabilityInvocation: DCP v1.0
    requires the self-issued token key in capabilityInvocation, VPs use authentication, credentials use
    assertionMethod.
    `service_endpoints` maps a service type (for example "DataService" for the DSP endpoint) to its URL.
    """
    _split_did(did)
    if "d" in jwk:
        raise ValueError("refusing to publish a JWK that contains the private member 'd'")
    kid = jwk.get("kid")
    if not kid:
        raise ValueError("the JWK needs a 'kid' to name its verification method")
    method_id = f"{did}#{kid}"
    return {
        "@context": list(DID_CONTEXTS),
        "id": did,
        "verificationMethod": [
            {"id": method_id, "type": "JsonWebKey2020", "controller": did, "publicKeyJwk": dict(jwk)},
        ],
        **{relationship: [method_id] for relationship in KEY_RELATIONSHIPS},
        "service": [
            {"id": f"{did}#{service_type}", "type": service_type, "serviceEndpoint": endpoint}
            for service_type, endpoint in service_endpoints.items()
        ],
    }


def verification_jwk(document: Mapping[str, object], kid: str | None,
                     *, relationship: str | None = None) -> dict[str, object]:
    """Return the publicKeyJwk of the verification method named by `kid`.

    `kid` may be absolute (`did:web:x#key-1`), relative (`#key-1`) or a bare fragment (`key-1`). Without a kid
    the document must hold exactly one method. With `relationship` (for example "capabilityInvocation") the
    method must also be listed under that relationship. Raises UnknownKeyError when no single method matches.
    """
    did = document.get("id")
    if not isinstance(did, str):
        raise UnknownKeyError(str(did), kid, "the DID document has no string 'id'")
    methods = _verification_methods(document, did)
    if kid is None:
        if len(methods) != 1:
            raise UnknownKeyError(did, kid, f"no kid given and the document has {len(methods)} keys, not 1")
        method_id = next(iter(methods))
    else:
        method_id = _absolute_id(kid if "#" in kid else f"#{kid}", did)
        if method_id not in methods:
            raise UnknownKeyError(did, kid, "no verification method has this id")
    if relationship is not None and method_id not in _relationship_ids(document, did, relationship):
        raise UnknownKeyError(did, kid, f"the key is not listed under {relationship}")
    jwk = methods[method_id].get("publicKeyJwk")
    if not isinstance(jwk, dict):
        raise UnknownKeyError(did, kid, "the verification method has no publicKeyJwk")
    return dict(jwk)


def _verification_methods(document: Mapping[str, object], did: str) -> dict[str, dict[str, object]]:
    """Collect this DID's methods from verificationMethod and relationships, keyed by absolute id.

    Methods whose id belongs to another DID are skipped: a token's key must be controlled by its issuer.
    """
    found: dict[str, dict[str, object]] = {}
    entries: list[object] = list(_as_list(document.get("verificationMethod")))
    for relationship in KEY_RELATIONSHIPS:
        entries.extend(_as_list(document.get(relationship)))
    for entry in entries:
        if isinstance(entry, dict) and isinstance(entry.get("id"), str):
            method_id = _absolute_id(entry["id"], did)
            if method_id.startswith(f"{did}#"):
                found.setdefault(method_id, entry)
    return found


def _relationship_ids(document: Mapping[str, object], did: str, relationship: str) -> set[str]:
    ids: set[str] = set()
    for entry in _as_list(document.get(relationship)):
        reference = entry.get("id") if isinstance(entry, dict) else entry
        if isinstance(reference, str):
            ids.add(_absolute_id(reference, did))
    return ids


def _as_list(value: object) -> list[object]:
    return list(value) if isinstance(value, list) else []


def _absolute_id(reference: str, did: str) -> str:
    return f"{did}{reference}" if reference.startswith("#") else reference


def _split_did(did: str) -> tuple[str, str, list[str]]:
    """Validate a did:web DID and return (netloc for the URL, bare host, still-encoded path segments)."""
    if not did.startswith(_PREFIX):
        raise InvalidDidError(did, "it must start with 'did:web:'")
    segments = did[len(_PREFIX):].split(":")
    for segment in segments:
        if not _SEGMENT.fullmatch(segment):
            raise InvalidDidError(did, "each ':'-separated part must be non-empty and use only "
                                       "letters, digits, '.', '-', '_' or percent-escapes")
    netloc = unquote(segments[0])
    if any(unquote(segment) in (".", "..") or "/" in unquote(segment) for segment in segments[1:]):
        raise InvalidDidError(did, "path parts must not be '.', '..' or contain '/'")
    parts = urlsplit(f"//{netloc}")
    try:
        parts.port  # noqa: B018 - raises ValueError for a malformed port
    except ValueError as exc:
        raise InvalidDidError(did, "the port is not a number between 0 and 65535") from exc
    if parts.username is not None or parts.path or parts.query or parts.fragment:
        raise InvalidDidError(did, "the host part must be a host name with an optional port")
    host = _checked_host(parts.hostname or "", did)
    return netloc, host, segments[1:]


def _checked_host(host: str, subject: str) -> str:
    if _HOSTNAME.fullmatch(host):
        return host.lower()
    try:
        return str(ipaddress.ip_address(host))
    except ValueError as exc:
        raise InvalidDidError(subject, f"host {host!r} is not a valid host name or IP address") from exc

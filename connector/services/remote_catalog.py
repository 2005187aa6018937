"""Consumer side of the DSP catalog protocol, and how a counter-party's address and id are worked out.

Management clients name a peer the way EDC's do: `counterPartyAddress` (its DSP base URL) and optionally
`counterPartyId`. Two conveniences keep that forgiving without guessing:

* An address that does not end in the version segment (`.../2025-1`) is completed from the peer's
  `/.well-known/dspace-version` (DSP 2025-1 §4.3): one GET, only in that case.
* A missing `counterPartyId` defaults to the did:web of the address's scheme, host and port, which is what a Sovra
  peer (and any did:web connector at its root) uses.

The catalog is paged by the provider: `fetch_catalog` follows `Link: <...>; rel="next"` until it holds enough
datasets, but only to URLs on the same origin as the DSP base, so a peer cannot steer our token elsewhere. Nothing
here touches the database.

    RemoteCatalogError              the peer answered with something we cannot read (502)
    CounterPartyAddressError        the caller's address or id cannot be used (400)
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urljoin, urlsplit

from connector.dsp.client import DspClient, PeerResponse
from connector.protocol.errors import ProtocolError
from connector.protocol.jsonld import DSP_CONTEXT, to_dsp_shape
from identity.did_web import did_from_url
from identity.errors import IdentityError

PROTOCOL = "dataspace-protocol-http:2025-1"
VERSION = "2025-1"
MAX_PAGES = 200
_LINK = re.compile(r"<([^>]*)>\s*((?:;\s*[^;,]+)*)")
_REL = re.compile(r'rel\s*=\s*"?([^";]+)"?')


class RemoteCatalogError(Exception):
    def __init__(self, url: str, problem: str) -> None:
        self.url = url
        self.problem = problem
        super().__init__(f"the counter-party's answer from {url} is unusable: {problem}")


class CounterPartyAddressError(Exception):
    def __init__(self, pointer: str, problem: str) -> None:
        self.pointer = pointer
        self.problem = problem
        super().__init__(f"field {pointer} {problem}")


def check_protocol(protocol: str | None) -> None:
    """EDC clients always send `protocol`; only DSP 2025-1 is spoken here."""
    if protocol not in (None, "", PROTOCOL):
        raise CounterPartyAddressError("/protocol", f"is {protocol!r}, but this connector speaks only {PROTOCOL}")


def _root(address: str) -> str:
    parts = urlsplit(address)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise CounterPartyAddressError("/counterPartyAddress", f"{address!r} is not an http(s) URL; give the "
                                                               "peer's DSP base URL, e.g. https://host/api/dsp/2025-1")
    return f"{parts.scheme}://{parts.netloc}"


def counter_party_id_for(address: str) -> str:
    """The did:web of the address's origin, used when the caller gives no counterPartyId."""
    try:
        return did_from_url(_root(address))
    except IdentityError as exc:
        raise CounterPartyAddressError("/counterPartyId", f"is missing and cannot be derived from {address!r} "
                                                          f"({exc}); give the peer's participant id") from exc


def resolve_dsp_base(client: DspClient, address: str, *, audience: str) -> str:
    """The peer's DSP 2025-1 base URL: `address` itself, or discovered from its version metadata."""
    address = address.rstrip("/")
    root = _root(address)
    if urlsplit(address).path.rstrip("/").endswith("/" + VERSION):
        return address
    url = root + "/.well-known/dspace-version"
    response = client.get(url, audience=audience)
    for entry in _versions(response, url):
        if isinstance(entry, Mapping) and entry.get("version") == VERSION and isinstance(entry.get("path"), str):
            return urljoin(root + "/", entry["path"]).rstrip("/")
    raise CounterPartyAddressError("/counterPartyAddress", f"{address!r} does not end in /{VERSION} and the peer's "
                                                           f"{url} lists no {VERSION} endpoint; give the DSP base "
                                                           "URL itself")


def _versions(response: PeerResponse, url: str) -> list[Any]:
    body = response.body or {}
    versions = body.get("protocolVersions")
    if not isinstance(versions, list):
        raise RemoteCatalogError(url, "the version metadata has no protocolVersions list")
    return versions


def fetch_catalog(client: DspClient, *, dsp_base: str, audience: str, offset: int, limit: int) -> dict[str, Any]:
    """Request the peer's catalog and return it in DSP compact shape with datasets [offset, offset+limit)."""
    wanted = offset + limit
    message = {"@context": [DSP_CONTEXT], "@type": "CatalogRequestMessage"}
    url = dsp_base + "/catalog/request"
    seen = {url}
    response = client.post(url, message, audience=audience)
    first = _catalog_body(response, url)
    datasets: list[Any] = list(first.get("dataset") or [])
    next_url = _next_link(response, url, dsp_base, seen)
    while next_url is not None and len(datasets) < wanted and len(seen) < MAX_PAGES:
        seen.add(next_url)
        response = client.post(next_url, message, audience=audience)
        datasets.extend(_catalog_body(response, next_url).get("dataset") or [])
        next_url = _next_link(response, next_url, dsp_base, seen)
    return {**first, "dataset": datasets[offset:wanted]}


def _typed_body(response: PeerResponse, url: str, expected: str) -> dict[str, Any]:
    """The peer's answer in DSP shape, refused with the URL unless it is a JSON object of the expected @type."""
    if response.body is None:
        raise RemoteCatalogError(url, "the body is not a JSON object")
    try:
        body = to_dsp_shape(response.body)
    except ProtocolError as exc:
        raise RemoteCatalogError(url, str(exc)) from exc
    if body.get("@type") != expected:
        raise RemoteCatalogError(url, f"@type is {body.get('@type')!r}, not {expected}")
    return body


def _catalog_body(response: PeerResponse, url: str) -> dict[str, Any]:
    body = _typed_body(response, url, "Catalog")
    datasets = body.get("dataset")
    if datasets is not None and not isinstance(datasets, list):
        raise RemoteCatalogError(url, "dataset is not a list")
    return body


def _next_link(response: PeerResponse, url: str, dsp_base: str, seen: set[str]) -> str | None:
    """The rel="next" URL if it stays on the DSP base's origin and was not visited yet."""
    for header in response.headers.get_list("link"):
        for target, params in _LINK.findall(header):
            rel = _REL.search(params)
            if rel is None or "next" not in rel.group(1).split():
                continue
            candidate = urljoin(url, target.strip())
            return candidate if _origin(candidate) == _origin(dsp_base) and candidate not in seen else None
    return None


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme, parts.netloc


def fetch_dataset(client: DspClient, *, dsp_base: str, audience: str, dataset_id: str) -> dict[str, Any]:
    url = f"{dsp_base}/catalog/datasets/{quote(dataset_id, safe='')}"
    return _typed_body(client.get(url, audience=audience), url, "Dataset")


"""Turn an asset's private data address into a readable Source, under the operator's SourcePolicy.

Three address types are understood, in EDC's shape (keys may carry the EDC namespace or ``edc:``):

* ``{"type": "File", "path": "/srv/data/x.csv"}``: a file or directory under ``file_root``; relative
  paths are taken relative to ``file_root``. A directory serves its files by sub-path and a JSON
  listing at its root.
* ``{"type": "HttpData", "baseUrl": ..., "path", "queryParams", "authKey"/"authCode",
  "proxyPath", "proxyQueryParams"}``: proxied from an upstream that the allow-list admits.
* ``{"type": "ComputeRelease", "document": {...}}``: a compute job's release document as JSON
  (``release_source``); the control plane builds it, never an asset.

Everything the policy refuses raises SourceRefusedError; this module is the only way the public API
and push obtain a Source, so the checks cannot be skipped.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from connector.dataplane.egress import EgressGuard, Resolver, resolve_host
from connector.dataplane.errors import DataAddressError, SourceNotFoundError
from connector.dataplane.file_source import DirectoryEntry, DirectorySource, FileSource, confine, path_kind
from connector.dataplane.http_source import HttpDataAddress, HttpDataSource
from connector.dataplane.payload import Payload, Source, SourceMetadata
from connector.dataplane.release_source import RELEASE_TYPE, open_release

__all__ = [
    "DirectoryEntry",
    "DirectorySource",
    "FileSource",
    "HttpDataSource",
    "Payload",
    "Source",
    "SourceMetadata",
    "SourcePolicy",
    "open_source",
    "source_type",
]

EDC_NAMESPACE = "https://w3id.org/edc/v0.0.1/ns/"
FILE_TYPE = "File"
HTTP_DATA_TYPE = "HttpData"
SUPPORTED_SOURCE_TYPES = (FILE_TYPE, HTTP_DATA_TYPE)
"""What an asset may name; a ComputeRelease address is built by the control plane only, so it is not offered."""


@dataclass(frozen=True)
class SourcePolicy:
    """Where sources may come from: files under ``file_root``, URLs the ``http_allow`` list admits.

    ``http_allow`` entries are described in ``egress.py``; an empty tuple refuses every HttpData
    source. ``resolver`` exists so tests can resolve host names without DNS. Raises AllowListError at
    construction for an entry that cannot be parsed.
    """

    file_root: Path
    http_allow: tuple[str, ...] = ()
    resolver: Resolver = field(default=resolve_host, compare=False, repr=False)
    guard: EgressGuard = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "file_root", Path(self.file_root).resolve())
        object.__setattr__(self, "http_allow", tuple(self.http_allow))
        object.__setattr__(self, "guard", EgressGuard(self.http_allow, resolver=self.resolver))


def normalize_address(data_address: Mapping[str, object]) -> dict[str, object]:
    """Strip the EDC namespace (full IRI or ``edc:``) from keys and flatten a nested ``properties``."""
    flat: dict[str, object] = {}
    nested = data_address.get("properties")
    items = list(nested.items()) if isinstance(nested, Mapping) else []
    for key, value in [*data_address.items(), *items]:
        name = key.removeprefix(EDC_NAMESPACE).removeprefix("edc:")
        if name != "properties":
            flat.setdefault(name, value)
    return flat


def source_type(data_address: Mapping[str, object]) -> str:
    """Return the canonical source type of an address; raise DataAddressError if unsupported."""
    value = normalize_address(data_address).get("type")
    if not isinstance(value, str) or not value:
        raise DataAddressError("type", "is missing", SUPPORTED_SOURCE_TYPES)
    for supported in (*SUPPORTED_SOURCE_TYPES, RELEASE_TYPE):
        if value.lower() == supported.lower():
            return supported
    raise DataAddressError("type", f"has the unsupported value {value!r}", SUPPORTED_SOURCE_TYPES)


def open_source(
    data_address: Mapping[str, object],
    policy: SourcePolicy,
    *,
    subpath: str = "",
    query: str = "",
    client: httpx.AsyncClient | None = None,
) -> Source:
    """Build the Source an address names, checked against ``policy``.

    ``subpath`` selects a file inside a directory asset, or is appended to an HttpData URL when
    ``proxyPath`` is true; ``query`` is appended when ``proxyQueryParams`` is true. ``client`` is
    required for HttpData and stays owned by the caller. Opening performs no network I/O: the
    allow-list and DNS checks run when the HttpData source is opened.

    Raises DataAddressError, SourceRefusedError or SourceNotFoundError.
    """
    kind = source_type(data_address)
    properties = normalize_address(data_address)
    if kind == FILE_TYPE:
        return _open_file(properties, policy, subpath)
    if kind == RELEASE_TYPE:
        if subpath.strip("/"):
            raise SourceNotFoundError(subpath)
        return open_release(properties)
    if client is None:
        raise ValueError("an httpx.AsyncClient is needed to open an HttpData source")
    address = HttpDataAddress.from_properties(properties)
    return HttpDataSource(address, policy.guard, client, subpath=subpath, query=query)


def _open_file(properties: Mapping[str, object], policy: SourcePolicy, subpath: str) -> Source:
    path = properties.get("path")
    if not isinstance(path, str) or not path:
        raise DataAddressError("path", "is required for a File address and must be a string")
    resolved = confine(Path(path), policy.file_root)
    wants_child = bool(subpath.strip("/"))
    kind = path_kind(resolved)
    if kind == "dir":
        directory = DirectorySource(resolved)
        return directory.child(subpath) if wants_child else directory
    if kind is None or wants_child:
        raise SourceNotFoundError(subpath if wants_child else path)
    return FileSource(resolved)

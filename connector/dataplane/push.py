"""Push a source to the consumer's destination for push transfers (DSP 2025-1 §6.1).

The destination comes from the consumer's TransferRequestMessage, so it is untrusted: every URL passes
the egress guard, which by default admits any host but refuses loopback, private and link-local
addresses (server-side request forgery), and redirects are never followed. Bodies are streamed chunk
by chunk; Content-Length is sent when the size is known (some stores such as S3 presigned PUTs
require it), otherwise the body goes chunked.

A directory is pushed file by file to ``<url>/<relative path>``. Destination failures raise
PushFailedError; a failing source raises its own DataPlaneError (SourceNotFoundError, UpstreamError).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from urllib.parse import quote

import httpx

from connector.dataplane.egress import EgressGuard, EgressTarget, display_url
from connector.dataplane.errors import DataAddressError, PushFailedError, SourceRefusedError, UpstreamError
from connector.dataplane.file_source import DirectorySource
from connector.dataplane.http_source import HttpDataAddress
from connector.dataplane.payload import Source
from connector.dataplane.sources import normalize_address

HTTP_ENDPOINT_TYPE = "https://w3id.org/idsa/v4.1/HTTP"
PUSH_METHODS = ("POST", "PUT")
DESTINATION_TYPES = ("HttpData", f"DataAddress with endpointType {HTTP_ENDPOINT_TYPE}")
PUBLIC_DESTINATIONS = ("*",)
_REASON_LIMIT = 200


@dataclass(frozen=True)
class PushDestination:
    """Where and how to send: URL, method and the extra headers (credentials) the consumer gave."""

    url: httpx.URL
    method: str = "POST"
    headers: tuple[tuple[str, str], ...] = ()

    @classmethod
    def from_data_address(cls, address: Mapping[str, object]) -> PushDestination:
        """Read an EDC HttpData address or a DSP DataAddress; raise DataAddressError if neither fits."""
        if "endpointType" in address or (address.get("@type") == "DataAddress" and "type" not in address):
            return cls._from_dsp(address)
        properties = normalize_address(address)
        kind = properties.get("type")
        if not isinstance(kind, str) or kind.lower() != "httpdata":
            raise DataAddressError("type", f"has the unsupported value {kind!r}", DESTINATION_TYPES)
        http = HttpDataAddress.from_properties(properties)
        headers = ((http.auth_key, http.auth_code),) if http.auth_key and http.auth_code else ()
        return cls(url=http.url(), method=_method(properties.get("method")), headers=headers)

    @classmethod
    def _from_dsp(cls, address: Mapping[str, object]) -> PushDestination:
        endpoint_type = _plain(address.get("endpointType"), "@id")
        if endpoint_type != HTTP_ENDPOINT_TYPE:
            raise DataAddressError("endpointType", f"has the unsupported value {endpoint_type!r}", DESTINATION_TYPES)
        endpoint = _plain(address.get("endpoint"), "@value")
        if not isinstance(endpoint, str) or not endpoint:
            raise DataAddressError("endpoint", "is required to push to an HTTP destination")
        properties = _endpoint_properties(address.get("endpointProperties"))
        headers: tuple[tuple[str, str], ...] = ()
        token = properties.get("authorization")
        if token:
            is_bearer = properties.get("authType", "").lower() == "bearer"
            headers = (("Authorization", f"Bearer {token}" if is_bearer else token),)
        try:
            url = httpx.URL(endpoint)
        except httpx.InvalidURL as exc:
            raise DataAddressError("endpoint", "is not a valid URL") from exc
        return cls(url=url, method=_method(properties.get("method")), headers=headers)


@dataclass(frozen=True)
class PushResult:
    """What a push delivered: total body bytes and the number of requests (files) sent."""

    bytes_sent: int
    files: int


async def push(
    source: Source,
    destination: Mapping[str, object],
    client: httpx.AsyncClient,
    *,
    guard: EgressGuard | None = None,
) -> PushResult:
    """Stream ``source`` to ``destination`` and return what was sent.

    ``guard`` decides which destination hosts are reachable; the default admits public addresses
    only. Raises DataAddressError for an unusable destination and PushFailedError when it cannot be
    reached or answers anything but 2xx.
    """
    target = PushDestination.from_data_address(destination)
    checker = guard if guard is not None else EgressGuard(PUBLIC_DESTINATIONS)
    if not isinstance(source, DirectorySource):
        return PushResult(await _send(source, target.url, target, client, checker), 1)
    total = 0
    entries = await source.files()
    for entry in entries:
        url = _child_url(target.url, entry.path)
        total += await _send(source.child(entry.path), url, target, client, checker)
    return PushResult(total, len(entries))


async def _send(
    source: Source, url: httpx.URL, target: PushDestination, client: httpx.AsyncClient, guard: EgressGuard
) -> int:
    shown = display_url(url)
    checked = await _check(guard, url, shown)
    sent = 0
    async with source.open() as payload:

        async def counted() -> AsyncIterator[bytes]:
            nonlocal sent
            async for chunk in payload.chunks:
                sent += len(chunk)
                yield chunk

        headers = {**checked.headers, **dict(target.headers), "Content-Type": payload.metadata.content_type}
        if payload.length is not None:
            headers["Content-Length"] = str(payload.length)
        if payload.metadata.content_encoding is not None:
            headers["Content-Encoding"] = payload.metadata.content_encoding
        request = client.build_request(
            target.method,
            checked.request_url,
            headers=headers,
            content=counted(),
            extensions=checked.extensions,
        )
        try:
            response = await client.send(request, stream=True, follow_redirects=False)
        except httpx.HTTPError as exc:
            raise PushFailedError(shown, f"the request failed ({type(exc).__name__})") from exc
        try:
            if not response.is_success:
                raise PushFailedError(shown, await _reason(response), response.status_code)
        finally:
            await response.aclose()
    return sent


async def _check(guard: EgressGuard, url: httpx.URL, shown: str) -> EgressTarget:
    try:
        return await guard.check(url)
    except SourceRefusedError as exc:
        raise PushFailedError(shown, f"the destination is refused ({exc.reason})") from exc
    except UpstreamError as exc:
        raise PushFailedError(shown, exc.reason) from exc


async def _reason(response: httpx.Response) -> str:
    """The reason phrase plus the start of the body, cut short so no large payload lands in logs."""
    excerpt = b""
    try:
        async for chunk in response.aiter_bytes():
            excerpt += chunk
            if len(excerpt) >= _REASON_LIMIT:
                break
    except httpx.HTTPError:
        pass  # the status alone is reason enough; a broken error body adds nothing
    text = "".join(c if c.isprintable() else " " for c in excerpt[:_REASON_LIMIT].decode("utf-8", "replace"))
    return f"{response.reason_phrase or 'error'}: {text.strip()}" if text.strip() else response.reason_phrase


def _child_url(base: httpx.URL, relative: str) -> httpx.URL:
    path = base.raw_path.split(b"?", 1)[0].rstrip(b"/") + b"/" + quote(relative, safe="/").encode()
    query = b"?" + base.query if base.query else b""
    return base.copy_with(raw_path=path + query)


def _method(value: object) -> str:
    if value is None:
        return "POST"
    method = str(value).upper()
    if method not in PUSH_METHODS:
        raise DataAddressError("method", f"has the unsupported value {value!r}", PUSH_METHODS)
    return method


def _plain(value: object, key: str) -> object:
    """Unwrap a JSON-LD ``{"@id": ...}`` or ``{"@value": ...}`` node into its plain value."""
    return value.get(key) if isinstance(value, Mapping) else value


def _endpoint_properties(value: object) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, list):
        raise DataAddressError("endpointProperties", "must be a list of {name, value} objects")
    properties = {}
    for item in value:
        if not isinstance(item, Mapping) or not isinstance(item.get("name"), str):
            raise DataAddressError("endpointProperties", "must be a list of {name, value} objects")
        properties[item["name"]] = str(_plain(item.get("value"), "@value"))
    return properties

"""Proxy an HttpData asset (EDC's HttpDataAddress) from its upstream, through the egress guard.

The upstream body is streamed through unchanged: the request asks for ``Accept-Encoding: identity``
and chunks are read raw, so Content-Length and Content-Range stay true. A Range is passed on as it
was parsed. Redirects are followed by hand, at most MAX_REDIRECTS times, and each hop is checked
against the allow-list again; the ``authKey`` header is only sent to the asset's own origin.
Non-2xx answers (except a 416 to a range request) become UpstreamError, which the public API
answers with 502.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import quote

import httpx

from connector.dataplane.egress import EgressGuard, display_url, has_dot_segment
from connector.dataplane.errors import (
    DataAddressError,
    RangeNotSatisfiableError,
    SourceRefusedError,
    UpstreamError,
)
from connector.dataplane.payload import CHUNK_SIZE, Payload, Source, SourceMetadata, guess_content_type
from connector.dataplane.ranges import ByteRange, parse_content_range, unsatisfied_size

MAX_REDIRECTS = 5


def _flag(properties: Mapping[str, object], name: str) -> bool:
    """Read an EDC boolean, which arrives as a JSON boolean or as the string "true"/"false"."""
    value = properties.get(name, False)
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise DataAddressError(name, "must be true or false")


def _text(properties: Mapping[str, object], name: str) -> str | None:
    value = properties.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise DataAddressError(name, "must be a string")
    return value


@dataclass(frozen=True)
class HttpDataAddress:
    """The fields of an HttpData address this data plane honours; others are ignored."""

    base_url: str
    path: str | None = None
    query_params: str | None = None
    auth_key: str | None = None
    auth_code: str | None = None
    proxy_path: bool = False
    proxy_query_params: bool = False

    @classmethod
    def from_properties(cls, properties: Mapping[str, object]) -> HttpDataAddress:
        """Read the EDC property names (already stripped of the EDC namespace); raise DataAddressError."""
        base_url = _text(properties, "baseUrl")
        if not base_url:
            raise DataAddressError("baseUrl", "is required for an HttpData address")
        if "secretName" in properties:
            raise DataAddressError("secretName", "is not supported; put the header value in authCode")
        address = cls(
            base_url=base_url,
            path=_text(properties, "path"),
            query_params=_text(properties, "queryParams"),
            auth_key=_text(properties, "authKey"),
            auth_code=_text(properties, "authCode"),
            proxy_path=_flag(properties, "proxyPath"),
            proxy_query_params=_flag(properties, "proxyQueryParams"),
        )
        if (address.auth_key is None) != (address.auth_code is None):
            raise DataAddressError("authKey", "and authCode must be given together")
        return address

    def url(self, subpath: str = "", query: str = "") -> httpx.URL:
        """Compose baseUrl, path and (when proxying is enabled) the consumer's sub-path and query."""
        if self.proxy_path and has_dot_segment(subpath):
            # httpx would fold "../" away before the guard sees it, letting a consumer step out of the asset.
            raise SourceRefusedError(subpath, "dot_segment", "the sub-path contains '.' or '..' segments")
        text = self.base_url.rstrip("/")
        for part in (self.path, quote(subpath, safe="/") if self.proxy_path else None):
            if part and part.strip("/"):
                text += "/" + part.lstrip("/")
        queries = [self.query_params or "", query if self.proxy_query_params else ""]
        joined = "&".join(part.lstrip("?") for part in queries if part.lstrip("?"))
        try:
            url = httpx.URL(text)
            return url.copy_with(query=joined.encode()) if joined else url
        except httpx.InvalidURL as exc:
            raise DataAddressError("baseUrl", "is not a valid URL") from exc


class HttpDataSource(Source):
    """An upstream HTTP resource read with the caller's client; the client is not closed here."""

    def __init__(
        self,
        address: HttpDataAddress,
        guard: EgressGuard,
        client: httpx.AsyncClient,
        *,
        subpath: str = "",
        query: str = "",
    ) -> None:
        self._address = address
        self._guard = guard
        self._client = client
        self.url = address.url(subpath, query)

    async def describe(self) -> SourceMetadata:
        filename = self.url.path.rstrip("/").rpartition("/")[2] or None
        return SourceMetadata(
            content_type=guess_content_type(filename), size=None, filename=filename, accepts_ranges=False
        )

    def open(self, byte_range: ByteRange | None = None) -> AbstractAsyncContextManager[Payload]:
        return self._open(byte_range)

    @asynccontextmanager
    async def _open(self, byte_range: ByteRange | None) -> AsyncIterator[Payload]:
        response = await self._send(byte_range)
        try:
            yield await self._payload(response, byte_range)
        finally:
            await response.aclose()

    async def _send(self, byte_range: ByteRange | None) -> httpx.Response:
        url = self.url
        for hop in range(MAX_REDIRECTS + 1):
            try:
                target = await self._guard.check(url)
            except SourceRefusedError as exc:
                if hop == 0:
                    raise
                raise UpstreamError(display_url(self.url), f"redirected to a refused URL ({exc.reason})") from exc
            headers = {"Accept-Encoding": "identity", **target.headers}
            if byte_range is not None:
                headers["Range"] = byte_range.header_value()
            if self._address.auth_key and self._address.auth_code and _same_origin(url, self.url):
                headers[self._address.auth_key] = self._address.auth_code
            request = self._client.build_request(
                "GET", target.request_url, headers=headers, extensions=target.extensions
            )
            try:
                response = await self._client.send(request, stream=True, follow_redirects=False)
            except httpx.HTTPError as exc:
                raise UpstreamError(display_url(url), f"request failed ({type(exc).__name__})") from exc
            if not response.is_redirect:
                return response
            await response.aclose()
            url = url.join(response.headers["location"])
        raise UpstreamError(display_url(self.url), f"more than {MAX_REDIRECTS} redirects")

    async def _payload(self, response: httpx.Response, byte_range: ByteRange | None) -> Payload:
        shown = display_url(self.url)
        status = response.status_code
        if status == 416 and byte_range is not None:
            raise RangeNotSatisfiableError(unsatisfied_size(response.headers.get("content-range")))
        if not 200 <= status < 300:
            raise UpstreamError(shown, "the upstream answered with an error status", status)
        length = _int_header(response.headers.get("content-length"))
        encoding = response.headers.get("content-encoding")
        content_range = None
        size = length if encoding is None else None
        if status == 206:
            content_range = parse_content_range(response.headers.get("content-range"))
            if content_range is None:
                raise UpstreamError(shown, "a 206 answer lacks a usable Content-Range", status)
            size = content_range.size
        described = await self.describe()
        metadata = SourceMetadata(
            content_type=response.headers.get("content-type") or described.content_type,
            size=size,
            filename=described.filename,
            etag=response.headers.get("etag"),
            last_modified=_http_date(response.headers.get("last-modified")),
            content_encoding=encoding,
            accepts_ranges=status == 206 or response.headers.get("accept-ranges", "").lower() == "bytes",
        )
        return Payload(metadata, _relay(response, shown), length, content_range)


async def _relay(response: httpx.Response, shown: str) -> AsyncIterator[bytes]:
    if response.is_stream_consumed:
        # Transports that build responses from bytes (httpx.MockTransport) hand them over already read.
        body = response.content
        for start in range(0, len(body), CHUNK_SIZE):
            yield body[start : start + CHUNK_SIZE]
        return
    try:
        async for chunk in response.aiter_raw(CHUNK_SIZE):
            yield chunk
    except httpx.HTTPError as exc:
        raise UpstreamError(shown, f"the body broke off ({type(exc).__name__})") from exc


def _same_origin(left: httpx.URL, right: httpx.URL) -> bool:
    return (left.scheme, left.host, left.port) == (right.scheme, right.host, right.port)


def _int_header(value: str | None) -> int | None:
    return int(value) if value is not None and value.isdigit() else None


def _http_date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    # HTTP dates are GMT; a naive or offset date from a sloppy upstream is normalised, not trusted.
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)

"""The public pull endpoint: GET/HEAD ``/api/public[/{subpath}]`` streams a started transfer's data.

Every request is checked twice: the token must verify (401 otherwise) and the control plane must
still report the transfer as STARTED (403 otherwise). The second check runs on every request, so a
suspension or termination cuts off a token that has not yet expired. Bodies are streamed, never
buffered: files in 64 KiB chunks, HttpData straight from the upstream.

Single byte ranges are served (206, 416, If-Range); several ranges in one header are ignored and the
whole body is sent, as RFC 9110 §14.2 allows. Error bodies are ``{"error": ..., "reason": ...}``
and never reveal file paths or upstream URLs: those go to the log.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AsyncExitStack
from email.utils import format_datetime
from urllib.parse import quote

import anyio
import httpx
from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from connector.dataplane.errors import (
    AccessDeniedError,
    DataAddressError,
    DataPlaneError,
    DenialReason,
    RangeNotSatisfiableError,
    SourceNotFoundError,
    SourceRefusedError,
    UpstreamError,
)
from connector.dataplane.payload import Payload, Source, SourceMetadata
from connector.dataplane.ranges import ByteRange, parse_range
from connector.dataplane.sources import HTTP_DATA_TYPE, SourcePolicy, open_source, source_type

log = logging.getLogger(__name__)

PUBLIC_PATH = "/api/public"
HTTP_ENDPOINT_TYPE = "https://w3id.org/idsa/v4.1/HTTP"
EDC_NAMESPACE = "https://w3id.org/edc/v0.0.1/ns/"

Verify = Callable[[str], str | Awaitable[str]]
ResolveSource = Callable[[str], Mapping[str, object] | None | Awaitable[Mapping[str, object] | None]]
ClientFactory = Callable[[], httpx.AsyncClient]


def pull_data_address(endpoint: str, token: str) -> dict[str, object]:
    """Build the DataAddress a TransferStartMessage carries for an HTTP pull (DSP 2025-1 §6.6).

    Eclipse EDC (0.14) reads a DataAddress only from `endpointProperties`, keeping each name as the property key,
    and its EDR API then drops every key that is not an IRI: it ignores `endpoint` and the spec's plain
    `authorization`. So the endpoint, token and types are also listed under their EDC names, which are what an
    EDC provider sends itself.
    """
    values = {"endpoint": endpoint, "endpointType": HTTP_ENDPOINT_TYPE, "authorization": token, "authType": "bearer"}
    return {
        "@type": "DataAddress",
        "endpointType": HTTP_ENDPOINT_TYPE,
        "endpoint": endpoint,
        "endpointProperties": [
            {"@type": "EndpointProperty", "name": "authorization", "value": token},
            {"@type": "EndpointProperty", "name": "authType", "value": "bearer"},
            *({"@type": "EndpointProperty", "name": EDC_NAMESPACE + name, "value": value}
              for name, value in values.items()),
        ],
    }


def bearer_token(header: str | None) -> str:
    """Take the token from ``Authorization: <token>`` (EDC style) or ``Authorization: Bearer <token>``."""
    value = (header or "").strip()
    scheme, _, rest = value.partition(" ")
    if scheme.lower() == "bearer":
        return rest.strip()
    return value


def build_public_router(
    *,
    verify: Verify,
    resolve_source: ResolveSource,
    policy: SourcePolicy,
    client_factory: ClientFactory,
    path: str = PUBLIC_PATH,
) -> APIRouter:
    """Return a router serving GET and HEAD on ``path`` and ``path/{subpath}``.

    ``verify(token)`` returns the transfer id or raises AccessDeniedError. ``resolve_source(id)``
    returns the asset's data address while the transfer is STARTED and None otherwise. Either may be
    a coroutine function; plain functions run in the thread pool, so a blocking database query does
    not stall the event loop. ``client_factory()`` is called once per HttpData request and the
    client it returns is closed when the response ends.
    """
    api = PublicDataApi(verify=verify, resolve_source=resolve_source, policy=policy, client_factory=client_factory)
    router = APIRouter()
    for route in (path, path.rstrip("/") + "/{subpath:path}"):
        router.add_api_route(route, api.serve, methods=["GET", "HEAD"], include_in_schema=False)
    return router


class PublicDataApi:
    """The request handler behind ``build_public_router``; one instance serves every request."""

    def __init__(
        self,
        *,
        verify: Verify,
        resolve_source: ResolveSource,
        policy: SourcePolicy,
        client_factory: ClientFactory,
    ) -> None:
        self._verify = verify
        self._resolve_source = resolve_source
        self._policy = policy
        self._client_factory = client_factory

    async def serve(self, request: Request) -> Response:
        # Read the sub-path from the route, never from a parameter FastAPI could also fill from the query.
        subpath = str(request.path_params.get("subpath", ""))
        token = bearer_token(request.headers.get("authorization"))
        try:
            if not token:
                raise AccessDeniedError(DenialReason.MISSING)
            transfer_id = await _call(self._verify, token)
        except AccessDeniedError as exc:
            log.info("public API denied a request: %s", exc)
            return _error(401, "access token rejected", exc.reason, {"WWW-Authenticate": "Bearer"})
        address = await _call(self._resolve_source, transfer_id)
        if address is None:
            return _error(403, f"transfer {transfer_id} is not active", "transfer_inactive")
        stack = AsyncExitStack()
        try:
            source = await self._source(stack, address, subpath, request.url.query)
            response = await self._respond(stack, source, request)
        except DataPlaneError as exc:
            await stack.aclose()
            log.warning("public API failed for transfer %s: %s", transfer_id, exc)
            return _error_for(exc)
        except BaseException:
            await stack.aclose()
            raise
        return response

    async def _source(self, stack: AsyncExitStack, address: Mapping[str, object], subpath: str, query: str) -> Source:
        client = None
        if source_type(address) == HTTP_DATA_TYPE:
            client = await stack.enter_async_context(self._client_factory())
        return open_source(address, self._policy, subpath=subpath, query=query, client=client)

    async def _respond(self, stack: AsyncExitStack, source: Source, request: Request) -> Response:
        described = await source.describe()
        if _matches_if_none_match(described, request.headers.get("if-none-match")):
            await stack.aclose()
            return Response(status_code=304, headers=_validator_headers(described))
        byte_range = _effective_range(described, request.headers)
        payload = await stack.enter_async_context(source.open(byte_range))
        status = 206 if payload.content_range is not None else 200
        headers = _payload_headers(payload)
        if request.method == "HEAD":
            await stack.aclose()
            return Response(status_code=status, headers=headers)
        return _ClosingStreamingResponse(payload.chunks, status, headers, on_close=stack.aclose)


class _ClosingStreamingResponse(StreamingResponse):
    """A StreamingResponse that always releases its source, even when the client disconnects."""

    def __init__(
        self,
        content: AsyncIterator[bytes],
        status_code: int,
        headers: Mapping[str, str],
        *,
        on_close: Callable[[], Awaitable[object]],
    ) -> None:
        super().__init__(content, status_code=status_code, headers=headers)
        self._on_close = on_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            with anyio.CancelScope(shield=True):
                await self._on_close()


async def _call(function: Callable[[str], object], argument: str) -> object:
    if inspect.iscoroutinefunction(function):
        return await function(argument)
    result = await run_in_threadpool(function, argument)
    return await result if inspect.isawaitable(result) else result


def _effective_range(metadata: SourceMetadata, headers: Mapping[str, str]) -> ByteRange | None:
    """Honour Range unless If-Range names a different version (or the source cannot tell versions)."""
    byte_range = parse_range(headers.get("range"))
    if_range = headers.get("if-range")
    if byte_range is None or if_range is None:
        return byte_range
    if if_range.startswith('"'):
        return byte_range if metadata.etag is not None and if_range == metadata.etag else None
    if metadata.last_modified is not None and if_range == _http_date(metadata):
        return byte_range
    return None


def _matches_if_none_match(metadata: SourceMetadata, header: str | None) -> bool:
    if header is None or metadata.etag is None:
        return False
    tags = {tag.strip().removeprefix("W/") for tag in header.split(",")}
    return "*" in tags or metadata.etag.removeprefix("W/") in tags


def _http_date(metadata: SourceMetadata) -> str | None:
    if metadata.last_modified is None:
        return None
    return format_datetime(metadata.last_modified, usegmt=True)


def _validator_headers(metadata: SourceMetadata) -> dict[str, str]:
    headers = {"Cache-Control": "no-store"}
    if metadata.etag is not None:
        headers["ETag"] = metadata.etag
    last_modified = _http_date(metadata)
    if last_modified is not None:
        headers["Last-Modified"] = last_modified
    return headers


def _payload_headers(payload: Payload) -> dict[str, str]:
    metadata = payload.metadata
    headers = _validator_headers(metadata)
    headers["Content-Type"] = metadata.content_type
    if payload.length is not None:
        headers["Content-Length"] = str(payload.length)
    if metadata.accepts_ranges:
        headers["Accept-Ranges"] = "bytes"
    if payload.content_range is not None:
        headers["Content-Range"] = payload.content_range.header_value()
    if metadata.content_encoding is not None:
        headers["Content-Encoding"] = metadata.content_encoding
    if metadata.filename:
        headers["Content-Disposition"] = _content_disposition(metadata.filename)
    return headers


def _content_disposition(filename: str) -> str:
    """RFC 6266: an ASCII fallback plus the exact name as UTF-8 in ``filename*``."""
    fallback = "".join(c if c.isascii() and c.isprintable() and c not in '"\\' else "_" for c in filename)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


def _error(
    status: int,
    message: str,
    reason: str,
    headers: Mapping[str, str] | None = None,
    **extra: object,
) -> JSONResponse:
    return JSONResponse(
        {"error": message, "reason": reason, **extra},
        status_code=status,
        headers={"Cache-Control": "no-store", **(headers or {})},
    )


def _error_for(exc: DataPlaneError) -> JSONResponse:
    """Map a data-plane error to a response that names the problem but not the provider's internals."""
    if isinstance(exc, SourceRefusedError):
        return _error(403, "the requested data lies outside what the provider's policy allows", exc.reason)
    if isinstance(exc, SourceNotFoundError):
        return _error(404, "no data exists at the requested path", "not_found")
    if isinstance(exc, RangeNotSatisfiableError):
        extra = {"Content-Range": f"bytes */{exc.size}"} if exc.size is not None else {}
        return _error(416, "the requested range lies outside the data", "range_not_satisfiable", extra)
    if isinstance(exc, UpstreamError):
        if exc.status is None:
            return _error(502, "the provider's upstream source could not be read", "upstream_unreachable")
        message = f"the provider's upstream source answered {exc.status}"
        return _error(502, message, "upstream_status", upstreamStatus=exc.status)
    if isinstance(exc, DataAddressError):
        return _error(500, "the asset's data address is invalid on the provider side", "invalid_data_address")
    return _error(500, "the data plane failed to serve the request", "data_plane_error")

"""The data plane end to end in one process: tokens, the public router, an HttpData upstream, push.

The provider app, the HttpData upstream and the push receiver are separate ASGI apps joined by
httpx.ASGITransport, so every byte crosses a real HTTP request/response boundary.
"""

from __future__ import annotations

import hashlib
import os
import tracemalloc
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from starlette.requests import ClientDisconnect

from connector.dataplane import (
    PushFailedError,
    SourcePolicy,
    build_public_router,
    issue_access_token,
    open_source,
    pull_data_address,
    push,
    token_verifier,
)
from connector.dataplane.egress import EgressGuard
from connector.dataplane.payload import CHUNK_SIZE

pytestmark = pytest.mark.anyio

ISSUER = "did:web:provider.test"
NOW = datetime(2025, 6, 1, 8, 0, tzinfo=UTC)
PUBLIC_ENDPOINT = "http://provider.test/api/public"
DNS = {"upstream.test": ["93.184.216.50"], "receiver.test": ["93.184.216.51"]}
FIVE_MB = 5 * 1024 * 1024


async def _resolve(host: str, port: int) -> list[str]:
    if host not in DNS:
        raise OSError(f"unknown host {host}")
    return DNS[host]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture(scope="module")
def big_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    root = tmp_path_factory.mktemp("root")
    data = os.urandom(FIVE_MB)
    (root / "big.bin").write_bytes(data)
    return root, data


class Upstream:
    """The HttpData upstream: serves files (FileResponse honours Range) and records request headers."""

    def __init__(self, folder: Path) -> None:
        self.seen: list[dict[str, str]] = []
        self.app = FastAPI()

        @self.app.get("/data/{name}")
        async def data(name: str, request: Request) -> Response:
            self.seen.append({**request.headers, "query": request.url.query})
            return FileResponse(folder / name)

        @self.app.get("/broken")
        async def broken() -> Response:
            return JSONResponse({"detail": "boom"}, status_code=500)


class Provider:
    """A provider app with one public router, transfers in a dict standing in for the database."""

    def __init__(self, root: Path, key: ec.EllipticCurvePrivateKey, upstream: Upstream) -> None:
        self.key = key
        self.root = root
        self.active: dict[str, dict[str, object]] = {}
        policy = SourcePolicy(file_root=root, http_allow=("upstream.test",), resolver=_resolve)
        router = build_public_router(
            verify=token_verifier(key.public_key(), issuer=ISSUER, clock=lambda: NOW),
            resolve_source=self.active.get,
            policy=policy,
            client_factory=lambda: httpx.AsyncClient(transport=httpx.ASGITransport(app=upstream.app)),
        )
        self.app = FastAPI()
        self.app.include_router(router)

    def start(self, transfer_id: str, address: dict[str, object]) -> dict[str, str]:
        """Mark the transfer STARTED and return the Authorization header a consumer would send."""
        self.active[transfer_id] = address
        return {"Authorization": self.token(transfer_id)}

    def token(self, transfer_id: str, *, now: datetime = NOW) -> str:
        return issue_access_token(self.key, kid="k1", issuer=ISSUER, transfer_id=transfer_id, now=now)


@pytest.fixture
def upstream(big_file) -> Upstream:
    return Upstream(big_file[0])


@pytest.fixture
def provider(big_file, key, upstream) -> Provider:
    return Provider(big_file[0], key, upstream)


@pytest.fixture
async def consumer(provider) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=provider.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://provider.test") as client:
        yield client


def _file(name: str) -> dict[str, object]:
    return {"type": "File", "path": name}


# --- files --------------------------------------------------------------------------------------


async def test_consumer_pulls_a_5_mb_file_through_the_start_message_address(provider, consumer, big_file):
    provider.active["tp-1"] = _file("big.bin")
    address = pull_data_address(PUBLIC_ENDPOINT, provider.token("tp-1"))
    properties = {item["name"]: item["value"] for item in address["endpointProperties"]}
    response = await consumer.get(address["endpoint"], headers={"Authorization": properties["authorization"]})
    assert response.status_code == 200
    assert response.content == big_file[1]
    assert response.headers["content-length"] == str(FIVE_MB)
    assert response.headers["content-type"] == "application/octet-stream"
    assert response.headers["accept-ranges"] == "bytes"
    assert response.headers["etag"].startswith('"')
    assert "last-modified" in response.headers
    assert response.headers["cache-control"] == "no-store"
    assert 'filename="big.bin"' in response.headers["content-disposition"]


async def test_bearer_prefix_is_accepted(provider, consumer, big_file):
    token = provider.start("tp-1", _file("big.bin"))["Authorization"]
    response = await consumer.get("/api/public", headers={"Authorization": f"Bearer {token}", "Range": "bytes=0-3"})
    assert response.status_code == 206
    assert response.content == big_file[1][:4]


@pytest.mark.parametrize(
    ("header", "first", "last"),
    [
        ("bytes=100-199", 100, 199),
        ("bytes=-500", FIVE_MB - 500, FIVE_MB - 1),
        (f"bytes={FIVE_MB - 10}-", FIVE_MB - 10, FIVE_MB - 1),
        (f"bytes=1000-{FIVE_MB * 2}", 1000, FIVE_MB - 1),
    ],
    ids=["closed", "suffix", "open-ended", "clipped"],
)
async def test_range_request_returns_exactly_the_asked_bytes(provider, consumer, big_file, header, first, last):
    headers = provider.start("tp-1", _file("big.bin"))
    response = await consumer.get("/api/public", headers={**headers, "Range": header})
    assert response.status_code == 206
    assert response.content == big_file[1][first : last + 1]
    assert response.headers["content-range"] == f"bytes {first}-{last}/{FIVE_MB}"
    assert response.headers["content-length"] == str(last - first + 1)


async def test_range_past_the_end_is_416_with_the_size(provider, consumer):
    headers = provider.start("tp-1", _file("big.bin"))
    response = await consumer.get("/api/public", headers={**headers, "Range": f"bytes={FIVE_MB}-"})
    assert response.status_code == 416
    assert response.headers["content-range"] == f"bytes */{FIVE_MB}"
    assert response.json()["reason"] == "range_not_satisfiable"


async def test_several_ranges_are_answered_with_the_whole_body(provider, consumer, big_file):
    headers = provider.start("tp-1", _file("big.bin"))
    response = await consumer.get("/api/public", headers={**headers, "Range": "bytes=0-1,5-6"})
    assert response.status_code == 200
    assert len(response.content) == FIVE_MB


async def test_if_range_with_a_stale_etag_sends_the_whole_body(provider, consumer):
    headers = provider.start("tp-1", _file("big.bin"))
    etag = (await consumer.head("/api/public", headers=headers)).headers["etag"]
    fresh = await consumer.get("/api/public", headers={**headers, "Range": "bytes=0-9", "If-Range": etag})
    stale = await consumer.get("/api/public", headers={**headers, "Range": "bytes=0-9", "If-Range": '"old"'})
    assert (fresh.status_code, len(fresh.content)) == (206, 10)
    assert (stale.status_code, len(stale.content)) == (200, FIVE_MB)


async def test_matching_if_none_match_is_304(provider, consumer):
    headers = provider.start("tp-1", _file("big.bin"))
    etag = (await consumer.head("/api/public", headers=headers)).headers["etag"]
    response = await consumer.get("/api/public", headers={**headers, "If-None-Match": etag})
    assert response.status_code == 304
    assert response.content == b""


async def test_head_sends_headers_and_no_body(provider, consumer):
    headers = provider.start("tp-1", _file("big.bin"))
    response = await consumer.head("/api/public", headers=headers)
    assert response.status_code == 200
    assert response.headers["content-length"] == str(FIVE_MB)
    assert response.content == b""


async def test_directory_asset_lists_and_serves_its_files(provider, consumer, big_file):
    folder = big_file[0] / "set"
    (folder / "nested").mkdir(parents=True, exist_ok=True)
    (folder / "readme.md").write_text("# hello")
    (folder / "nested" / "rows.csv").write_text("a,b\n")
    headers = provider.start("tp-dir", _file("set"))
    listing = await consumer.get("/api/public", headers=headers)
    assert listing.headers["content-type"] == "application/json"
    assert [entry["path"] for entry in listing.json()["files"]] == ["nested/rows.csv", "readme.md"]
    rows = await consumer.get("/api/public/nested/rows.csv", headers=headers)
    assert (rows.status_code, rows.text, rows.headers["content-type"]) == (200, "a,b\n", "text/csv")
    missing = await consumer.get("/api/public/nested/none.csv", headers=headers)
    assert (missing.status_code, missing.json()["reason"]) == (404, "not_found")


@pytest.mark.parametrize(
    "path", ["/api/public/..%2Fbig.bin", "/api/public/%2e%2e/big.bin", "/api/public/nested/..%2F..%2Fbig.bin"]
)
async def test_sub_path_traversal_is_refused_without_revealing_paths(provider, consumer, big_file, path):
    (big_file[0] / "set" / "nested").mkdir(parents=True, exist_ok=True)
    headers = provider.start("tp-dir", _file("set"))
    response = await consumer.get(path, headers=headers)
    assert response.status_code == 403
    assert response.json()["reason"] == "outside_asset"
    assert str(big_file[0]) not in response.text


async def test_sub_path_cannot_be_smuggled_in_the_query(provider, consumer, big_file):
    headers = provider.start("tp-1", _file("big.bin"))
    response = await consumer.get("/api/public", params={"subpath": "../../etc/passwd"}, headers=headers)
    assert response.status_code == 200
    assert len(response.content) == FIVE_MB


# --- access -------------------------------------------------------------------------------------


async def test_missing_token_is_401(provider, consumer):
    provider.start("tp-1", _file("big.bin"))
    response = await consumer.get("/api/public")
    assert response.status_code == 401
    assert response.json() == {"error": "access token rejected", "reason": "missing"}
    assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(
    ("token_for", "reason"),
    [("garbage", "malformed"), ("expired", "expired"), ("forged", "bad_signature")],
)
async def test_bad_tokens_are_401_with_a_reason(provider, consumer, token_for, reason):
    provider.start("tp-1", _file("big.bin"))
    tokens = {
        "garbage": "not-a-token",
        "expired": provider.token("tp-1", now=NOW - timedelta(hours=1)),
        "forged": issue_access_token(
            ec.generate_private_key(ec.SECP256R1()), kid="k1", issuer=ISSUER, transfer_id="tp-1", now=NOW
        ),
    }
    response = await consumer.get("/api/public", headers={"Authorization": tokens[token_for]})
    assert response.status_code == 401
    assert response.json()["reason"] == reason


async def test_token_stops_working_when_the_transfer_stops(provider, consumer):
    headers = provider.start("tp-1", _file("big.bin"))
    assert (await consumer.head("/api/public", headers=headers)).status_code == 200
    del provider.active["tp-1"]  # what suspend/terminate/complete look like to resolve_source
    response = await consumer.get("/api/public", headers=headers)
    assert response.status_code == 403
    assert response.json() == {"error": "transfer tp-1 is not active", "reason": "transfer_inactive"}


async def test_async_callbacks_are_awaited(key, big_file, upstream):
    async def verify(token: str) -> str:
        return "tp-async"

    async def resolve(transfer_id: str) -> dict[str, object] | None:
        return _file("big.bin") if transfer_id == "tp-async" else None

    app = FastAPI()
    app.include_router(
        build_public_router(
            verify=verify,
            resolve_source=resolve,
            policy=SourcePolicy(file_root=big_file[0]),
            client_factory=httpx.AsyncClient,
        )
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://p.test") as client:
        response = await client.get("/api/public", headers={"Authorization": "x", "Range": "bytes=0-0"})
    assert response.content == big_file[1][:1]


# --- HttpData -----------------------------------------------------------------------------------


def _http(path: str, **extra: object) -> dict[str, object]:
    return {"type": "HttpData", "baseUrl": f"http://upstream.test{path}", **extra}


async def test_http_data_is_proxied_with_its_auth_header(provider, consumer, upstream, big_file):
    headers = provider.start("tp-http", _http("/data/big.bin", authKey="X-Api-Key", authCode="upstream-secret"))
    response = await consumer.get("/api/public", headers=headers)
    assert response.status_code == 200
    assert response.content == big_file[1]
    assert response.headers["content-length"] == str(FIVE_MB)
    assert upstream.seen[0]["x-api-key"] == "upstream-secret"
    assert upstream.seen[0]["host"] == "upstream.test"
    assert "authorization" not in upstream.seen[0]  # the consumer's token is never passed upstream


async def test_http_data_passes_the_range_through(provider, consumer, upstream, big_file):
    headers = provider.start("tp-http", _http("/data/big.bin"))
    response = await consumer.get("/api/public", headers={**headers, "Range": "bytes=4096-8191"})
    assert upstream.seen[0]["range"] == "bytes=4096-8191"
    assert response.status_code == 206
    assert response.content == big_file[1][4096:8192]
    assert response.headers["content-range"] == f"bytes 4096-8191/{FIVE_MB}"


async def test_http_data_416_from_upstream_is_passed_on(provider, consumer):
    headers = provider.start("tp-http", _http("/data/big.bin"))
    response = await consumer.get("/api/public", headers={**headers, "Range": f"bytes={FIVE_MB + 5}-"})
    assert response.status_code == 416
    assert response.headers["content-range"] == f"bytes */{FIVE_MB}"


async def test_http_data_proxies_sub_path_and_query_when_enabled(provider, consumer, upstream):
    headers = provider.start("tp-http", _http("/data", proxyPath="true", proxyQueryParams="true", queryParams="v=2"))
    response = await consumer.get("/api/public/big.bin?page=3", headers={**headers, "Range": "bytes=0-0"})
    assert response.status_code == 206
    assert upstream.seen[0]["query"] == "v=2&page=3"


async def test_http_data_upstream_error_is_502(provider, consumer):
    headers = provider.start("tp-http", _http("/broken"))
    response = await consumer.get("/api/public", headers=headers)
    assert response.status_code == 502
    assert response.json() == {
        "error": "the provider's upstream source answered 500",
        "reason": "upstream_status",
        "upstreamStatus": 500,
    }


@pytest.mark.parametrize("base", ["http://127.0.0.1:9000/x", "http://other.test/x"])
async def test_http_data_to_a_host_off_the_allow_list_is_403(provider, consumer, upstream, base):
    headers = provider.start("tp-http", {"type": "HttpData", "baseUrl": base})
    response = await consumer.get("/api/public", headers=headers)
    assert response.status_code == 403
    assert response.json()["reason"] == "not_allowed"
    assert upstream.seen == []


# --- push ---------------------------------------------------------------------------------------


class Receiver:
    """A consumer-side sink that hashes what it receives without keeping it."""

    def __init__(self) -> None:
        self.received: dict[str, tuple[int, str, str]] = {}
        self.app = FastAPI()

        @self.app.api_route("/in/{path:path}", methods=["POST", "PUT"])
        async def accept(path: str, request: Request) -> Response:
            digest, size = hashlib.sha256(), 0
            async for chunk in request.stream():
                digest.update(chunk)
                size += len(chunk)
            self.received[path] = (size, digest.hexdigest(), request.headers.get("authorization", ""))
            return Response(status_code=201)

        @self.app.post("/full")
        async def full() -> Response:
            return JSONResponse({"detail": "quota exceeded"}, status_code=507)


@pytest.fixture
async def receiver_client() -> AsyncIterator[tuple[Receiver, httpx.AsyncClient]]:
    receiver = Receiver()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=receiver.app)) as client:
        yield receiver, client


async def test_push_delivers_equal_bytes_to_the_receiver(receiver_client, big_file):
    receiver, client = receiver_client
    source = open_source(_file("big.bin"), SourcePolicy(file_root=big_file[0]))
    destination = pull_data_address("http://receiver.test/in/big.bin", "sink-token")
    result = await push(source, destination, client, guard=EgressGuard(("receiver.test",), resolver=_resolve))
    assert result.bytes_sent == FIVE_MB
    assert receiver.received["big.bin"] == (FIVE_MB, hashlib.sha256(big_file[1]).hexdigest(), "Bearer sink-token")


async def test_push_of_proxied_http_data_delivers_equal_bytes(receiver_client, upstream, big_file):
    receiver, client = receiver_client
    policy = SourcePolicy(file_root=big_file[0], http_allow=("upstream.test",), resolver=_resolve)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=upstream.app)) as upstream_client:
        source = open_source(_http("/data/big.bin"), policy, client=upstream_client)
        destination = {"type": "HttpData", "baseUrl": "http://receiver.test/in/copy.bin", "method": "PUT"}
        result = await push(source, destination, client, guard=EgressGuard(("receiver.test",), resolver=_resolve))
    assert result.bytes_sent == FIVE_MB
    assert receiver.received["copy.bin"][:2] == (FIVE_MB, hashlib.sha256(big_file[1]).hexdigest())


async def test_push_failure_raises_with_the_receiver_status(receiver_client, big_file):
    _receiver, client = receiver_client
    source = open_source(_file("big.bin"), SourcePolicy(file_root=big_file[0]))
    with pytest.raises(PushFailedError) as caught:
        await push(
            source,
            {"type": "HttpData", "baseUrl": "http://receiver.test/full"},
            client,
            guard=EgressGuard(("receiver.test",), resolver=_resolve),
        )
    assert caught.value.status == 507
    assert "quota exceeded" in caught.value.reason


# --- memory and cleanup -------------------------------------------------------------------------


async def _drive(app: FastAPI, headers: dict[str, str], on_body) -> int:
    """Call the ASGI app directly, handing each body chunk to ``on_body``; returns the status."""
    status = 0
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/api/public",
        "raw_path": b"/api/public",
        "query_string": b"",
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 5000),
        "server": ("provider.test", 80),
    }

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, object]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = int(message["status"])
        elif message["type"] == "http.response.body":
            on_body(message.get("body", b""))

    await app(scope, receive, send)
    return status


async def test_streaming_200_mb_keeps_memory_flat(provider):
    sparse = provider.root / "sparse.bin"
    size = 200 * 1024 * 1024
    with open(sparse, "wb") as handle:
        handle.truncate(size)
    headers = provider.start("tp-big", _file("sparse.bin"))
    sizes: list[int] = []
    tracemalloc.start()
    try:
        status = await _drive(provider.app, headers, lambda body: sizes.append(len(body)))
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        sparse.unlink()
    assert status == 200
    assert sum(sizes) == size
    assert max(sizes) <= CHUNK_SIZE
    assert peak < 50 * 1024 * 1024


async def test_client_disconnect_releases_the_file(provider):
    headers = provider.start("tp-1", _file("big.bin"))
    before = len(os.listdir("/proc/self/fd"))
    chunks = 0

    def drop_after_first(body: bytes) -> None:
        nonlocal chunks
        chunks += 1
        if chunks == 2:
            raise OSError("client went away")

    with pytest.raises(ClientDisconnect):
        await _drive(provider.app, headers, drop_after_first)
    assert len(os.listdir("/proc/self/fd")) == before

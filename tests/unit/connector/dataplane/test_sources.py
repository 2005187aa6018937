from __future__ import annotations

import json
import os
from pathlib import Path

import httpx
import pytest

from connector.dataplane.errors import (
    DataAddressError,
    RangeNotSatisfiableError,
    SourceNotFoundError,
    SourceRefusedError,
    UpstreamError,
)
from connector.dataplane.payload import CHUNK_SIZE
from connector.dataplane.ranges import ByteRange
from connector.dataplane.sources import (
    DirectorySource,
    FileSource,
    HttpDataSource,
    SourcePolicy,
    open_source,
)

pytestmark = pytest.mark.anyio


@pytest.fixture
def policy(file_root: Path) -> SourcePolicy:
    return SourcePolicy(file_root=file_root)


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    secret = tmp_path / "secret.txt"
    secret.write_text("top secret")
    return secret


@pytest.fixture
def dataset(file_root: Path) -> Path:
    folder = file_root / "dataset"
    (folder / "images").mkdir(parents=True)
    (folder / "labels.csv").write_text("id,label\n1,cat\n")
    (folder / "images" / "a.png").write_bytes(b"\x89PNG" + bytes(100))
    return folder


async def _read(source, byte_range=None) -> bytes:
    return b"".join([chunk async for chunk in source.stream(byte_range)])


async def test_file_inside_the_root_is_served_with_metadata(file_root, policy):
    (file_root / "table.csv").write_text("a,b\n1,2\n")
    source = open_source({"type": "File", "path": str(file_root / "table.csv")}, policy)
    assert isinstance(source, FileSource)
    metadata = await source.describe()
    assert metadata.content_type == "text/csv"
    assert metadata.size == 8
    assert metadata.filename == "table.csv"
    assert metadata.etag and metadata.etag.startswith('"')
    assert await _read(source) == b"a,b\n1,2\n"


async def test_relative_path_is_taken_relative_to_the_root(file_root, policy):
    (file_root / "x.bin").write_bytes(b"xyz")
    assert await _read(open_source({"type": "File", "path": "x.bin"}, policy)) == b"xyz"


@pytest.mark.parametrize("path", ["../secret.txt", "sub/../../secret.txt"])
def test_parent_traversal_is_refused(file_root, policy, path):
    (file_root / "sub").mkdir()
    with pytest.raises(SourceRefusedError) as caught:
        open_source({"type": "File", "path": path}, policy)
    assert caught.value.reason == "outside_root"


def test_absolute_path_outside_the_root_is_refused(policy, outside):
    with pytest.raises(SourceRefusedError):
        open_source({"type": "File", "path": str(outside)}, policy)


def test_symlink_leaving_the_root_is_refused(file_root, policy, outside):
    (file_root / "innocent.txt").symlink_to(outside)
    with pytest.raises(SourceRefusedError):
        open_source({"type": "File", "path": str(file_root / "innocent.txt")}, policy)


def test_symlinked_directory_leaving_the_root_is_refused(file_root, policy, outside):
    (file_root / "linked").symlink_to(outside.parent, target_is_directory=True)
    with pytest.raises(SourceRefusedError):
        open_source({"type": "File", "path": str(file_root / "linked" / "secret.txt")}, policy)


async def test_symlink_inside_the_root_is_followed(file_root, policy):
    (file_root / "real.txt").write_text("real")
    (file_root / "alias.txt").symlink_to(file_root / "real.txt")
    assert await _read(open_source({"type": "File", "path": "alias.txt"}, policy)) == b"real"


def test_root_given_through_a_symlink_still_confines(tmp_path, outside):
    real_root = tmp_path / "real-root"
    real_root.mkdir()
    (real_root / "ok.txt").write_text("ok")
    (tmp_path / "root-link").symlink_to(real_root, target_is_directory=True)
    policy = SourcePolicy(file_root=tmp_path / "root-link")
    assert isinstance(open_source({"type": "File", "path": "ok.txt"}, policy), FileSource)
    with pytest.raises(SourceRefusedError):
        open_source({"type": "File", "path": str(outside)}, policy)


def test_symlink_loop_is_refused(file_root, policy):
    (file_root / "loop").symlink_to(file_root / "loop")
    with pytest.raises(SourceRefusedError) as caught:
        open_source({"type": "File", "path": "loop"}, policy)
    assert caught.value.reason == "invalid_path"


@pytest.mark.parametrize("subpath", ["a" * 5000, "a/" * 3000, "bad\x00name"])
def test_absurd_sub_paths_fail_cleanly(policy, dataset, subpath):
    with pytest.raises((SourceNotFoundError, SourceRefusedError)):
        open_source({"type": "File", "path": str(dataset)}, policy, subpath=subpath)


def test_missing_file_is_not_found(policy):
    with pytest.raises(SourceNotFoundError):
        open_source({"type": "File", "path": "nope.csv"}, policy)


async def test_fifo_is_not_served(file_root, policy):
    os.mkfifo(file_root / "pipe")
    with pytest.raises(SourceNotFoundError):
        open_source({"type": "File", "path": "pipe"}, policy)
    with pytest.raises(SourceNotFoundError):
        async with FileSource(file_root / "pipe").open():
            pass


async def test_directory_root_is_a_json_listing(policy, dataset, outside):
    (dataset / "escape.txt").symlink_to(outside)
    source = open_source({"type": "File", "path": str(dataset)}, policy)
    assert isinstance(source, DirectorySource)
    listing = json.loads(await _read(source))
    assert listing["directory"] == "dataset"
    assert listing["files"] == [
        {"path": "images/a.png", "size": 104, "contentType": "image/png"},
        {"path": "labels.csv", "size": 15, "contentType": "text/csv"},
    ]


async def test_directory_serves_a_file_by_sub_path(policy, dataset):
    source = open_source({"type": "File", "path": str(dataset)}, policy, subpath="images/a.png")
    assert isinstance(source, FileSource)
    assert (await _read(source)).startswith(b"\x89PNG")


async def test_directory_sub_directory_is_listed(policy, dataset):
    source = open_source({"type": "File", "path": str(dataset)}, policy, subpath="images/")
    assert [entry.path for entry in await source.files()] == ["a.png"]


@pytest.mark.parametrize("subpath", ["../secret.txt", "images/../../dataset-sibling.txt", "/../secret.txt"])
def test_sub_path_cannot_leave_the_directory_asset(file_root, policy, dataset, subpath):
    (file_root / "dataset-sibling.txt").write_text("another asset")
    with pytest.raises(SourceRefusedError) as caught:
        open_source({"type": "File", "path": str(dataset)}, policy, subpath=subpath)
    assert caught.value.reason == "outside_asset"


def test_absolute_sub_path_stays_inside_the_directory(policy, dataset):
    source = open_source({"type": "File", "path": str(dataset)}, policy, subpath="/labels.csv")
    assert isinstance(source, FileSource)
    assert source.path == dataset / "labels.csv"


def test_sub_path_of_a_single_file_asset_is_not_found(file_root, policy):
    (file_root / "one.txt").write_text("1")
    with pytest.raises(SourceNotFoundError):
        open_source({"type": "File", "path": "one.txt"}, policy, subpath="more")


async def test_byte_range_streams_exact_bytes_in_bounded_chunks(file_root, policy):
    data = os.urandom(3 * CHUNK_SIZE + 123)
    (file_root / "blob.bin").write_bytes(data)
    source = open_source({"type": "File", "path": "blob.bin"}, policy)
    async with source.open(ByteRange(1000, 2 * CHUNK_SIZE + 10)) as payload:
        chunks = [chunk async for chunk in payload.chunks]
        assert payload.length == 2 * CHUNK_SIZE + 10 - 1000 + 1
        assert payload.content_range is not None
        assert payload.content_range.header_value() == f"bytes 1000-{2 * CHUNK_SIZE + 10}/{len(data)}"
    assert b"".join(chunks) == data[1000 : 2 * CHUNK_SIZE + 11]
    assert max(len(chunk) for chunk in chunks) <= CHUNK_SIZE
    assert await _read(source) == data
    assert await _read(source, ByteRange(None, 10)) == data[-10:]


async def test_range_past_the_end_is_not_satisfiable(file_root, policy):
    (file_root / "small.bin").write_bytes(b"0123456789")
    source = open_source({"type": "File", "path": "small.bin"}, policy)
    with pytest.raises(RangeNotSatisfiableError) as caught:
        async with source.open(ByteRange(10, None)):
            pass
    assert caught.value.size == 10


@pytest.mark.parametrize(
    ("address", "field"),
    [
        ({"path": "/x"}, "type"),
        ({"type": "S3", "bucket": "b"}, "type"),
        ({"type": "File"}, "path"),
        ({"type": "File", "path": 7}, "path"),
        ({"type": "HttpData"}, "baseUrl"),
        ({"type": "HttpData", "baseUrl": "https://a.example", "authKey": "X-Key"}, "authKey"),
        ({"type": "HttpData", "baseUrl": "https://a.example", "proxyPath": "maybe"}, "proxyPath"),
        ({"type": "HttpData", "baseUrl": "https://a.example", "secretName": "vault-key"}, "secretName"),
    ],
)
async def test_unusable_addresses_name_the_field(policy, address, field):
    async with httpx.AsyncClient() as client:
        with pytest.raises(DataAddressError) as caught:
            open_source(address, policy, client=client)
    assert caught.value.field == field


def test_unsupported_type_lists_the_supported_ones(policy):
    with pytest.raises(DataAddressError) as caught:
        open_source({"type": "AmazonS3"}, policy)
    assert caught.value.supported == ("File", "HttpData")
    assert "File, HttpData" in str(caught.value)


async def test_edc_namespaced_keys_are_understood(file_root, policy):
    (file_root / "n.txt").write_text("namespaced")
    address = {
        "@type": "DataAddress",
        "https://w3id.org/edc/v0.0.1/ns/type": "File",
        "edc:path": "n.txt",
    }
    assert await _read(open_source(address, policy)) == b"namespaced"


def test_http_data_needs_a_client(policy):
    with pytest.raises(ValueError, match="AsyncClient"):
        open_source({"type": "HttpData", "baseUrl": "https://a.example"}, policy)


async def test_http_data_url_composes_path_query_and_proxied_parts(policy):
    address = {
        "type": "HttpData",
        "baseUrl": "https://api.example.org/base/",
        "path": "/items",
        "queryParams": "format=csv",
        "proxyPath": "true",
        "proxyQueryParams": True,
    }
    async with httpx.AsyncClient() as client:
        source = open_source(address, policy, subpath="2024/q1 report.csv", query="page=2", client=client)
    assert isinstance(source, HttpDataSource)
    assert str(source.url) == "https://api.example.org/base/items/2024/q1%20report.csv?format=csv&page=2"


async def test_http_data_ignores_consumer_parts_unless_proxying(policy):
    address = {"type": "HttpData", "baseUrl": "https://api.example.org/data"}
    async with httpx.AsyncClient() as client:
        source = open_source(address, policy, subpath="other", query="admin=1", client=client)
    assert str(source.url) == "https://api.example.org/data"


@pytest.mark.parametrize("subpath", ["../asset-2", "a/../../x", "%2e%2e/x", "..\\x"])
async def test_proxied_sub_path_cannot_climb_out_of_the_asset(policy, subpath):
    address = {"type": "HttpData", "baseUrl": "https://api.example.org/assets/1", "proxyPath": True}
    async with httpx.AsyncClient() as client:
        with pytest.raises(SourceRefusedError) as caught:
            open_source(address, policy, subpath=subpath, client=client)
    assert caught.value.reason == "dot_segment"


class _Upstream:
    """A scripted upstream behind httpx.MockTransport that records what it was sent."""

    def __init__(self, routes: dict[str, httpx.Response]) -> None:
        self.routes = routes
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        key = f"{request.headers['host']}{request.url.path}"
        return self.routes.get(key, httpx.Response(404))


@pytest.fixture
def http_policy(file_root, make_resolver) -> SourcePolicy:
    dns = {"data.example.org": ["93.184.216.34"], "mirror.example.org": ["93.184.216.35"], "evil.example": ["6.6.6.6"]}
    return SourcePolicy(
        file_root=file_root,
        http_allow=("data.example.org", "mirror.example.org"),
        resolver=make_resolver(dns),
    )


async def test_http_data_is_fetched_from_the_pinned_address_with_auth(http_policy):
    upstream = _Upstream({"data.example.org/f.json": httpx.Response(200, json={"ok": True})})
    address = {
        "type": "HttpData",
        "baseUrl": "https://data.example.org/f.json",
        "authKey": "X-Api-Key",
        "authCode": "k",
    }
    async with httpx.AsyncClient(transport=httpx.MockTransport(upstream)) as client:
        body = await _read(open_source(address, http_policy, client=client))
    assert json.loads(body) == {"ok": True}
    sent = upstream.requests[0]
    assert sent.url.host == "93.184.216.34"
    assert sent.headers["host"] == "data.example.org"
    assert sent.headers["x-api-key"] == "k"
    assert sent.headers["accept-encoding"] == "identity"
    assert sent.extensions["sni_hostname"] == "data.example.org"


async def test_http_data_follows_redirects_to_allowed_hosts_without_leaking_auth(http_policy):
    upstream = _Upstream(
        {
            "data.example.org/f": httpx.Response(302, headers={"Location": "https://mirror.example.org/g"}),
            "mirror.example.org/g": httpx.Response(200, content=b"mirrored"),
        }
    )
    address = {"type": "HttpData", "baseUrl": "https://data.example.org/f", "authKey": "X-Api-Key", "authCode": "k"}
    async with httpx.AsyncClient(transport=httpx.MockTransport(upstream)) as client:
        assert await _read(open_source(address, http_policy, client=client)) == b"mirrored"
    assert "x-api-key" not in upstream.requests[1].headers


@pytest.mark.parametrize("location", ["https://evil.example/steal", "http://127.0.0.1:2375/containers"])
async def test_http_data_does_not_follow_redirects_to_refused_hosts(http_policy, location):
    upstream = _Upstream({"data.example.org/f": httpx.Response(302, headers={"Location": location})})
    address = {"type": "HttpData", "baseUrl": "https://data.example.org/f"}
    async with httpx.AsyncClient(transport=httpx.MockTransport(upstream)) as client:
        with pytest.raises(UpstreamError, match="redirected to a refused URL"):
            await _read(open_source(address, http_policy, client=client))
    assert len(upstream.requests) == 1


async def test_http_data_refuses_hosts_off_the_allow_list_before_sending(http_policy):
    upstream = _Upstream({})
    async with httpx.AsyncClient(transport=httpx.MockTransport(upstream)) as client:
        for base in ("https://evil.example/x", "http://127.0.0.1/x"):
            with pytest.raises(SourceRefusedError):
                await _read(open_source({"type": "HttpData", "baseUrl": base}, http_policy, client=client))
    assert upstream.requests == []


async def test_http_data_error_status_becomes_an_upstream_error(http_policy):
    upstream = _Upstream({"data.example.org/f": httpx.Response(503)})
    async with httpx.AsyncClient(transport=httpx.MockTransport(upstream)) as client:
        with pytest.raises(UpstreamError) as caught:
            await _read(
                open_source({"type": "HttpData", "baseUrl": "https://data.example.org/f"}, http_policy, client=client)
            )
    assert caught.value.status == 503


async def test_http_data_connection_failure_becomes_an_upstream_error(http_policy):
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    async with httpx.AsyncClient(transport=httpx.MockTransport(refuse)) as client:
        with pytest.raises(UpstreamError) as caught:
            await _read(
                open_source({"type": "HttpData", "baseUrl": "https://data.example.org/f"}, http_policy, client=client)
            )
    assert caught.value.status is None


async def test_upstream_last_modified_is_normalised_to_utc(http_policy):
    headers = {"Last-Modified": "Tue, 01 Jul 2025 12:00:00 +0200", "Content-Type": "text/plain"}
    upstream = _Upstream({"data.example.org/f": httpx.Response(200, content=b"x", headers=headers)})
    async with httpx.AsyncClient(transport=httpx.MockTransport(upstream)) as client:
        source = open_source({"type": "HttpData", "baseUrl": "https://data.example.org/f"}, http_policy, client=client)
        async with source.open() as payload:
            assert payload.metadata.last_modified is not None
            assert payload.metadata.last_modified.isoformat() == "2025-07-01T10:00:00+00:00"
            assert payload.metadata.content_type == "text/plain"

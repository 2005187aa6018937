from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from connector.dataplane.egress import EgressGuard
from connector.dataplane.errors import DataAddressError, PushFailedError, SourceNotFoundError
from connector.dataplane.file_source import DirectorySource, FileSource
from connector.dataplane.push import PushDestination, push

pytestmark = pytest.mark.anyio

DNS = {"sink.example.org": ["93.184.216.40"], "localhost": ["127.0.0.1"]}


class _Sink:
    """Records every request body it receives and answers with a fixed status."""

    def __init__(self, status: int = 201, body: bytes = b"") -> None:
        self.status = status
        self.body = body
        self.received: list[tuple[str, str, dict[str, str], bytes]] = []

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        content = b"".join([chunk async for chunk in request.stream])
        self.received.append((request.method, request.url.raw_path.decode(), dict(request.headers), content))
        return httpx.Response(self.status, content=self.body)


@pytest.fixture
def guard(make_resolver) -> EgressGuard:
    return EgressGuard(("*",), resolver=make_resolver(DNS))


@pytest.fixture
def blob(file_root: Path) -> FileSource:
    path = file_root / "blob.bin"
    path.write_bytes(bytes(range(256)) * 1000)
    return FileSource(path)


def test_dsp_destination_sends_the_token_as_bearer():
    destination = PushDestination.from_data_address(
        {
            "@type": "DataAddress",
            "endpointType": "https://w3id.org/idsa/v4.1/HTTP",
            "endpoint": "https://sink.example.org/in",
            "endpointProperties": [
                {"@type": "EndpointProperty", "name": "authorization", "value": "tok"},
                {"@type": "EndpointProperty", "name": "authType", "value": "bearer"},
            ],
        }
    )
    assert destination.url == httpx.URL("https://sink.example.org/in")
    assert destination.method == "POST"
    assert destination.headers == (("Authorization", "Bearer tok"),)


def test_dsp_destination_in_expanded_json_ld_form_is_understood():
    destination = PushDestination.from_data_address(
        {
            "@type": "DataAddress",
            "endpointType": {"@id": "https://w3id.org/idsa/v4.1/HTTP"},
            "endpoint": {"@value": "https://sink.example.org/in"},
            "endpointProperties": [{"name": "authorization", "value": "raw-token"}],
        }
    )
    assert destination.headers == (("Authorization", "raw-token"),)


def test_edc_destination_carries_its_auth_header_and_method():
    destination = PushDestination.from_data_address(
        {
            "type": "HttpData",
            "baseUrl": "https://sink.example.org/in",
            "authKey": "X-Key",
            "authCode": "s3",
            "method": "put",
        }
    )
    assert destination.method == "PUT"
    assert destination.headers == (("X-Key", "s3"),)


@pytest.mark.parametrize(
    ("address", "field"),
    [
        ({"type": "File", "path": "/tmp/x"}, "type"),
        ({"type": "HttpData", "baseUrl": "https://s.example", "method": "DELETE"}, "method"),
        (
            {"@type": "DataAddress", "endpointType": "https://w3id.org/idsa/v4.1/S3", "endpoint": "s3://b"},
            "endpointType",
        ),
        ({"@type": "DataAddress", "endpointType": "https://w3id.org/idsa/v4.1/HTTP"}, "endpoint"),
        (
            {
                "@type": "DataAddress",
                "endpointType": "https://w3id.org/idsa/v4.1/HTTP",
                "endpoint": "https://s.example",
                "endpointProperties": {},
            },
            "endpointProperties",
        ),
    ],
)
def test_unusable_destinations_name_the_field(address, field):
    with pytest.raises(DataAddressError) as caught:
        PushDestination.from_data_address(address)
    assert caught.value.field == field


async def test_push_streams_the_file_and_counts_bytes(blob, guard):
    sink = _Sink()
    async with httpx.AsyncClient(transport=httpx.MockTransport(sink)) as client:
        result = await push(blob, {"type": "HttpData", "baseUrl": "https://sink.example.org/in"}, client, guard=guard)
    method, path, headers, body = sink.received[0]
    assert (result.bytes_sent, result.files) == (256_000, 1)
    assert body == blob.path.read_bytes()
    assert (method, path) == ("POST", "/in")
    assert headers["host"] == "sink.example.org"
    assert headers["content-length"] == "256000"


async def test_push_uses_put_when_asked(blob, guard):
    sink = _Sink(status=200)
    destination = {"type": "HttpData", "baseUrl": "https://sink.example.org/in", "method": "PUT"}
    async with httpx.AsyncClient(transport=httpx.MockTransport(sink)) as client:
        await push(blob, destination, client, guard=guard)
    assert sink.received[0][0] == "PUT"


async def test_directory_is_pushed_file_by_file_under_the_base_url(file_root, guard):
    folder = file_root / "set"
    (folder / "sub dir").mkdir(parents=True)
    (folder / "a.txt").write_text("alpha")
    (folder / "sub dir" / "b.txt").write_text("beta!")
    sink = _Sink()
    async with httpx.AsyncClient(transport=httpx.MockTransport(sink)) as client:
        result = await push(
            DirectorySource(folder),
            {"type": "HttpData", "baseUrl": "https://sink.example.org/up/"},
            client,
            guard=guard,
        )
    assert (result.bytes_sent, result.files) == (10, 2)
    assert [(path, body) for _m, path, _h, body in sink.received] == [
        ("/up/a.txt", b"alpha"),
        ("/up/sub%20dir/b.txt", b"beta!"),
    ]


async def test_error_answer_raises_with_status_and_a_short_reason(blob, guard):
    sink = _Sink(status=507, body=b"disk full" + b"x" * 5000)
    async with httpx.AsyncClient(transport=httpx.MockTransport(sink)) as client:
        with pytest.raises(PushFailedError) as caught:
            await push(blob, {"type": "HttpData", "baseUrl": "https://sink.example.org/in"}, client, guard=guard)
    assert caught.value.status == 507
    assert "disk full" in caught.value.reason
    assert len(caught.value.reason) < 300


async def test_redirect_is_a_failure_not_followed(blob, guard):
    sink = _Sink(status=307)
    async with httpx.AsyncClient(transport=httpx.MockTransport(sink)) as client:
        with pytest.raises(PushFailedError) as caught:
            await push(blob, {"type": "HttpData", "baseUrl": "https://sink.example.org/in"}, client, guard=guard)
    assert caught.value.status == 307
    assert len(sink.received) == 1


@pytest.mark.parametrize(
    "url", ["http://localhost:8080/admin", "http://169.254.169.254/latest", "http://10.0.0.1/", "file:///etc/passwd"]
)
async def test_push_refuses_private_destinations_by_default(blob, make_resolver, url):
    sink = _Sink()
    async with httpx.AsyncClient(transport=httpx.MockTransport(sink)) as client:
        with pytest.raises(PushFailedError, match="refused"):
            await push(
                blob,
                {"type": "HttpData", "baseUrl": url},
                client,
                guard=EgressGuard(("*",), resolver=make_resolver(DNS)),
            )
        with pytest.raises(PushFailedError, match="refused"):
            await push(blob, {"type": "HttpData", "baseUrl": url}, client)
    assert sink.received == []


async def test_unreachable_destination_raises_without_status(blob, guard):
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    async with httpx.AsyncClient(transport=httpx.MockTransport(refuse)) as client:
        with pytest.raises(PushFailedError) as caught:
            await push(blob, {"type": "HttpData", "baseUrl": "https://sink.example.org/in"}, client, guard=guard)
    assert caught.value.status is None


async def test_missing_source_file_raises_its_own_error(file_root, guard):
    async with httpx.AsyncClient(transport=httpx.MockTransport(_Sink())) as client:
        with pytest.raises(SourceNotFoundError):
            await push(
                FileSource(file_root / "gone.bin"),
                {"type": "HttpData", "baseUrl": "https://sink.example.org/"},
                client,
                guard=guard,
            )

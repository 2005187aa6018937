from __future__ import annotations

import httpx
import pytest

from connector.dataplane.egress import AllowEntry, EgressGuard, display_url
from connector.dataplane.errors import AllowListError, SourceRefusedError, UpstreamError

pytestmark = pytest.mark.anyio

DNS = {
    "data.example.org": ["93.184.216.34"],
    "api.partner.example": ["93.184.216.35", "2606:2800:220:1:248:1893:25c8:1946"],
    "localhost": ["127.0.0.1", "::1"],
    "rebind.example.org": ["93.184.216.36", "10.1.2.3"],
    "internal.corp": ["10.0.0.5"],
    "a.sub.example.net": ["93.184.216.37"],
    "example.net": ["93.184.216.38"],
}


@pytest.fixture
def guard_for(make_resolver):
    def build(*allow: str) -> EgressGuard:
        return EgressGuard(allow, resolver=make_resolver(DNS))

    return build


async def _refusal(guard: EgressGuard, url: str) -> str:
    with pytest.raises(SourceRefusedError) as caught:
        await guard.check(url)
    return caught.value.reason


async def test_allowed_public_host_passes_and_is_pinned_to_its_checked_address(guard_for):
    target = await guard_for("data.example.org").check("https://data.example.org/files/a.csv?x=1")
    assert target.address == "93.184.216.34"
    assert target.request_url.host == "93.184.216.34"
    assert target.request_url.path == "/files/a.csv"
    assert target.request_url.query == b"x=1"
    assert target.headers == {"Host": "data.example.org"}
    assert target.extensions == {"sni_hostname": "data.example.org"}


async def test_plain_http_needs_no_tls_server_name(guard_for):
    target = await guard_for("data.example.org:8080").check("http://data.example.org:8080/x")
    assert target.extensions == {}
    assert target.headers == {"Host": "data.example.org:8080"}


async def test_ip_literal_url_is_sent_unchanged(guard_for):
    target = await guard_for("*").check("http://93.184.216.34/x")
    assert target.request_url == httpx.URL("http://93.184.216.34/x")
    assert target.headers == {}


async def test_host_missing_from_the_allow_list_is_refused(guard_for):
    assert await _refusal(guard_for("data.example.org"), "https://evil.example.com/") == "not_allowed"


async def test_empty_allow_list_refuses_everything(guard_for):
    assert await _refusal(guard_for(), "https://data.example.org/") == "not_allowed"


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/",
        "http://localhost:8080/",
        "http://10.0.0.8/",
        "http://172.16.4.4/",
        "http://192.168.1.1/",
        "http://169.254.169.254/latest/meta-data/",
        "http://100.64.0.1/",
        "http://[::1]/",
        "http://[fd00::1]/",
        "http://[fe80::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://0.0.0.0/",
        "http://224.0.0.1/",
        "http://internal.corp/",
    ],
)
async def test_non_public_destinations_are_refused_under_a_wildcard(guard_for, url):
    assert await _refusal(guard_for("*"), url) == "private_address"


async def test_every_resolved_address_is_checked(guard_for):
    assert await _refusal(guard_for("*.example.org"), "https://rebind.example.org/") == "private_address"


async def test_loopback_passes_when_listed_explicitly(guard_for):
    target = await guard_for("127.0.0.1:9000").check("http://127.0.0.1:9000/data")
    assert target.address == "127.0.0.1"


async def test_listed_name_of_a_private_host_passes(guard_for):
    target = await guard_for("internal.corp", "*").check("http://internal.corp/bucket/key")
    assert target.address == "10.0.0.5"


async def test_explicit_entry_with_a_port_does_not_admit_other_ports(guard_for):
    assert await _refusal(guard_for("127.0.0.1:9000"), "http://127.0.0.1:9001/") == "not_allowed"


async def test_default_port_counts_as_the_port(guard_for):
    await guard_for("data.example.org:443").check("https://data.example.org/")
    assert await _refusal(guard_for("data.example.org:443"), "http://data.example.org/") == "not_allowed"


async def test_url_prefix_admits_paths_below_it_only(guard_for):
    guard = guard_for("https://api.partner.example/v1/")
    await guard.check("https://api.partner.example/v1/items?page=2")
    await guard.check("https://api.partner.example/v1")
    assert await _refusal(guard, "https://api.partner.example/v10/items") == "not_allowed"
    assert await _refusal(guard, "https://api.partner.example/v2/") == "not_allowed"
    assert await _refusal(guard, "http://api.partner.example/v1/items") == "not_allowed"
    assert await _refusal(guard, "https://api.partner.example:8443/v1/items") == "not_allowed"


async def test_prefix_cannot_be_escaped_with_lookalike_hosts(guard_for):
    guard = guard_for("https://api.partner.example/")
    assert await _refusal(guard, "https://api.partner.example.evil.com/") == "not_allowed"
    assert await _refusal(guard, "https://api.partner.example@evil.com/") == "not_allowed"


@pytest.mark.parametrize("path", ["/v1/%2e%2e/admin", "/v1/%2E%2E%2Fadmin", "/v1/..%5cadmin", "/v1/%2e/x"])
async def test_encoded_dot_segments_are_refused(guard_for, path):
    assert await _refusal(guard_for("*"), f"https://api.partner.example{path}") == "dot_segment"


async def test_literal_dot_segments_are_folded_before_the_prefix_check(guard_for):
    guard = guard_for("https://api.partner.example/v1/")
    assert await _refusal(guard, "https://api.partner.example/v1/../admin") == "not_allowed"


async def test_subdomain_wildcard_does_not_match_the_bare_domain(guard_for):
    guard = guard_for("*.example.net")
    await guard.check("https://a.sub.example.net/")
    assert await _refusal(guard, "https://example.net/") == "not_allowed"


@pytest.mark.parametrize("url", ["ftp://data.example.org/x", "file:///etc/passwd", "data:text/plain,hi"])
async def test_non_http_schemes_are_refused(guard_for, url):
    assert await _refusal(guard_for("*"), url) == "unsupported_scheme"


async def test_unresolvable_host_is_an_upstream_error(guard_for):
    with pytest.raises(UpstreamError):
        await guard_for("*").check("https://nowhere.example.org/")


@pytest.mark.parametrize(
    "entry", ["", "a.com/x", "*.*.com", "a*.com", "a.com:0", "a.com:99999", "[::1", "ftp://a.com", "https://a.com/?q=1"]
)
def test_unusable_allow_list_entries_are_rejected(entry):
    with pytest.raises(AllowListError) as caught:
        AllowEntry.parse(entry)
    assert caught.value.entry == entry


@pytest.mark.parametrize(
    ("entry", "host", "port"),
    [("A.Example.com", "a.example.com", None), ("[::1]:8080", "::1", 8080), ("10.0.0.1:9000", "10.0.0.1", 9000)],
)
def test_host_entries_parse(entry, host, port):
    parsed = AllowEntry.parse(entry)
    assert (parsed.host, parsed.port) == (host, port)


def test_display_url_drops_credentials_and_query():
    assert display_url("https://user:pw@data.example.org/x?api_key=secret") == "https://data.example.org/x"

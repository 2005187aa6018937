"""Decide which outbound HTTP destinations the data plane may reach, and pin the checked address.

Both HttpData sources (configured by the provider) and push destinations (chosen by the consumer) make
the connector send requests, so both pass through ``EgressGuard.check`` to stop server-side request
forgery. The rules:

* the URL must be http or https, and match an allow-list entry: ``*`` (any host), ``*.example.org``
  (subdomains), ``host`` or ``host:port``, or a URL prefix ``https://host[:port]/path/``;
* the host name is resolved and every address is checked: if any is loopback, link-local, private
  (RFC 1918, RFC 6598, ULA), multicast, reserved or unspecified, the URL passes only when a
  non-wildcard entry names it ("explicitly listed");
* paths with ``.`` or ``..`` segments are refused, even percent-encoded, so a prefix cannot be escaped
  by an upstream that normalises paths after the check.

The request is then sent to the address that was checked, not to a fresh lookup, so DNS rebinding
between check and connect cannot redirect it: ``EgressTarget`` carries the pinned URL, the original
Host header and the TLS server name, which keeps certificate checks on the real host name.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import unquote

import httpx

from connector.dataplane.errors import AllowListError, SourceRefusedError, UpstreamError

Resolver = Callable[[str, int], Awaitable[Sequence[str]]]

_DEFAULT_PORTS = {"http": 80, "https": 443}
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


async def resolve_host(host: str, port: int) -> list[str]:
    """Resolve ``host`` with the system resolver, without blocking the event loop."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def display_url(url: httpx.URL | str) -> str:
    """Render a URL for messages and logs: no user info, no query (query strings often hold API keys)."""
    parsed = httpx.URL(url) if isinstance(url, str) else url
    return str(parsed.copy_with(userinfo=b"", query=None, fragment=None))


def effective_port(url: httpx.URL) -> int:
    return url.port if url.port is not None else _DEFAULT_PORTS[url.scheme]


def is_public_address(address: IPAddress) -> bool:
    """True for globally routable unicast addresses; IPv4-mapped IPv6 is judged as the IPv4 inside."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


@dataclass(frozen=True)
class AllowEntry:
    """One parsed allow-list entry; ``is_explicit`` entries may name non-public addresses."""

    text: str
    host: str
    port: int | None = None
    scheme: str | None = None
    path_prefix: str | None = None

    @property
    def is_wildcard(self) -> bool:
        return self.host == "*" or self.host.startswith("*.")

    @classmethod
    def parse(cls, text: str) -> AllowEntry:
        entry = text.strip()
        if not entry:
            raise AllowListError(text, "is empty")
        if "://" in entry:
            return cls._parse_prefix(text, entry)
        host_text, port = _split_host_port(text, entry)
        try:
            parsed = httpx.URL(f"http://[{host_text}]/" if ":" in host_text else f"http://{host_text}/")
        except httpx.InvalidURL as exc:
            raise AllowListError(text, "is not a host name") from exc
        if parsed.path != "/" or parsed.query or parsed.userinfo or not parsed.host:
            raise AllowListError(text, "has a path, query or user part but no scheme")
        if "*" in parsed.host and not (parsed.host == "*" or parsed.host.startswith("*.")):
            raise AllowListError(text, "uses * other than as a whole host or a leading *. label")
        if "*" in parsed.host[1:]:
            raise AllowListError(text, "uses * more than once")
        return cls(text=text, host=parsed.host, port=port)

    @classmethod
    def _parse_prefix(cls, text: str, entry: str) -> AllowEntry:
        try:
            parsed = httpx.URL(entry)
        except httpx.InvalidURL as exc:
            raise AllowListError(text, "is not a valid URL") from exc
        if parsed.scheme not in _DEFAULT_PORTS or not parsed.host:
            raise AllowListError(text, "is not an http or https URL with a host")
        if parsed.query or parsed.fragment or parsed.userinfo:
            raise AllowListError(text, "has a query, fragment or user part")
        return cls(
            text=text,
            host=parsed.host,
            port=effective_port(parsed),
            scheme=parsed.scheme,
            path_prefix=parsed.path.rstrip("/"),
        )

    def matches(self, url: httpx.URL) -> bool:
        if self.scheme is not None and url.scheme != self.scheme:
            return False
        if self.port is not None and effective_port(url) != self.port:
            return False
        if not self._host_matches(url.host):
            return False
        if not self.path_prefix:
            return True
        return url.path == self.path_prefix or url.path.startswith(self.path_prefix + "/")

    def _host_matches(self, host: str) -> bool:
        if self.host == "*":
            return True
        if self.host.startswith("*."):
            return host.endswith(self.host[1:]) and len(host) > len(self.host) - 1
        return host == self.host


@dataclass(frozen=True)
class EgressTarget:
    """A checked URL and the address it must be sent to."""

    url: httpx.URL
    address: str

    @property
    def request_url(self) -> httpx.URL:
        """The URL with its host replaced by the checked address, so no second DNS lookup happens."""
        if self.url.host == self.address:
            return self.url
        return self.url.copy_with(host=self.address)

    @property
    def headers(self) -> Mapping[str, str]:
        if self.url.host == self.address:
            return {}
        return {"Host": self.url.netloc.decode("ascii")}

    @property
    def extensions(self) -> dict[str, str]:
        """TLS server name for certificate checks, since the request URL now names an IP address."""
        if self.url.scheme == "https" and self.url.host != self.address:
            return {"sni_hostname": self.url.raw_host.decode("ascii")}
        return {}


class EgressGuard:
    """Check URLs against an allow-list and the addresses their hosts resolve to."""

    def __init__(self, allow: Sequence[str], *, resolver: Resolver = resolve_host) -> None:
        self._entries = tuple(AllowEntry.parse(text) for text in allow)
        self._resolver = resolver

    @property
    def entries(self) -> tuple[AllowEntry, ...]:
        return self._entries

    async def check(self, url: httpx.URL | str) -> EgressTarget:
        """Return where to send a request for ``url``, or raise SourceRefusedError.

        Raises UpstreamError when the host name does not resolve.
        """
        parsed = _parse_url(url)
        shown = display_url(parsed)
        matching = [entry for entry in self._entries if entry.matches(parsed)]
        if not matching:
            raise SourceRefusedError(shown, "not_allowed", "the URL matches no entry of the HTTP allow-list")
        addresses = await self._addresses(parsed, shown)
        is_explicit = any(not entry.is_wildcard for entry in matching)
        if not is_explicit:
            for address in addresses:
                if not is_public_address(address):
                    raise SourceRefusedError(
                        shown,
                        "private_address",
                        f"the host resolves to the non-public address {address}; list the host explicitly to allow it",
                    )
        return EgressTarget(url=parsed, address=str(addresses[0]))

    async def _addresses(self, url: httpx.URL, shown: str) -> list[IPAddress]:
        try:
            return [ipaddress.ip_address(url.host)]
        except ValueError:
            pass
        try:
            resolved = await self._resolver(url.raw_host.decode("ascii"), effective_port(url))
        except OSError as exc:
            raise UpstreamError(shown, f"cannot resolve host {url.host}") from exc
        addresses = []
        for text in resolved:
            # Drop an IPv6 zone ("fe80::1%eth0"): the address itself decides whether it is public.
            addresses.append(ipaddress.ip_address(text.split("%", 1)[0]))
        if not addresses:
            raise UpstreamError(shown, f"host {url.host} resolves to no address")
        return addresses


def _split_host_port(text: str, entry: str) -> tuple[str, int | None]:
    """Split ``host``, ``host:port``, ``[v6]`` or ``[v6]:port``; a bare IPv6 literal has no port."""
    if entry.startswith("["):
        host, bracket, rest = entry[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise AllowListError(text, "has an unterminated or malformed [IPv6] part")
        port_text = rest[1:] if rest else None
    elif entry.count(":") == 1:
        host, port_text = entry.split(":")
    else:
        host, port_text = entry, None
    if port_text is None:
        return host, None
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise AllowListError(text, "has a port that is not a number from 1 to 65535")
    return host, int(port_text)


def _parse_url(url: httpx.URL | str) -> httpx.URL:
    try:
        parsed = httpx.URL(url) if isinstance(url, str) else url
    except httpx.InvalidURL as exc:
        raise SourceRefusedError("(invalid URL)", "invalid_url", "the URL cannot be parsed") from exc
    shown = display_url(parsed) if parsed.scheme in _DEFAULT_PORTS else parsed.scheme + ":"
    if parsed.scheme not in _DEFAULT_PORTS or not parsed.host:
        raise SourceRefusedError(shown, "unsupported_scheme", "only http and https URLs with a host are allowed")
    if has_dot_segment(parsed.path):
        raise SourceRefusedError(shown, "dot_segment", "the path contains '.' or '..' segments")
    return parsed


def has_dot_segment(path: str) -> bool:
    """True if any segment, split on / or \\ after percent-decoding, is ``.`` or ``..``."""
    decoded = unquote(path).replace("\\", "/")
    return any(segment in (".", "..") for segment in decoded.split("/"))

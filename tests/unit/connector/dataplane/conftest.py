"""Fixtures for the data-plane unit tests: a signing key, a file root and a DNS stand-in."""

from __future__ import annotations

import socket
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def signing_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture
def file_root(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    root.mkdir()
    return root


def fake_resolver(table: Mapping[str, Sequence[str]]) -> Callable[[str, int], Awaitable[Sequence[str]]]:
    """Resolve names from ``table`` only; anything else fails as an unknown host would."""

    async def resolve(host: str, port: int) -> Sequence[str]:
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, f"unknown host {host}")
        return table[host]

    return resolve


@pytest.fixture
def make_resolver() -> Callable[[Mapping[str, Sequence[str]]], Callable[[str, int], Awaitable[Sequence[str]]]]:
    return fake_resolver

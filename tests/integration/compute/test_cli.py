"""`sovra consent ...` and `sovra subject token ...` against a real `sovra serve` process."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from connector.cli import app
from connector.localnet import ConnectorProcess

B = "did:web:b.example"
PURPOSE = "https://w3id.org/dpv#ServicePersonalisation"


@pytest.fixture
def served(tmp_path: Path) -> Iterator[ConnectorProcess]:
    process = ConnectorProcess("a", tmp_path / "a", extra_args=("--sandbox-backend", "none")).start()
    try:
        yield process
    finally:
        process.stop()


def sovra(process: ConnectorProcess, *args: str) -> object:
    result = CliRunner().invoke(app, [*args, "--url", process.url, "--api-key", process.api_key])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_consent_and_token_commands(served: ConnectorProcess) -> None:
    granted = sovra(served, "consent", "grant", "alice", "--provider", B, "--purpose", PURPOSE)
    assert granted["action"] == "grant" and granted["subject"] == "alice"
    sovra(served, "consent", "grant", "bob", "--provider", B, "--purpose", PURPOSE,
          "--expires", "2099-01-01T00:00:00Z")
    sovra(served, "consent", "revoke", "alice", "--provider", B, "--purpose", PURPOSE)
    status = sovra(served, "consent", "list", "--provider", B)
    assert {(s["subject"], s["granted"]) for s in status} == {("alice", False), ("bob", True)}
    assert len(sovra(served, "consent", "list", "--events")) == 3

    token = sovra(served, "subject", "token", "issue", "bob")["token"]
    mine = httpx.get(served.url + "/api/subject/v1/consents", headers={"Authorization": f"Bearer {token}"})
    assert mine.status_code == 200 and mine.json()["consents"][0]["expiresAt"].startswith("2099-01-01")
    assert sovra(served, "subject", "token", "revoke", "bob")["revoked"] == 1
    again = httpx.get(served.url + "/api/subject/v1/consents", headers={"Authorization": f"Bearer {token}"})
    assert again.status_code == 401


def test_a_bad_request_exits_non_zero_with_the_reason(served: ConnectorProcess) -> None:
    result = CliRunner().invoke(app, ["consent", "grant", "alice", "--provider", B, "--purpose", PURPOSE,
                                      "--expires", "yesterday", "--url", served.url, "--api-key", served.api_key])
    assert result.exit_code == 1
    assert "expiresAt" in result.output

"""`sovra algorithm pack|sign|verify` through typer's runner, with real keys, files and (for did:web) real HTTP."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from compute_to_data.bundle import digest_file
from compute_to_data.manifest import MANIFEST_FILE
from connector.cli import app
from identity.did_web import build_did_document, did_from_url
from identity.keys import load_or_create_signing_key, public_jwk

MANIFEST = {
    "name": "career-match", "version": "1.2.0", "kind": "python", "entrypoint": "main.py", "inputs": ["skills"],
    "outputs": [{"name": "score", "scope": "subject", "schema": {"type": "number"}}],
}
runner = CliRunner()


def algorithm(root: Path) -> Path:
    folder = root / "career-match"
    folder.mkdir()
    (folder / MANIFEST_FILE).write_text(json.dumps(MANIFEST))
    (folder / "main.py").write_text("print('ok')\n")
    return folder


def run(*args: str) -> Any:
    unset: dict[str, str | None] = {f"SOVRA_{name}": None for name in ("DATA_DIR", "PUBLIC_URL", "PARTICIPANT_ID",
                                                                       "PORT")}
    return runner.invoke(app, ["algorithm", *[str(a) for a in args]], env=unset)


def did_document_file(data_dir: Path, public_url: str, out: Path) -> Path:
    key = load_or_create_signing_key(data_dir / "keys" / "connector-key.pem")
    out.write_text(json.dumps(build_did_document(did_from_url(public_url), public_jwk(key),
                                                 service_endpoints={})))
    return out


def test_pack_prints_a_stable_digest(tmp_path: Path) -> None:
    folder = algorithm(tmp_path)
    first = run("pack", folder, "-o", tmp_path / "a.tar.gz")
    second = run("pack", folder, "-o", tmp_path / "b.tar.gz")
    assert first.exit_code == 0, first.output
    assert json.loads(first.stdout)["digest"] == json.loads(second.stdout)["digest"] == digest_file(tmp_path /
                                                                                                    "a.tar.gz")
    default = run("pack", folder)
    assert json.loads(default.stdout)["bundle"] == str(tmp_path / "career-match-1.2.0.tar.gz")


def test_pack_reports_a_bad_manifest(tmp_path: Path) -> None:
    folder = algorithm(tmp_path)
    (folder / MANIFEST_FILE).write_text(json.dumps({**MANIFEST, "kind": "wasm"}))
    result = run("pack", folder)
    assert result.exit_code == 2 and "/kind" in result.output


def test_sign_then_verify_with_a_did_document(tmp_path: Path) -> None:
    folder, data_dir, url = algorithm(tmp_path), tmp_path / "b-data", "https://b.example"
    signed = run("sign", folder, "--data-dir", data_dir, "--public-url", url)
    assert signed.exit_code == 0, signed.output
    facts = json.loads(signed.stdout)
    bundle, envelope = tmp_path / "career-match-1.2.0.tar.gz", tmp_path / "career-match-1.2.0.dsse.json"
    assert facts["bundle"] == str(bundle) and facts["envelope"] == str(envelope)
    assert facts["signer"] == "did:web:b.example" and facts["digest"] == digest_file(bundle)
    key = load_or_create_signing_key(data_dir / "keys" / "connector-key.pem")  # the key sign created is kept
    assert facts["keyId"] == f"did:web:b.example#{key.kid}"

    document = did_document_file(data_dir, url, tmp_path / "did.json")
    verified = run("verify", bundle, "--envelope", envelope, "--did-document", document)
    assert verified.exit_code == 0, verified.output
    assert json.loads(verified.stdout) == {
        "verified": True, "signer": "did:web:b.example", "keyId": facts["keyId"], "digest": facts["digest"],
        "subject": "career-match-1.2.0.tar.gz", "name": "career-match", "version": "1.2.0", "kind": "python"}
    # the default envelope path is the one sign wrote
    assert run("verify", bundle, "--did-document", document).exit_code == 0


def test_sign_an_archive_with_the_participant_id(tmp_path: Path) -> None:
    folder, data_dir = algorithm(tmp_path), tmp_path / "b-data"
    run("pack", folder, "-o", tmp_path / "algo.tar.gz")
    signed = run("sign", tmp_path / "algo.tar.gz", "--data-dir", data_dir, "--participant-id", "did:web:b.example:c2d")
    assert signed.exit_code == 0, signed.output
    assert json.loads(signed.stdout)["signer"] == "did:web:b.example:c2d"
    assert (tmp_path / "algo.dsse.json").is_file()


def test_sign_refuses_an_unsafe_archive(tmp_path: Path) -> None:
    import io
    import tarfile

    bad = tmp_path / "bad.tar.gz"
    with tarfile.open(bad, "w:gz") as tar:
        info = tarfile.TarInfo("../escape.py")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    result = run("sign", bad, "--data-dir", tmp_path / "d")
    assert result.exit_code == 2 and "'..'" in result.output
    assert not (tmp_path / "bad.dsse.json").exists()


def test_verify_names_the_failed_check(tmp_path: Path) -> None:
    folder, data_dir, url = algorithm(tmp_path), tmp_path / "b-data", "https://b.example"
    run("sign", folder, "--data-dir", data_dir, "--public-url", url)
    bundle, envelope = tmp_path / "career-match-1.2.0.tar.gz", tmp_path / "career-match-1.2.0.dsse.json"
    document = did_document_file(data_dir, url, tmp_path / "did.json")

    tampered = tmp_path / "tampered.tar.gz"
    raw = bytearray(bundle.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    tampered.write_bytes(bytes(raw))
    result = run("verify", tampered, "--envelope", envelope, "--did-document", document)
    assert result.exit_code == 1 and "check 'digest'" in result.output
    answer = json.loads(result.stdout)
    assert answer["verified"] is False and answer["check"] == "digest" and "differs" in answer["reason"]

    other = did_document_file(tmp_path / "other-data", url, tmp_path / "other-did.json")  # same DID, other key
    result = run("verify", bundle, "--envelope", envelope, "--did-document", other)
    assert result.exit_code == 1 and "check 'signer'" in result.output

    unsigned = tmp_path / "unsigned.dsse.json"
    unsigned.write_text(json.dumps({**json.loads(envelope.read_text()), "signatures": []}))
    result = run("verify", bundle, "--envelope", unsigned, "--did-document", document)
    assert result.exit_code == 1 and "check 'signature'" in result.output

    garbage = tmp_path / "garbage.dsse.json"
    garbage.write_text("{")
    result = run("verify", bundle, "--envelope", garbage, "--did-document", document)
    assert result.exit_code == 1 and "check 'envelope'" in result.output

    assert run("verify", bundle, "--envelope", tmp_path / "missing.json").exit_code == 2


@pytest.fixture
def did_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A loopback HTTP server serving one did.json, as a connector started with --dev would."""
    served: dict[str, bytes] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            body = served.get(self.path)
            self.send_response(200 if body else 404)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body or b"{}")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    data_dir = tmp_path / "b-data"
    served["/.well-known/did.json"] = did_document_file(data_dir, url, tmp_path / "served.json").read_bytes()
    try:
        yield url, data_dir
    finally:
        server.shutdown()
        server.server_close()


def test_verify_resolves_did_web_over_http(tmp_path: Path, did_server: tuple[str, Path]) -> None:
    url, data_dir = did_server
    folder = algorithm(tmp_path)
    assert run("sign", folder, "--data-dir", data_dir, "--public-url", url).exit_code == 0
    bundle = tmp_path / "career-match-1.2.0.tar.gz"
    verified = run("verify", bundle, "--dev")
    assert verified.exit_code == 0, verified.output
    assert json.loads(verified.stdout)["signer"] == did_from_url(url)
    # without --dev the resolver insists on https and cannot reach the signer
    refused = run("verify", bundle)
    assert refused.exit_code == 1 and "check 'signer'" in refused.output

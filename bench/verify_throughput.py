"""Measure algorithm verification throughput against raw hashlib SHA-256 on the same 200 MB artifact.

Verification is what the data provider does before anything runs: `bundle.digest_file` over the artifact, then
`signing.verify_artifact` (DSSE envelope shape, ECDSA P-256 signature over PAE, signer key from the DID document,
SLSA provenance, subject digest equal). The baseline is `hashlib.sha256` fed the same file in 1 MiB reads, the
least any verifier must do. Both read the file from the page cache (it was just written), best of N runs each.

Run: `.venv/bin/python bench/verify_throughput.py [--mb 200] [--runs 5] [--out PATH]`. Prints one JSON line and
writes JSON (default bench/results/verify-throughput.json). Exit status 1 means the ratio is below 0.8.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import ssl
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from compute_to_data.bundle import digest_file
from compute_to_data.signing import bundle_statement, sign_statement, verify_artifact
from identity.did_web import build_did_document
from identity.keys import generate_signing_key, public_jwk

SIGNER = "did:web:ai-provider.example"
TARGET_RATIO = 0.8
READ = 1 << 20


def raw_sha256(path: Path) -> str:
    hasher = hashlib.sha256()
    with path.open("rb") as stream:
        while block := stream.read(READ):
            hasher.update(block)
    return "sha256:" + hasher.hexdigest()


def best_seconds(fn: Callable[[], object], runs: int) -> float:
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def write_artifact(path: Path, megabytes: int) -> None:
    """`megabytes` x 10^6 random bytes (every MiB block starts differently, so no two blocks are equal)."""
    block, left, i = os.urandom(READ), megabytes * 1_000_000, 0
    with path.open("wb") as out:
        while left > 0:
            chunk = (hashlib.sha256(i.to_bytes(8, "big")).digest() + block[32:])[:left]
            out.write(chunk)
            left, i = left - len(chunk), i + 1


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=int, default=200)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--out", default="bench/results/verify-throughput.json")
    args = parser.parse_args()

    key = generate_signing_key()
    document = build_did_document(SIGNER, public_jwk(key), service_endpoints={})
    with tempfile.TemporaryDirectory(prefix="sovra-verify-bench-") as scratch:
        artifact = Path(scratch) / "algorithm.tar.gz"
        write_artifact(artifact, args.mb)
        digest = raw_sha256(artifact)
        now = datetime.now(UTC).isoformat()
        envelope = sign_statement(bundle_statement(artifact.name, digest, {"name": "bench", "version": "1",
                                                                          "kind": "python"}, SIGNER,
                                                   started=now, finished=now), key, SIGNER)
        envelope = json.loads(json.dumps(envelope))  # as read from the wire

        def verify() -> None:
            verified = verify_artifact(envelope, digest_file(artifact), lambda did: document)
            assert verified.digest == digest

        verify()  # warm: page cache and imports
        raw = best_seconds(lambda: raw_sha256(artifact), args.runs)
        full = best_seconds(verify, args.runs)
        size_mb = artifact.stat().st_size / 1e6

    result = {
        "benchmark": "verify_throughput",
        "python": platform.python_version(), "machine": platform.machine(), "cpus": os.cpu_count(),
        "openssl": ssl.OPENSSL_VERSION,
        "artifact_mb": round(size_mb, 1), "runs": args.runs,
        "raw_sha256_mb_per_s": round(size_mb / raw, 1),
        "verify_mb_per_s": round(size_mb / full, 1),
        "ratio": round(raw / full, 3),
        "raw_seconds": round(raw, 4), "verify_seconds": round(full, 4),
        "target_ratio": TARGET_RATIO,
    }
    print(json.dumps(result))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0 if result["ratio"] >= TARGET_RATIO else 1


if __name__ == "__main__":
    sys.exit(main())

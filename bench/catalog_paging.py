"""Benchmark (c): DSP catalog requests against 10,000 assets, page size 100: p50 and p99 per page.

    .venv/bin/python bench/catalog_paging.py [--assets 10000] [--requests 300]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import create_engine, insert  # noqa: E402

from connector.localnet import ConnectorProcess  # noqa: E402
from connector.persistence.tables import AssetRow, ContractDefinitionRow, PolicyDefinitionRow  # noqa: E402
from identity.keys import load_or_create_signing_key  # noqa: E402
from identity.tokens import issue_token  # noqa: E402

REQUEST = {"@context": ["https://w3id.org/dspace/2025/1/context.jsonld"], "@type": "CatalogRequestMessage"}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--assets", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--page-size", type=int, default=100)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "catalog_paging.json"))
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="sovra-bench-catalog-"))
    provider = ConnectorProcess("provider", workdir / "provider")
    consumer = ConnectorProcess("consumer", workdir / "consumer")
    try:
        provider.start()
        consumer.start()
        provider.stop()
        seed(provider, args.assets)
        provider.start()
        key = load_or_create_signing_key(consumer.data_dir / "keys" / "connector-key.pem")
        client = httpx.Client(timeout=30)
        timings: list[float] = []
        url = f"{provider.dsp_url}/catalog/request?pageSize={args.page_size}"
        pages = 0
        for _ in range(args.requests):
            token = issue_token(key, issuer=consumer.did, audience=provider.did, now=datetime.now(UTC))
            started = time.perf_counter()
            response = client.post(url, json=REQUEST, headers={"Authorization": f"Bearer {token}"})
            timings.append(time.perf_counter() - started)
            response.raise_for_status()
            if len(response.json().get("dataset", [])) != args.page_size:
                raise RuntimeError(f"page had {len(response.json().get('dataset', []))} datasets")
            pages += 1
            nxt = response.links.get("next")
            url = nxt["url"] if nxt else f"{provider.dsp_url}/catalog/request?pageSize={args.page_size}"
        timings.sort()
        result = {"assets": args.assets, "page_size": args.page_size, "requests": len(timings),
                  "p50_ms": statistics.median(timings) * 1000,
                  "p99_ms": timings[int(len(timings) * 0.99) - 1] * 1000, "max_ms": timings[-1] * 1000}
        print(f"catalog page of {args.page_size} over {args.assets} assets: p50 {result['p50_ms']:.1f} ms, "
              f"p99 {result['p99_ms']:.1f} ms, max {result['max_ms']:.1f} ms ({len(timings)} requests)")
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=2))
    finally:
        provider.stop()
        consumer.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def seed(provider: ConnectorProcess, count: int) -> None:
    """Bulk-insert assets straight into the provider's database (10,000 API calls would time the API instead)."""
    engine = create_engine(f"sqlite:///{provider.data_dir.resolve() / 'sovra.db'}")
    now = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(insert(PolicyDefinitionRow), [{"id": "all", "policy": {"permission": [{"action": "use"}]},
                                                     "private_properties": {}, "created_at": now}])
        conn.execute(insert(ContractDefinitionRow), [{"id": "cd", "access_policy_id": "all",
                                                       "contract_policy_id": "all", "assets_selector": [],
                                                       "auto_agree": True, "created_at": now}])
        conn.execute(insert(AssetRow), [{
            "id": f"asset-{i:06d}", "properties": {"name": f"Dataset {i}", "description": "benchmark asset"},
            "private_properties": {}, "data_address": {"type": "File", "path": f"/data/{i}"}, "created_at": now}
            for i in range(count)])
    engine.dispose()


if __name__ == "__main__":
    main()

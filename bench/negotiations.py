"""Benchmark (a): N concurrent negotiations to FINALIZED between two real connectors on loopback.

Beside it, in the same run, a bare-HTTP baseline: a trivial ASGI app on uvicorn answering the same number of
POST round trips (5 per negotiation: one management call and four DSP messages) from the same number of
concurrent clients. The ratio says how much of the raw HTTP bound the protocol machinery keeps.

Both measurements swing with what else the host runs (this 2-core VM loses up to a sixth of its CPU to its
neighbours at times), so each backend takes `--rounds` pairs, baseline then burst, back to back, and reports the
median ratio beside every pair's.

    .venv/bin/python bench/negotiations.py --n 50 [--rounds 5] [--postgres URL]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from connector.localnet import ConnectorProcess, free_port  # noqa: E402

ROUND_TRIPS_PER_NEGOTIATION = 5
BARE_APP = '''
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": b"{}"})
'''


def bare_http(n: int, workdir: Path, repeats: int = 3) -> float:
    """Seconds for n * 5 POSTs with n concurrent clients against a trivial uvicorn app: the median of `repeats`
    passes after one untimed pass that opens the connections. One pass lasts a few tenths of a second, short
    enough for a neighbour's burst on this shared VM to halve or double it."""
    (workdir / "bare_app.py").write_text(BARE_APP)
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "uvicorn", "bare_app:app", "--port", str(port),
                               "--log-level", "warning"], cwd=workdir)
    try:
        url = f"http://127.0.0.1:{port}/"
        for _ in range(100):
            try:
                httpx.get(url, timeout=0.5)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        client = httpx.Client(timeout=30, limits=httpx.Limits(max_connections=n + 8))
        body = {"@context": ["https://w3id.org/dspace/2025/1/context.jsonld"], "@type": "ContractRequestMessage"}

        def one(_: int) -> None:
            for _ in range(ROUND_TRIPS_PER_NEGOTIATION):
                client.post(url, json=body).raise_for_status()

        with ThreadPoolExecutor(n) as pool:
            list(pool.map(one, range(n)))
            passes = []
            for _ in range(repeats):
                started = time.perf_counter()
                list(pool.map(one, range(n)))
                passes.append(time.perf_counter() - started)
        return statistics.median(passes)
    finally:
        server.terminate()
        server.wait(10)


class Pair:
    """A provider and a consumer on loopback, with one contract definition the consumer negotiates for."""

    def __init__(self, n: int, workdir: Path, database_urls: tuple[str | None, str | None]) -> None:
        self.provider = ConnectorProcess("provider", workdir / "provider", database_url=database_urls[0])
        self.consumer = ConnectorProcess("consumer", workdir / "consumer", database_url=database_urls[1])
        try:
            self._start(n)
        except BaseException:
            self.provider.stop()
            self.consumer.stop()
            raise

    def _start(self, n: int) -> None:
        provider, consumer = self.provider, self.consumer
        provider.start()
        consumer.start()
        p, c = provider.management(), consumer.management()
        p.ok(p.post("/v3/assets", {"@id": "bench", "properties": {},
                                   "dataAddress": {"type": "File", "path": str(provider.file_root / "x")}}))
        p.ok(p.post("/v3/policydefinitions", {"@id": "all", "policy": {"permission": [{"action": "use"}]}}))
        p.ok(p.post("/v3/contractdefinitions", {"@id": "cd", "accessPolicyId": "all", "contractPolicyId": "all",
                                                "assetsSelector": []}))
        catalog: Any = c.ok(c.post("/v3/catalog/request", {"counterPartyAddress": provider.dsp_url,
                                                           "counterPartyId": provider.did}))
        offer = {**catalog["dataset"][0]["hasPolicy"][0], "target": "bench", "assigner": provider.did}
        self.request = {"counterPartyAddress": provider.dsp_url, "counterPartyId": provider.did, "policy": offer}
        self.client = httpx.Client(base_url=consumer.url + "/api/management", headers={"X-Api-Key": consumer.api_key},
                                   timeout=60, limits=httpx.Limits(max_connections=n + 8))
        warm_up(self.client, self.request, consumer)
        self.burst(n)  # untimed, as the baseline's first pass: it opens the pools' connections

    def burst(self, n: int) -> dict[str, Any]:
        """Start n negotiations at once; seconds until the last is FINALIZED (from the rows' own timestamps)."""
        client, request = self.client, self.request
        started = time.time()
        with ThreadPoolExecutor(n) as pool:
            ids = list(pool.map(lambda _: client.post("/v3/contractnegotiations", json=request).json()["@id"],
                                range(n)))
        finished: dict[str, float] = {}
        pending = set(ids)
        deadline = time.monotonic() + 300
        while pending and time.monotonic() < deadline:
            # The finish time comes from the row's stateTimestamp, so polling can be sparse; each poll costs the
            # consumer a management query (4-16 ms of CPU for 10-200 ids), which the protocol should not pay for.
            time.sleep(1.0)
            # Ask only for this burst's negotiations that have ended: listing every row of every earlier round
            # would load the consumer more with each round, and that cost is the benchmark's, not the protocol's.
            rows = client.post("/v3/contractnegotiations/request", json={"limit": len(pending), "filterExpression": [
                {"operandLeft": "id", "operator": "in", "operandRight": sorted(pending)},
                {"operandLeft": "state", "operator": "in", "operandRight": ["FINALIZED", "TERMINATED"]}]}).json()
            for row in rows:
                if row["@id"] in pending and row["state"] in ("FINALIZED", "TERMINATED"):
                    finished[row["@id"]] = row["stateTimestamp"] / 1000 - started
                    pending.discard(row["@id"])
                    if row["state"] != "FINALIZED":
                        raise RuntimeError(f"negotiation {row['@id']} ended {row['state']}: {row.get('errorDetail')}")
        if pending:
            raise RuntimeError(f"{len(pending)} negotiations did not finish")
        total = max(finished.values())
        latencies = sorted(finished.values())
        return {"seconds": total, "per_second": n / total, "p50_latency_s": statistics.median(latencies)}

    def close(self) -> None:
        self.client.close()
        self.provider.stop()
        self.consumer.stop()


def warm_up(client: httpx.Client, request: dict[str, Any], consumer: ConnectorProcess, rounds: int = 5) -> None:
    """Measure steady state: FastAPI builds each route lazily on first use, and the DID cache is cold. (A burst
    follows, as the baseline's untimed pass, to open the database pools' connections: on PostgreSQL each new one
    is a server process of its own, and each statement is prepared on it on its second run.)"""
    m = consumer.management()
    for _ in range(rounds):
        negotiation_id = client.post("/v3/contractnegotiations", json=request).json()["@id"]
        m.wait_state(f"/v3/contractnegotiations/{negotiation_id}", {"FINALIZED"})
    m.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=5, help="baseline and burst pairs per backend")
    parser.add_argument("--postgres", help="admin URL; two fresh databases are created on it")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "negotiations.json"))
    args = parser.parse_args()
    results: dict[str, Any] = {"n": args.n}
    workdir = Path(tempfile.mkdtemp(prefix="sovra-bench-"))
    created: list[str] = []
    try:
        backends: list[tuple[str, tuple[str | None, str | None]]] = [("sqlite", (None, None))]
        if args.postgres:
            urls = _pg_databases(args.postgres)
            created.extend(urls)
            backends.append(("postgresql", urls))
        for name, urls in backends:
            pair = Pair(args.n, workdir / name, urls)
            rounds = []
            try:
                for _ in range(args.rounds):
                    bare = bare_http(args.n, workdir)
                    run = pair.burst(args.n)
                    bound = args.n / bare
                    rounds.append({**run, "bare_http_seconds": bare, "bare_http_negotiations_per_second": bound,
                                   "ratio_to_bare_http": run["per_second"] / bound})
                    print(f"{name:10s} {args.n} negotiations in {run['seconds']:.2f} s = {run['per_second']:.1f}/s "
                          f"(p50 latency {run['p50_latency_s']:.2f} s); bare HTTP {args.n * 5} round trips in "
                          f"{bare:.2f} s = {bound:.1f} negotiations/s; ratio {rounds[-1]['ratio_to_bare_http']:.1%}")
            finally:
                pair.close()
            median = {key: statistics.median(r[key] for r in rounds) for key in rounds[0]}
            results[name] = {**median, "rounds": rounds}
            print(f"{name:10s} median of {len(rounds)}: {median['per_second']:.1f} negotiations/s, bare HTTP "
                  f"{median['bare_http_negotiations_per_second']:.1f}/s, ratio {median['ratio_to_bare_http']:.1%} "
                  f"(each: {', '.join(format(r['ratio_to_bare_http'], '.1%') for r in rounds)})")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        if created:
            _drop_databases(args.postgres, created)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2))


def _pg_databases(admin_url: str) -> tuple[str, str]:
    import uuid

    names = [f"sovra_bench_{uuid.uuid4().hex[:8]}" for _ in range(2)]
    with _admin_connection(admin_url) as conn:
        for name in names:
            conn.execute(f'CREATE DATABASE "{name}"')
    admin = make_url(admin_url)
    return tuple(admin.set(drivername="postgresql+psycopg", database=n).render_as_string(hide_password=False)
                 for n in names)  # type: ignore[return-value]


def _drop_databases(admin_url: str, urls: list[str]) -> None:
    """Drop what the run created: databases left behind pile up run after run, and the server's autovacuum
    launcher visits each of them in turn (with 80 of them, a worker start about every second), which loaded the
    very machine later runs measured."""
    with _admin_connection(admin_url) as conn:
        for url in urls:
            conn.execute(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)')


def _admin_connection(admin_url: str) -> Any:
    import psycopg

    dsn = make_url(admin_url).set(drivername="postgresql").render_as_string(hide_password=False)
    return psycopg.connect(dsn, autocommit=True)


if __name__ == "__main__":
    threading.excepthook = lambda args: None
    main()

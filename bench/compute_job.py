"""Benchmark: a compute-to-data job end to end against running the same ONNX model directly, in the same run.

    .venv/bin/python bench/compute_job.py [--rows 10000] [--repeat 9] [--pause 1] [--sustained 12] [--no-docker]

Two real `sovra serve` processes on loopback (SQLite). B publishes the demo's career-matching ONNX model (signed
with `sovra algorithm sign`); A publishes --rows student records with a compute-only offer and imports a consent
for each; B negotiates once. One warm-up job lets A fetch and cache the algorithm (its one negotiation with B).

- "job": wall time from B's POST /v3/computejobs to RELEASED at B (B's createdAt -> finishedAt: the DSP request,
  A's whole pipeline -- algorithm check, policy, consent selection, sandbox run, release gate, ledger, receipt --,
  A's TransferStart, B's pull of the release document and its receipt check). Best and median of --repeat.
- "direct": the same model on the same records in a fresh `python` process with no connector and no sandbox
  (compute_to_data/runtime/onnx_runner.py on host directories): interpreter start, imports, model load, inference,
  results written. Measured interleaved with the jobs, best and median of --repeat.
- Each measurement (direct run or job) starts --pause seconds after the previous one ended, so that neither runs
  while the other's leftovers still use the machine (A starts its next pre-started sandbox when it goes idle).
- "sustained": --sustained jobs submitted at once; jobs per minute from the first submission to the last release.

Each backend (bubblewrap, then docker unless --no-docker) gets its own pair of connectors. Results go to
bench/results/compute-job.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from compute_to_data.bundle import unpack  # noqa: E402
from connector import demo_student as S  # noqa: E402
from connector.localnet import ConnectorProcess, ManagementClient  # noqa: E402

C2D = "https://w3id.org/sovra/c2d/v1#"
PURPOSE = "https://w3id.org/dpv#ResearchAndDevelopment"
RUNNER = Path(__file__).resolve().parent.parent / "compute_to_data" / "runtime" / "onnx_runner.py"
FINAL = {"RELEASED", "REJECTED", "FAILED"}


def students(rows: int) -> list[dict[str, Any]]:
    rng = random.Random(11)
    return [{"subject": f"S-{i:06d}", **{s: round(rng.random(), 3) for s in S.SKILLS}} for i in range(rows)]


def policy(ai_did: str) -> dict[str, Any]:
    return {"@type": "Set", "profile": "https://w3id.org/sovra/c2d/v1", "permission": [{
        "action": "c2d:compute", "constraint": [{"and": [
            {"leftOperand": "c2d:algorithmSigner", "operator": "isAnyOf", "rightOperand": [ai_did]},
            {"leftOperand": "c2d:dpEpsilon", "operator": "lteq", "rightOperand": "1.0"},
            {"leftOperand": "c2d:minAggregationSize", "operator": "gteq", "rightOperand": "2"},
            {"leftOperand": "c2d:consentRequired", "operator": "eq", "rightOperand": "true"},
            {"leftOperand": "purpose", "operator": "isA", "rightOperand": PURPOSE},
        ]}]}]}


def set_up(root: Path, rows: list[dict[str, Any]], backend: str) -> tuple[ConnectorProcess, ConnectorProcess, str]:
    school = ConnectorProcess("school", root / "school", extra_args=("--sandbox-backend", backend))
    ai = ConnectorProcess("ai", root / "ai")
    school.start()
    ai.start()
    a, b = school.management(), ai.management()
    signed = S.build_signed_bundle(root / "build", ai.file_root / "src", data_dir=ai.data_dir, public_url=ai.url)
    b.ok(b.post("/v3/algorithms", {"@id": "career-match", "archive": signed["bundle"],
                                   "envelope": signed["envelope"]}))
    b.ok(b.post("/v3/policydefinitions", {"@id": "use", "policy": {"@type": "Set", "permission": [{"action": "use"}],
                                                                   "prohibition": [{"action": "distribute"}]}}))
    b.ok(b.post("/v3/contractdefinitions", {"@id": "alg", "accessPolicyId": "use", "contractPolicyId": "use",
                                            "assetsSelector": []}))
    path = school.file_root / "students.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    a.ok(a.post("/v3/assets", {"@id": "skills", "properties": {C2D + "subjectField": "subject",
                                                                C2D + "epsilonBudget": 1_000_000},
                               "dataAddress": {"type": "File", "path": str(path)}}))
    a.ok(a.post("/v3/policydefinitions", {"@id": "compute", "policy": policy(ai.did)}))
    a.ok(a.post("/v3/policydefinitions", {"@id": "open", "policy": {"@type": "Set",
                                                                    "permission": [{"action": "use"}]}}))
    a.ok(a.post("/v3/contractdefinitions", {"@id": "cd", "accessPolicyId": "open", "contractPolicyId": "compute",
                                            "assetsSelector": []}))
    for start in range(0, len(rows), 10_000):
        a.ok(a.post("/v3/consents/import", {"events": [
            {"subject": r["subject"], "provider": ai.did, "purpose": PURPOSE, "action": "grant"}
            for r in rows[start:start + 10_000]]}))
    catalog: Any = b.ok(b.post("/v3/catalog/request", {"counterPartyAddress": school.dsp_url,
                                                       "counterPartyId": school.did}))
    offer = next(d for d in catalog["dataset"] if d["@id"] == "skills")["hasPolicy"][0]
    negotiation: Any = b.ok(b.post("/v3/contractnegotiations", {
        "counterPartyAddress": school.dsp_url, "counterPartyId": school.did,
        "requestContext": {"purpose": PURPOSE, "algorithmSigner": ai.did, "dpEpsilon": 0.5,
                           "minAggregationSize": 2},
        "policy": {**offer, "target": "skills", "assigner": school.did}}))
    final = b.wait_state(f"/v3/contractnegotiations/{negotiation['@id']}", {"FINALIZED", "TERMINATED"})
    if final["state"] != "FINALIZED":
        raise RuntimeError(f"negotiation ended {final['state']}: {final.get('errorDetail')}")
    a.close()
    b.close()
    return school, ai, str(final["contractAgreementId"])


def submit(b: ManagementClient, school: ConnectorProcess, agreement_id: str) -> str:
    created: Any = b.ok(b.post("/v3/computejobs", {
        "agreementId": agreement_id, "counterPartyAddress": school.dsp_url, "algorithm": "career-match",
        "parameters": {"dpEpsilon": 0.5, "minAggregationSize": 2}}))
    return str(created["@id"])


def wait_released(b: ManagementClient, job_ids: list[str], timeout: float = 600) -> list[dict[str, Any]]:
    """Poll B's job list (no DSP refresh) until every job is final; the times come from the rows, not the polls.
    Only the newest rows are listed (ours are the newest): the harness should not load the connectors it times."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows: Any = b.ok(b.get(f"/v3/computejobs?role=requester&limit={len(job_ids) + 4}"))
        done = {r["@id"]: r for r in rows if r["@id"] in job_ids and r["state"] in FINAL}
        if len(done) == len(job_ids):
            bad = [r for r in done.values() if r["state"] != "RELEASED"]
            if bad:
                raise RuntimeError(f"job {bad[0]['@id']} ended {bad[0]['state']}: {bad[0].get('reason')}")
            return [done[j] for j in job_ids]
        time.sleep(0.05)
    raise TimeoutError("jobs did not finish")


def seconds(job: dict[str, Any]) -> float:
    return (datetime.fromisoformat(job["finishedAt"]) - datetime.fromisoformat(job["createdAt"])).total_seconds()


def direct_run(algorithm: Path, rows: list[dict[str, Any]], work: Path) -> float:
    """The same runner, model and records in a fresh interpreter on host directories: what a job does, bare."""
    input_dir, output_dir = work / "input", work / "output"
    shutil.rmtree(work, ignore_errors=True)
    input_dir.mkdir(parents=True)
    output_dir.mkdir()
    with (input_dir / "records.jsonl").open("w") as fh:
        for i, r in enumerate(rows, 1):
            fh.write(json.dumps({"_record": f"r{i}", **{s: r[s] for s in S.SKILLS}}) + "\n")
    env = {**os.environ, "SOVRA_ALGORITHM_DIR": str(algorithm), "SOVRA_INPUT_DIR": str(input_dir),
           "SOVRA_OUTPUT_DIR": str(output_dir)}
    started = time.perf_counter()
    subprocess.run([sys.executable, str(RUNNER)], env=env, check=True, capture_output=True)
    elapsed = time.perf_counter() - started
    lines = (output_dir / "results.jsonl").read_text().count("\n")
    if lines != len(rows):
        raise RuntimeError(f"the direct run wrote {lines} results for {len(rows)} records")
    return elapsed


def measure(backend: str, rows: list[dict[str, Any]], repeat: int, sustained: int, root: Path,
            pause: float = 1.0) -> dict[str, Any]:
    school, ai, agreement_id = set_up(root / backend, rows, backend)
    b = ai.management()
    try:
        algorithm = root / backend / "algorithm"
        algorithm.mkdir()
        unpack(next((ai.file_root / "src").glob("*.tar.gz")), algorithm)
        warm = wait_released(b, [submit(b, school, agreement_id)])[0]
        jobs, direct = [], []
        for _ in range(repeat):  # interleaved, so drift in the machine's load hits both alike
            time.sleep(pause)
            direct.append(direct_run(algorithm, rows, root / backend / "direct"))
            time.sleep(pause)
            jobs.append(seconds(wait_released(b, [submit(b, school, agreement_id)])[0]))
        started = time.time()
        batch = wait_released(b, [submit(b, school, agreement_id) for _ in range(sustained)])
        span = max(datetime.fromisoformat(j["finishedAt"]).timestamp() for j in batch) - started
        return {
            "backend": backend, "records": warm["recordCount"], "warmup_job_s": seconds(warm),
            "job_s": {"best": min(jobs), "median": statistics.median(jobs), "all": jobs},
            "direct_s": {"best": min(direct), "median": statistics.median(direct), "all": direct},
            "ratio_best": min(jobs) / min(direct), "ratio_median": statistics.median(jobs) / statistics.median(direct),
            "sustained": {"jobs": sustained, "seconds": span, "jobs_per_minute": sustained / span * 60},
        }
    finally:
        b.close()
        school.stop()
        ai.stop()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--pause", type=float, default=1.0)
    parser.add_argument("--sustained", type=int, default=12)
    parser.add_argument("--no-docker", action="store_true")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "compute-job.json"))
    args = parser.parse_args()
    rows = students(args.rows)
    root = Path(tempfile.mkdtemp(prefix="sovra-bench-c2d-"))
    results: dict[str, Any] = {"rows": args.rows, "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
                               "date": datetime.now(UTC).isoformat(timespec="seconds"), "backends": []}
    try:
        for backend in ("bubblewrap",) + (() if args.no_docker else ("docker",)):
            run = measure(backend, rows, args.repeat, args.sustained, root, args.pause)
            results["backends"].append(run)
            print(f"{backend:10s} job {run['job_s']['best']:.3f} s best / {run['job_s']['median']:.3f} s median; "
                  f"direct {run['direct_s']['best']:.3f} s / {run['direct_s']['median']:.3f} s; ratio "
                  f"{run['ratio_best']:.2f}x best, {run['ratio_median']:.2f}x median; sustained "
                  f"{run['sustained']['jobs_per_minute']:.1f} jobs/min", flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

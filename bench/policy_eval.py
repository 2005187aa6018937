"""Measure the ODRL engine: compiled evaluation throughput, parse and compile cost, and evaluating from JSON-LD.

The policy is a permission on `use` with five constraints (dateTime window as two constraints, purpose isA over
the DPV hierarchy, membership claim, count). It times, on one core:

- compiled `decide` (yes/no) and compiled `evaluate` (with the full compliance report);
- parse of the DSP compact shape (fast path, no pyld) and of the same policy under a JSON-LD context (pyld
  expansion through the connector's static loader), and compile;
- evaluating straight from the expanded JSON-LD graph: build the model from the expanded graph, compile and
  decide for every request (what an engine without a compile step pays per evaluation).

Run: `.venv/bin/python bench/policy_eval.py [--out PATH] [--seconds S]`. Prints a table and writes JSON (default
bench/results/policy_eval.json). Exit status 1 means compiled decide ran below 100,000 evaluations per second.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

from connector.protocol.jsonld import load_document
from policies import C2D_CONTEXT, Request, State, compile_policy, parse
from policies.parse import build, expand_jsonld

POLICY: dict[str, Any] = {
    "@id": "urn:uuid:bench-policy", "@type": "Offer",
    "permission": [{"action": "use", "constraint": [
        {"leftOperand": "dateTime", "operator": "gteq", "rightOperand": "2026-01-01T00:00:00Z"},
        {"leftOperand": "dateTime", "operator": "lt", "rightOperand": "2027-01-01T00:00:00Z"},
        {"leftOperand": "purpose", "operator": "isA", "rightOperand": "dpv:ResearchAndDevelopment"},
        {"leftOperand": "participant:membership", "operator": "eq", "rightOperand": "active"},
        {"leftOperand": "count", "operator": "lteq", "rightOperand": 100},
    ]}],
}
JSONLD_POLICY = {**POLICY, "@context": ["http://www.w3.org/ns/odrl.jsonld", C2D_CONTEXT],
                 "permission": [{"action": "use", "constraint": [
                     {**c, "leftOperand": c["leftOperand"].replace("participant:", "")}
                     for c in POLICY["permission"][0]["constraint"]]}]}
REQUEST = Request(action="http://www.w3.org/ns/odrl/2/read", assignee="did:web:consumer",
                  context={"purpose": "https://w3id.org/dpv#AcademicResearch"})
STATE = State(now=datetime(2026, 6, 1, tzinfo=UTC), use_count=7, claims={"membership": "active"})


def rate(fn: Callable[[], Any], seconds: float) -> tuple[float, int]:
    """Calls per second of `fn`, timed in batches until `seconds` have passed."""
    batch, calls, start = 1, 0, time.perf_counter()
    while True:
        for _ in range(batch):
            fn()
        calls += batch
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return calls / elapsed, calls
        batch = min(batch * 2, 65536)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default="bench/results/policy_eval.json")
    parser.add_argument("--seconds", type=float, default=2.0)
    args = parser.parse_args()

    parsed = parse(POLICY)
    compiled = compile_policy(parsed)
    assert compiled.decide(REQUEST, STATE) and compiled.evaluate(REQUEST, STATE).permitted
    jsonld_compiled = compile_policy(parse(JSONLD_POLICY, document_loader=load_document))
    assert jsonld_compiled.decide(REQUEST, STATE)
    expanded = expand_jsonld(JSONLD_POLICY, load_document)

    figures: dict[str, tuple[float, int]] = {
        "compiled_decide": rate(lambda: compiled.decide(REQUEST, STATE), args.seconds),
        "compiled_evaluate_with_report": rate(lambda: compiled.evaluate(REQUEST, STATE), args.seconds),
        "parse_dsp_compact": rate(lambda: parse(POLICY), args.seconds),
        "parse_jsonld_pyld": rate(lambda: parse(JSONLD_POLICY, document_loader=load_document), args.seconds),
        "compile": rate(lambda: compile_policy(parsed), args.seconds),
        "from_expanded_graph_per_request": rate(lambda: compile_policy(build(expanded)).decide(REQUEST, STATE),
                                                args.seconds),
    }
    compile_only_us = 1e6 / figures["compile"][0]
    result = {
        "benchmark": "policy_eval",
        "python": platform.python_version(), "machine": platform.machine(), "processor": platform.processor(),
        "pyld": version("pyld"),
        "constraints": 5,
        "per_second": {k: round(v[0]) for k, v in figures.items()},
        "microseconds": {k: round(1e6 / v[0], 3) for k, v in figures.items()},
        "compile_only_microseconds": round(compile_only_us, 3),
        "speedup_compiled_over_expanded_graph": round(figures["compiled_decide"][0]
                                                      / figures["from_expanded_graph_per_request"][0], 1),
        "target_decide_per_second": 100_000,
    }
    print(f"{'measurement':40} {'per second':>14} {'µs each':>10}")
    for key, (per_second, _) in figures.items():
        print(f"{key:40} {per_second:14,.0f} {1e6 / per_second:10.2f}")
    print(f"compile only (µs): {compile_only_us:.1f}; compiled decide is "
          f"{result['speedup_compiled_over_expanded_graph']}x evaluating from the expanded graph")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0 if figures["compiled_decide"][0] >= 100_000 else 1


if __name__ == "__main__":
    sys.exit(main())

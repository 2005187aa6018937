"""Measure what the DSP fast path of `to_dsp_shape` saves over JSON-LD processing with pyld.

For five representative DSP 2025-1 messages, each already in the DSP shape, it times:

- fast path: `to_dsp_shape(message)` with `@context: [DSP context]` (no pyld at all);
- pyld: `compact(expand(message), DSP context)` with the bundled contexts and a warm context cache, which is
  what a connector that always runs the messages through JSON-LD pays;
- slow path: `to_dsp_shape` on the same message with one extra inline context, so it takes the pyld route
  (expand + compact + normalisation);
- fast path + validation: `to_dsp_shape` then `validate_message`, the whole cost of the protocol edge for a
  well-formed message (for context; not part of the ratio).

Run: `.venv/bin/python bench/jsonld_fastpath.py [--out PATH] [--seconds S]`. It prints a table and writes the
figures as JSON (default bench/results/jsonld_fastpath.json). Exit status 1 means the fast path was less than
50 times faster than pyld for some message.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
from typing import Any

from connector.protocol.jsonld import DSP_CONTEXT, compact, expand, to_dsp_shape
from connector.protocol.schemas import validate_message

TARGET_RATIO = 50.0
DEFAULT_OUT = Path("bench/results/jsonld_fastpath.json")

_CONSUMER_PID = "urn:uuid:32541fe6-c580-409e-85a8-8a9a32fbe833"
_PROVIDER_PID = "urn:uuid:a343fcbf-99fc-4ce8-8e9b-148c97605aab"
_SERVICE_ID = "urn:uuid:4aa2dcc8-4d2d-569e-d634-8394a8834d77"


def _constraint(left: str, operator: str, right: str) -> dict[str, str]:
    return {"leftOperand": left, "operator": operator, "rightOperand": right}


def contract_request_message() -> dict[str, Any]:
    return {
        "@context": [DSP_CONTEXT],
        "@type": "ContractRequestMessage",
        "consumerPid": _CONSUMER_PID,
        "callbackAddress": "https://consumer.example/dsp/callback",
        "offer": {
            "@type": "Offer",
            "@id": "urn:uuid:d526561f-528e-4d5a-ae12-9a9dd9b7a815",
            "target": "urn:uuid:3dd1add8-4d2d-569e-d634-8394a8836a88",
            "permission": [{"action": "use", "constraint": [_constraint("dateTime", "lteq", "2026-12-31T06:00Z")]}],
        },
    }


def contract_agreement_message() -> dict[str, Any]:
    return {
        "@context": [DSP_CONTEXT],
        "@type": "ContractAgreementMessage",
        "providerPid": _PROVIDER_PID,
        "consumerPid": _CONSUMER_PID,
        "agreement": {
            "@id": "urn:uuid:e8dc8655-44c2-46ef-b701-4cffdc2faa44",
            "@type": "Agreement",
            "target": "urn:uuid:3dd1add8-4d2d-569e-d634-8394a8836a88",
            "timestamp": "2026-01-01T01:00:00Z",
            "assigner": "did:web:provider.example",
            "assignee": "did:web:consumer.example",
            "permission": [
                {"action": "use", "constraint": [_constraint("dateTime", "lteq", "2026-12-31T06:00Z")]},
                {"action": "use", "constraint": [{"or": [_constraint("purpose", "eq", "research"),
                                                          _constraint("purpose", "eq", "education")]}]},
            ],
            "prohibition": [{"action": "distribute"}],
        },
    }


def transfer_start_message() -> dict[str, Any]:
    return {
        "@context": [DSP_CONTEXT],
        "@type": "TransferStartMessage",
        "providerPid": _PROVIDER_PID,
        "consumerPid": _CONSUMER_PID,
        "dataAddress": {
            "@type": "DataAddress",
            "endpointType": "https://w3id.org/idsa/v4.1/HTTP",
            "endpoint": "https://provider.example/public/data",
            "endpointProperties": [
                {"@type": "EndpointProperty", "name": "authorization", "value": "opaque-token"},
                {"@type": "EndpointProperty", "name": "authType", "value": "bearer"},
            ],
        },
    }


def catalog_with_datasets(count: int = 10) -> dict[str, Any]:
    def dataset(index: int) -> dict[str, Any]:
        return {
            "@id": f"urn:uuid:00000000-0000-4000-8000-{index:012d}",
            "@type": "Dataset",
            "hasPolicy": [{
                "@id": f"urn:uuid:00000000-0000-4000-9000-{index:012d}",
                "@type": "Offer",
                "permission": [{"action": "use", "constraint": [_constraint("spatial", "eq", "http://example.org/EU")]}],
            }],
            "distribution": [{"@type": "Distribution", "format": "HttpData-PULL", "accessService": _SERVICE_ID}],
        }

    return {
        "@context": [DSP_CONTEXT],
        "@id": "urn:uuid:3afeadd8-ed2d-569e-d634-8394a8836d57",
        "@type": "Catalog",
        "participantId": "did:web:provider.example",
        "service": [{"@id": _SERVICE_ID, "@type": "DataService", "endpointURL": "https://provider.example/dsp"}],
        "dataset": [dataset(index) for index in range(count)],
    }


def contract_negotiation() -> dict[str, Any]:
    return {
        "@context": [DSP_CONTEXT],
        "@type": "ContractNegotiation",
        "providerPid": _PROVIDER_PID,
        "consumerPid": _CONSUMER_PID,
        "state": "REQUESTED",
    }


MESSAGES: dict[str, Callable[[], dict[str, Any]]] = {
    "ContractRequestMessage": contract_request_message,
    "ContractAgreementMessage": contract_agreement_message,
    "TransferStartMessage": transfer_start_message,
    "Catalog (10 datasets)": catalog_with_datasets,
    "ContractNegotiation": contract_negotiation,
}


def _per_call_us(run: Callable[[], object], seconds: float) -> float:
    """Median over five rounds of the mean time per call, in microseconds, after a warm-up."""
    for _ in range(3):
        run()
    calls = 1
    while True:  # find a batch size that takes about seconds/5
        started = time.perf_counter()
        for _ in range(calls):
            run()
        elapsed = time.perf_counter() - started
        if elapsed >= seconds / 5 or calls >= 1 << 24:
            break
        calls *= 2
    rounds = []
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(calls):
            run()
        rounds.append((time.perf_counter() - started) / calls * 1e6)
    return statistics.median(rounds)


def measure(seconds: float) -> list[dict[str, Any]]:
    results = []
    for name, build in MESSAGES.items():
        message = build()
        if to_dsp_shape(message) is not message:
            raise RuntimeError(f"{name} did not take the fast path; the benchmark input is wrong")
        slow_input = {**message, "@context": [DSP_CONTEXT, {"ex": "https://example.com/ns#"}]}
        if to_dsp_shape(slow_input) != message:
            raise RuntimeError(f"{name} did not survive the slow path unchanged; fix to_dsp_shape first")
        fast_us = _per_call_us(lambda message=message: to_dsp_shape(message), seconds)
        pyld_us = _per_call_us(lambda message=message: compact(expand(message), {"@context": [DSP_CONTEXT]}), seconds)
        slow_us = _per_call_us(lambda slow_input=slow_input: to_dsp_shape(slow_input), seconds)
        edge_us = _per_call_us(lambda message=message: validate_message(to_dsp_shape(message)), seconds)
        results.append({
            "message": name,
            "bytes": len(json.dumps(message)),
            "fast_path_us": round(fast_us, 3),
            "pyld_expand_compact_us": round(pyld_us, 1),
            "slow_path_to_dsp_shape_us": round(slow_us, 1),
            "fast_path_plus_validation_us": round(edge_us, 1),
            "ratio": round(pyld_us / fast_us, 1),
        })
    return results


def _print_table(results: list[dict[str, Any]]) -> None:
    header = (
        f"{'message':<26}{'bytes':>7}{'fast µs':>10}{'pyld µs':>10}{'ratio':>9}{'slow path µs':>14}"
        f"{'fast+validate µs':>18}"
    )
    print(header)
    print("-" * len(header))
    for row in results:
        print(
            f"{row['message']:<26}{row['bytes']:>7}{row['fast_path_us']:>10.3f}{row['pyld_expand_compact_us']:>10.1f}"
            f"{row['ratio']:>8.0f}x{row['slow_path_to_dsp_shape_us']:>14.1f}{row['fast_path_plus_validation_us']:>18.1f}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"JSON results file (default {DEFAULT_OUT})")
    parser.add_argument("--seconds", type=float, default=1.0, help="time budget per measurement (default 1.0)")
    args = parser.parse_args(argv)

    results = measure(args.seconds)
    _print_table(results)
    minimum = min(row["ratio"] for row in results)
    meets_target = minimum >= TARGET_RATIO
    print(f"\nsmallest ratio {minimum:.0f}x (target >= {TARGET_RATIO:.0f}x): {'met' if meets_target else 'NOT met'}")

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "benchmark": "jsonld_fastpath",
        "python": platform.python_version(),
        "pyld": version("PyLD"),
        "machine": platform.machine(),
        "processor": platform.processor() or platform.machine(),
        "target_ratio": TARGET_RATIO,
        "min_ratio": minimum,
        "meets_target": meets_target,
        "results": results,
    }, indent=2) + "\n", encoding="utf-8")
    print(f"results written to {args.out}")
    return 0 if meets_target else 1


if __name__ == "__main__":
    sys.exit(main())

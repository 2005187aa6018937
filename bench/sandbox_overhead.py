"""Benchmark: the ONNX runner on 10,000 rows inside each sandbox against a fresh `python` process with no sandbox.

    .venv/bin/python bench/sandbox_overhead.py [--rows 10000] [--repeat 5] [--no-docker]

The same small model (an MLP, 8 features -> 16 hidden -> 3 scores, built here with the onnx helper API), the
same records and the same runner script (compute_to_data/runtime/onnx_runner.py) in three ways, interleaved:
"direct" (a fresh interpreter started with subprocess, reading and writing host dirs), "bubblewrap" and "docker"
(Sandbox.run, including starting the sandbox, the supervisor and copying /output back). Best of --repeat each;
the outputs must be byte-identical. Results go to bench/results/sandbox-overhead.json; the ratio is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from compute_to_data.sandbox.base import Limits, SandboxSpec  # noqa: E402
from compute_to_data.sandbox.bubblewrap import RUNTIME_DIR, BubblewrapSandbox  # noqa: E402

FEATURES = [f"f{i}" for i in range(8)]


def build_model(path: Path) -> None:
    rng = np.random.default_rng(7)

    def tensor(name: str, shape: list[int]) -> onnx.TensorProto:
        return helper.make_tensor(name, TensorProto.FLOAT, shape, rng.normal(size=shape).astype(np.float32).ravel())

    graph = helper.make_graph(
        [
            helper.make_node("Gemm", ["x", "W1", "B1"], ["h"]),
            helper.make_node("Relu", ["h"], ["hr"]),
            helper.make_node("Gemm", ["hr", "W2", "B2"], ["logits"]),
            helper.make_node("Softmax", ["logits"], ["scores"], axis=1),
        ],
        "career-match",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 8])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["n", 3])],
        initializer=[tensor("W1", [8, 16]), tensor("B1", [16]), tensor("W2", [16, 3]), tensor("B2", [3])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path.write_bytes(model.SerializeToString())


def prepare(root: Path, rows: int) -> tuple[Path, Path]:
    alg, inp = root / "algorithm", root / "input"
    alg.mkdir()
    inp.mkdir()
    build_model(alg / "model.onnx")
    manifest = {
        "name": "career-match",
        "version": "1.0.0",
        "kind": "onnx",
        "model": "model.onnx",
        "inputMap": {"x": FEATURES},
        "outputMap": {"scores": ["engineering", "design", "research"]},
    }
    (alg / "sovra-algorithm.json").write_text(json.dumps(manifest))
    rnd = random.Random(1)
    with open(inp / "records.jsonl", "w") as fh:
        for i in range(1, rows + 1):
            record = {"_record": f"r{i}", **{f: round(rnd.uniform(0, 5), 3) for f in FEATURES}}
            fh.write(json.dumps(record) + "\n")
    (inp / "parameters.json").write_text("{}")
    return alg, inp


def run_direct(alg: Path, inp: Path, out: Path) -> float:
    out.mkdir()
    env = {**os.environ, "SOVRA_ALGORITHM_DIR": str(alg), "SOVRA_INPUT_DIR": str(inp), "SOVRA_OUTPUT_DIR": str(out)}
    started = time.perf_counter()
    subprocess.run([sys.executable, str(RUNTIME_DIR / "onnx_runner.py")], env=env, check=True)
    return time.perf_counter() - started


def run_sandbox(sandbox, alg: Path, inp: Path, out: Path) -> float:
    limits = Limits(wall_seconds=120, cpu_seconds=120, memory_mb=2048, output_max_bytes=64 << 20, cpus=2.0)
    spec = SandboxSpec(["python", "/runtime/onnx_runner.py"], alg, inp, out, limits=limits)
    started = time.perf_counter()
    result = sandbox.run(spec)
    elapsed = time.perf_counter() - started
    if result.exit_code != 0:
        raise SystemExit(f"{sandbox.name} run failed: {result}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--no-docker", action="store_true")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "sandbox-overhead.json"))
    args = parser.parse_args()

    backends = {"bubblewrap": BubblewrapSandbox()}
    if not args.no_docker:
        from compute_to_data.sandbox.docker import DockerSandbox

        backends["docker"] = DockerSandbox()
    skipped = {}
    for name, sandbox in list(backends.items()):
        availability = sandbox.available()
        if not availability.ok:
            skipped[name] = availability.reason
            del backends[name]
    if "bubblewrap" not in backends:
        raise SystemExit(f"bubblewrap unavailable: {skipped['bubblewrap']}")

    with tempfile.TemporaryDirectory(prefix="sovra-bench-sandbox-") as tmp:
        root = Path(tmp)
        alg, inp = prepare(root, args.rows)
        times: dict[str, list[float]] = {"direct": [], **{name: [] for name in backends}}
        reference: bytes | None = None
        for i in range(args.repeat):
            for name in times:
                out = root / f"out-{name}-{i}"
                if name == "direct":
                    times[name].append(run_direct(alg, inp, out))
                else:
                    times[name].append(run_sandbox(backends[name], alg, inp, out))
                produced = (out / "results.jsonl").read_bytes()
                reference = reference or produced
                if produced != reference:
                    raise SystemExit(f"{name} produced different results than the first run")
        rows_out = reference.count(b"\n") if reference else 0

    best = {name: min(values) for name, values in times.items()}
    result = {
        "benchmark": "sandbox_overhead",
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "kernel": platform.release()},
        "rows": args.rows,
        "rows_out": rows_out,
        "model": "MLP 8->16->3 (Gemm, Relu, Gemm, Softmax), float32",
        "repeat": args.repeat,
        "best_seconds": {k: round(v, 4) for k, v in best.items()},
        "all_seconds": {k: [round(x, 4) for x in v] for k, v in times.items()},
        "ratio_vs_direct": {k: round(v / best["direct"], 3) for k, v in best.items() if k != "direct"},
        "target": "bubblewrap <= 1.3x direct",
        "skipped": skipped,
    }
    out_path = Path(args.out)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(result, indent=2) + "\n")
    for name, ratio in result["ratio_vs_direct"].items():
        print(f"{name}: {best[name]:.3f} s vs direct {best['direct']:.3f} s -> {ratio:.2f}x")
    print(f"wrote {out_path}")


if __name__ == "__main__":
    main()

"""The student scenario's materials: a career-matching ONNX model, its signed bundle, three students' skills.

The model is built with the `onnx` helper API, so the demo needs no file from elsewhere: a skills vector
(python, statistics, design, communication, each 0..1) times a 4x3 weight matrix, then Softmax, gives a match score
for three careers. Each score is a subject-scope output (the student's own result, kept in A); the connector
releases to the AI provider only their means over the consenting students, with Laplace noise.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

SKILLS = ("python", "statistics", "design", "communication")
CAREERS = ("dataScience", "uxDesign", "softwareEngineering")
WEIGHTS = (  # rows: skills; columns: careers
    (2.0, 0.2, 2.5),
    (2.5, 0.3, 0.8),
    (0.2, 2.8, 0.6),
    (0.8, 1.5, 0.7),
)
STUDENTS = (
    {"subject": "S-1024", "name": "Ada", "python": 0.9, "statistics": 0.8, "design": 0.2, "communication": 0.6},
    {"subject": "S-2048", "name": "Grace", "python": 0.3, "statistics": 0.2, "design": 0.9, "communication": 0.8},
    {"subject": "S-4096", "name": "Lena", "python": 0.8, "statistics": 0.4, "design": 0.1, "communication": 0.3},
)
CONSENTING = ("S-1024", "S-2048")
ALGORITHM_NAME, ALGORITHM_VERSION = "career-match", "1.0.0"


def manifest() -> dict[str, Any]:
    subject_outputs = [{"name": c, "scope": "subject", "schema": {"type": "number", "minimum": 0, "maximum": 1}}
                       for c in CAREERS]
    aggregates = [{"name": f"mean_{c}", "scope": "aggregate", "source": c, "reducer": "mean", "bounds": [0, 1]}
                  for c in CAREERS]
    return {
        "name": ALGORITHM_NAME, "version": ALGORITHM_VERSION, "kind": "onnx",
        "description": "Career matching: skills -> match scores for three careers (MatMul + Softmax)",
        "model": "model.onnx", "inputMap": {"skills": list(SKILLS)}, "outputMap": {"scores": list(CAREERS)},
        "inputs": list(SKILLS), "outputs": subject_outputs + aggregates,
        "resources": {"cpu": 1, "memory": 512, "gpu": False, "timeout": 60},
    }


def build_model(path: Path) -> None:
    """skills[N,4] -> MatMul(W[4,3]) -> Softmax(axis=1) -> scores[N,3], written to `path`."""
    import onnx
    from onnx import TensorProto, helper

    weights = helper.make_tensor("W", TensorProto.FLOAT, [len(SKILLS), len(CAREERS)],
                                 [w for row in WEIGHTS for w in row])
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["skills", "W"], ["logits"]),
         helper.make_node("Softmax", ["logits"], ["scores"], axis=1)],
        "career_match",
        [helper.make_tensor_value_info("skills", TensorProto.FLOAT, [None, len(SKILLS)])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, [None, len(CAREERS)])],
        initializer=[weights],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="sovra-demo")
    model.ir_version = 8
    onnx.checker.check_model(model)
    path.write_bytes(model.SerializeToString())


def build_signed_bundle(workdir: Path, out_dir: Path, *, data_dir: Path, public_url: str) -> dict[str, Any]:
    """Write the algorithm folder, then pack and sign it with `sovra algorithm sign` as the connector of
    `data_dir` (its key and did:web); return the command's JSON answer (bundle, envelope, digest, signer)."""
    source = workdir / ALGORITHM_NAME
    source.mkdir(parents=True, exist_ok=True)
    build_model(source / "model.onnx")
    (source / "sovra-algorithm.json").write_text(json.dumps(manifest(), indent=2))
    out_dir.mkdir(parents=True, exist_ok=True)
    archive = out_dir / f"{ALGORITHM_NAME}-{ALGORITHM_VERSION}.tar.gz"
    completed = subprocess.run(
        [sys.executable, "-m", "connector", "algorithm", "sign", str(source), "--data-dir", str(data_dir),
         "--public-url", public_url, "--out", str(archive)], capture_output=True, text=True, timeout=60)
    if completed.returncode != 0:
        raise RuntimeError(f"sovra algorithm sign failed: {completed.stderr.strip() or completed.stdout.strip()}")
    answer: dict[str, Any] = json.loads(completed.stdout)
    return answer


def write_students(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(s) + "\n" for s in STUDENTS))


def expected_scores(student: dict[str, Any]) -> dict[str, float]:
    """What the model gives one student, computed here in plain Python (the demo checks A's result with it)."""
    import math

    logits = [sum(student[s] * WEIGHTS[i][j] for i, s in enumerate(SKILLS)) for j in range(len(CAREERS))]
    top = max(logits)
    exps = [math.exp(v - top) for v in logits]
    return {c: e / sum(exps) for c, e in zip(CAREERS, exps, strict=True)}

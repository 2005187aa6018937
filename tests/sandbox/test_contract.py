"""The sandbox contract every backend keeps: python with numpy and onnxruntime, /input in, /output out."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from compute_to_data.sandbox.base import Limits, read_output_file
from compute_to_data.sandbox.outputs import OutputRefused


def test_python_algorithm_reads_input_and_writes_output(run_python, job) -> None:
    result = run_python(
        """
        import json, os, sys, numpy, onnxruntime
        rows = [json.loads(line) for line in open("/input/records.jsonl")]
        with open("/output/results.jsonl", "w") as out:
            for row in rows:
                out.write(json.dumps({"_record": row["_record"], "score": float(numpy.float32(row["x"]) * 10)}) + "\\n")
        print("numpy", numpy.__version__, "ort", onnxruntime.__version__, "uid", os.getuid())
        print(sorted(k for k in os.environ), file=sys.stderr)
        """
    )
    assert result.exit_code == 0, result
    assert result.killed_reason is None
    assert b"numpy" in result.stdout_tail and b"uid 65534" in result.stdout_tail
    assert json.loads(result.stderr_tail.decode().strip().replace("'", '"')) == ["HOME", "LANG", "PATH"]
    rows = [json.loads(line) for line in read_output_file(job.output, "results.jsonl", 1 << 20).splitlines()]
    assert rows == [{"_record": f"r{i}", "score": 10.0 * i} for i in (1, 2, 3)]
    assert result.output_bytes == len(read_output_file(job.output, "results.jsonl", 1 << 20))


def test_spec_env_reaches_the_algorithm(run_python) -> None:
    result = run_python("import os; print(os.environ['SOVRA_JOB'])", env={"SOVRA_JOB": "j1"})
    assert result.exit_code == 0 and result.stdout_tail.strip() == b"j1"


def test_failing_algorithm_reports_exit_code_and_stderr(run_python) -> None:
    result = run_python("import sys; print('boom', file=sys.stderr); sys.exit(3)")
    assert result.exit_code == 3 and b"boom" in result.stderr_tail


def _tiny_model(path: Path) -> None:
    """score = x @ W + b with two outputs columns, plus a one-value output."""
    w = helper.make_tensor("W", TensorProto.FLOAT, [2, 2], [1.0, 0.5, 2.0, -1.0])
    b = helper.make_tensor("B", TensorProto.FLOAT, [2], [0.25, 0.0])
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["features", "W"], ["mm"]),
            helper.make_node("Add", ["mm", "B"], ["scores"]),
            helper.make_node("ReduceSum", ["scores", "axes"], ["total"], keepdims=1),
        ],
        "tiny",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["n", 2])],
        [
            helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["n", 2]),
            helper.make_tensor_value_info("total", TensorProto.FLOAT, ["n", 1]),
        ],
        initializer=[w, b, helper.make_tensor("axes", TensorProto.INT64, [1], [1])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path.write_bytes(model.SerializeToString())


def test_onnx_runner_maps_columns_to_inputs_and_outputs_to_fields(sandbox, job) -> None:
    _tiny_model(job.algorithm / "model.onnx")
    manifest = {
        "name": "tiny",
        "version": "1",
        "kind": "onnx",
        "model": "model.onnx",
        "inputMap": {"features": ["x", "y"]},
        "outputMap": {"scores": ["a", "b"], "total": "t"},
    }
    (job.algorithm / "sovra-algorithm.json").write_text(json.dumps(manifest))
    result = sandbox.run(job.spec(["python", "/runtime/onnx_runner.py"]))
    assert result.exit_code == 0, result
    rows = [json.loads(line) for line in read_output_file(job.output, "results.jsonl", 1 << 20).splitlines()]
    x = np.array([[i, 2.0 * i] for i in (1, 2, 3)], dtype=np.float32)
    scores = x @ np.array([[1.0, 0.5], [2.0, -1.0]], dtype=np.float32) + np.array([0.25, 0.0], dtype=np.float32)
    assert [r["_record"] for r in rows] == ["r1", "r2", "r3"]
    assert np.allclose([[r["a"], r["b"]] for r in rows], scores)
    assert [r["t"] for r in rows] == pytest.approx(scores.sum(axis=1).tolist())


def test_onnx_runner_reports_a_missing_column(sandbox, job) -> None:
    _tiny_model(job.algorithm / "model.onnx")
    manifest = {"model": "model.onnx", "inputMap": {"features": ["x", "nope"]}, "outputMap": {"total": "t"}}
    (job.algorithm / "sovra-algorithm.json").write_text(json.dumps(manifest))
    result = sandbox.run(job.spec(["python", "/runtime/onnx_runner.py"]))
    assert result.exit_code == 2 and b"record r1 has no column 'nope'" in result.stderr_tail


def test_gpu_job_fails_closed_without_a_gpu(run_python) -> None:
    if list(Path("/dev").glob("nvidia*")):
        pytest.skip("this executor has a GPU")
    result = run_python("print('ran')", gpu=True)
    assert result.exit_code is None and result.killed_reason == "job asks for a GPU; this executor has none"
    assert b"ran" not in result.stdout_tail


def test_read_output_file_refuses_links_and_specials(tmp_path: Path) -> None:
    (tmp_path / "real.txt").write_text("ok")
    (tmp_path / "link.txt").symlink_to("/etc/hostname")
    (tmp_path / "hard.txt").hardlink_to(tmp_path / "real.txt")
    (tmp_path / "sub").symlink_to("/etc")
    for name in ("link.txt", "hard.txt", "sub/hostname", "../x", "/etc/hostname"):
        with pytest.raises(OutputRefused):
            read_output_file(tmp_path, name, 1 << 20)
    (tmp_path / "hard.txt").unlink()
    assert read_output_file(tmp_path, "real.txt", 10) == b"ok"
    (tmp_path / "big.bin").write_bytes(b"x" * 11)
    with pytest.raises(OutputRefused, match="more than the 10"):
        read_output_file(tmp_path, "big.bin", 10)


def test_limits_default_is_the_contract() -> None:
    assert Limits().output_max_bytes == 16 << 20


def _runtime_image_id() -> str:
    import docker

    from compute_to_data.sandbox.image import IMAGE

    return docker.from_env().images.get(IMAGE).id


def test_oci_image_runs_on_docker_only(sandbox, job) -> None:
    script = (
        "import os; open('/output/results.jsonl', 'w').write('{\"_record\": \"r1\", \"v\": 1}\\n'); "
        "os.symlink('/etc/passwd', '/output/passwd') if os.environ.get('LINK') else None"
    )
    if sandbox.name == "bubblewrap":
        result = sandbox.run(job.spec(["python", "-c", script], image="sha256:" + "0" * 64))
        assert result.exit_code is None and "only on the Docker backend" in (result.killed_reason or "")
        return
    image = _runtime_image_id()
    result = sandbox.run(job.spec(["python", "-c", script], image=image))
    assert result.exit_code == 0, result
    assert read_output_file(job.output, "results.jsonl", 1024) == b'{"_record": "r1", "v": 1}\n'
    linked = sandbox.run(job.spec(["python", "-c", script], image=image, env={"LINK": "1"}, output_dir=job.root / "o2"))
    assert linked.exit_code is None and "link" in (linked.killed_reason or ""), linked


def test_onnx_runner_refuses_a_gpu_job_without_cuda(job) -> None:
    """The runner itself (outside any sandbox): resources.gpu asks for CUDAExecutionProvider or fails clearly."""
    import os
    import subprocess
    import sys

    import onnxruntime

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("this onnxruntime has CUDA")
    _tiny_model(job.algorithm / "model.onnx")
    manifest = {
        "model": "model.onnx",
        "inputMap": {"features": ["x", "y"]},
        "outputMap": {"total": "t"},
        "resources": {"gpu": True},
    }
    (job.algorithm / "sovra-algorithm.json").write_text(json.dumps(manifest))
    job.output.mkdir()
    env = {
        **os.environ,
        "SOVRA_ALGORITHM_DIR": str(job.algorithm),
        "SOVRA_INPUT_DIR": str(job.input),
        "SOVRA_OUTPUT_DIR": str(job.output),
    }
    from compute_to_data.sandbox.bubblewrap import RUNTIME_DIR

    done = subprocess.run([sys.executable, str(RUNTIME_DIR / "onnx_runner.py")], env=env, capture_output=True)
    assert done.returncode == 2 and b"no CUDAExecutionProvider" in done.stderr
    assert not (job.output / "results.jsonl").exists()


def test_create_sandbox_by_name_and_unknown_names_fail_closed() -> None:
    from compute_to_data.sandbox.base import SandboxUnavailable, create_sandbox

    with pytest.raises(SandboxUnavailable, match="unknown sandbox backend 'nope'"):
        create_sandbox("nope")
    missing = "/nonexistent/bwrap"
    with pytest.raises(SandboxUnavailable, match="no `bwrap`"):
        create_sandbox("bubblewrap", bwrap=missing)


def test_create_sandbox_returns_a_working_backend(sandbox) -> None:
    from compute_to_data.sandbox.base import create_sandbox

    assert create_sandbox(sandbox.name).available().ok

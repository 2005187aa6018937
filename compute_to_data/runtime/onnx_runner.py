"""In-sandbox runner for `onnx` algorithms: /input/records.jsonl through the model to /output/results.jsonl.

Runs inside the sandbox as `python /runtime/onnx_runner.py`, with numpy and onnxruntime and nothing of the
connector (it must not import it). It reads the bundle's manifest (/algorithm/sovra-algorithm.json, top-level
`model`, `inputMap` {model input: [columns]}, `outputMap` {model output: field or [fields, one per column]},
`resources.gpu`), builds one array per model input over all records at once (float32 unless the model declares
another element type), runs the whole batch in one session call, and writes one row per record:
{"_record": <key>, <field>: <value>, ...}. A job that asks for a GPU runs on CUDAExecutionProvider or fails.
Errors go to stderr as one line and exit 2, so the connector's job reason is readable. With `--standby` it
imports numpy and onnxruntime first and waits for "go" on stdin (a pre-started sandbox; see supervisor.py).
"""

from __future__ import annotations

import json
import os
import sys

ALGORITHM = os.environ.get("SOVRA_ALGORITHM_DIR", "/algorithm")
INPUT = os.environ.get("SOVRA_INPUT_DIR", "/input")
OUTPUT = os.environ.get("SOVRA_OUTPUT_DIR", "/output")


class RunnerError(Exception):
    pass


def _columns(value: object, where: str) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return value
    raise RunnerError(f"{where}: expected a column name or a non-empty list of names, got {value!r}")


def _load_manifest() -> dict:
    path = os.path.join(ALGORITHM, "sovra-algorithm.json")
    try:
        with open(path, encoding="utf-8") as fh:
            doc = json.load(fh)
    except (OSError, ValueError) as exc:
        raise RunnerError(f"cannot read {path}: {exc}") from exc
    for key in ("model", "inputMap", "outputMap"):
        if key not in doc:
            raise RunnerError(
                f"sovra-algorithm.json has no {key!r}; an onnx algorithm needs model, inputMap, outputMap"
            )
    return doc


def _read_records() -> tuple[list[str], list[dict]]:
    keys: list[str] = []
    rows: list[dict] = []
    with open(os.path.join(INPUT, "records.jsonl"), encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError as exc:
                raise RunnerError(f"records.jsonl line {lineno}: not JSON ({exc})") from exc
            keys.append(str(row.get("_record", f"line{lineno}")))
            rows.append(row)
    return keys, rows


_NUMPY_TYPES = {
    "tensor(float)": "float32",
    "tensor(double)": "float64",
    "tensor(int64)": "int64",
    "tensor(int32)": "int32",
    "tensor(float16)": "float16",
    "tensor(bool)": "bool",
}


def _session(model_path: str, gpu: bool):
    import onnxruntime as ort

    available = ort.get_available_providers()
    if gpu:
        if "CUDAExecutionProvider" not in available:
            raise RunnerError(f"job asks for a GPU but this onnxruntime has no CUDAExecutionProvider ({available})")
        providers = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    else:
        providers = ["CPUExecutionProvider"]
    options = ort.SessionOptions()
    options.log_severity_level = 3
    try:
        return ort.InferenceSession(model_path, sess_options=options, providers=providers)
    except Exception as exc:  # onnxruntime raises its own exception types
        raise RunnerError(f"cannot load the model {model_path}: {exc}") from exc


def _inputs(session, input_map: dict, keys: list[str], rows: list[dict]):
    import numpy as np

    feeds = {}
    declared = {i.name: i for i in session.get_inputs()}
    for name, spec in input_map.items():
        if name not in declared:
            raise RunnerError(f"inputMap names {name!r}, but the model's inputs are {sorted(declared)}")
        columns = _columns(spec, f"inputMap/{name}")
        dtype = _NUMPY_TYPES.get(declared[name].type, "float32")
        try:
            matrix = np.array([[row[c] for c in columns] for row in rows], dtype=dtype)
        except KeyError as exc:
            missing = next(k for k, row in zip(keys, rows, strict=True) if any(c not in row for c in columns))
            raise RunnerError(f"record {missing} has no column {exc.args[0]!r} (inputMap/{name})") from exc
        except (TypeError, ValueError) as exc:
            raise RunnerError(f"inputMap/{name}: columns {columns} are not all numbers ({exc})") from exc
        matrix = matrix.reshape(len(rows), len(columns))
        if len(declared[name].shape) == 1:
            if len(columns) != 1:
                raise RunnerError(f"model input {name!r} is one value per record, but inputMap gives {columns}")
            matrix = matrix[:, 0]
        feeds[name] = matrix
    return feeds


def _fields(output_map: dict, outputs: dict, n: int) -> list[tuple[str, list]]:
    result: list[tuple[str, list]] = []
    for name, spec in output_map.items():
        if name not in outputs:
            raise RunnerError(f"outputMap names {name!r}, but the model's outputs are {sorted(outputs)}")
        arr = outputs[name]
        if arr.shape[:1] != (n,):
            raise RunnerError(f"model output {name!r} has shape {arr.shape}; expected one row per record ({n})")
        arr = arr.reshape(n, -1)
        if isinstance(spec, str):
            result.append((spec, (arr[:, 0] if arr.shape[1] == 1 else arr).tolist()))
            continue
        fields = _columns(spec, f"outputMap/{name}")
        if arr.shape[1] != len(fields):
            raise RunnerError(f"model output {name!r} has {arr.shape[1]} columns, outputMap names {len(fields)}")
        result.extend((field, arr[:, i].tolist()) for i, field in enumerate(fields))
    return result


def run() -> int:
    manifest = _load_manifest()
    keys, rows = _read_records()
    gpu = bool((manifest.get("resources") or {}).get("gpu", False))
    session = _session(os.path.join(ALGORITHM, manifest["model"]), gpu)
    output_map = manifest["outputMap"]
    if not rows:
        open(os.path.join(OUTPUT, "results.jsonl"), "w").close()
        return 0
    feeds = _inputs(session, manifest["inputMap"], keys, rows)
    names = list(output_map)
    try:
        values = session.run(names, feeds)
    except Exception as exc:  # onnxruntime raises its own exception types
        raise RunnerError(f"the model failed on the input batch: {exc}") from exc
    fields = _fields(output_map, dict(zip(names, values, strict=True)), len(rows))
    field_names = [json.dumps(f) for f, _ in fields]
    columns = [v for _, v in fields]
    with open(os.path.join(OUTPUT, "results.jsonl"), "w", encoding="utf-8") as out:
        dumps = json.dumps
        lines = []
        for i, key in enumerate(keys):
            parts = [f'"_record": {dumps(key)}']
            parts.extend(f"{fname}: {dumps(col[i])}" for fname, col in zip(field_names, columns, strict=True))
            lines.append("{" + ", ".join(parts) + "}\n")
        out.writelines(lines)
    return 0


def _stand_by() -> bool:
    """`--standby`: import the heavy modules now, then wait for the supervisor's "go" on stdin (sent once the
    job's files are in place and its limits are set); False when the standby is discarded instead."""
    import numpy  # noqa: F401
    import onnxruntime  # noqa: F401

    print("ready", flush=True)  # the supervisor reads this line; it is not part of the output
    return sys.stdin.readline().strip() == "go"


def main() -> int:
    if "--standby" in sys.argv[1:] and not _stand_by():
        return 0
    try:
        return run()
    except RunnerError as exc:
        print(f"onnx runner: {exc}", file=sys.stderr)
        return 2


def _exit_now(code: int) -> None:
    """A standby's sandbox is thrown away once the runner ends, so the interpreter's own teardown (unloading
    onnxruntime and numpy, some 50 ms) is time the job waits for nothing: flush and leave. The output file was
    closed by then, and the supervisor sees the same exit code."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    code = main()
    if "--standby" in sys.argv[1:]:
        _exit_now(code)
    sys.exit(code)

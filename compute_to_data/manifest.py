"""The algorithm manifest (`sovra-algorithm.json`): what an algorithm reads, what it may write, what it needs.

INTERFACE (lead's skeleton, filled in by the c2d-core helper). One manifest format for all three kinds, so the
connector treats every algorithm the same way up to the command it runs:

- `onnx`: `model` (path of the .onnx file inside the bundle), `inputMap` {model input name: [dataset columns]},
  `outputMap` {model output name: result field name, or a list of field names, one per output column};
  the connector runs it with its own runner (`compute_to_data/runtime/onnx_runner.py`) inside the sandbox.
- `python`: `entrypoint` (a .py path inside the bundle), run as `python /algorithm/<entrypoint>`.
- `oci`: `image` ("sha256:<64 hex>", the image id/digest), Docker backend only; `entrypoint` optional command.

Common fields: `name`, `version`, `kind`, `inputs` (dataset columns the algorithm reads: only these columns are
written to /input), `outputs` (list of OutputSpec), `resources` {cpu, memory (MiB), gpu (bool), timeout (s)}.

Output protocol (the same for every kind): the algorithm writes `/output/results.jsonl`, one JSON object per input
record: {"_record": "<pseudonymous record key from /input/records.jsonl>", "<field>": value, ...}, where every
field is a `subject`-scope output. `aggregate`-scope outputs are NOT written by the algorithm: the connector
computes them from a subject-scope field (`source`) with a `reducer` over clipped `bounds`, then adds DP noise.
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import PurePosixPath
from typing import Any, Literal

from jsonschema.exceptions import SchemaError
from jsonschema.validators import validator_for

MANIFEST_FILE = "sovra-algorithm.json"
Kind = Literal["onnx", "python", "oci"]
Scope = Literal["subject", "aggregate"]
Reducer = Literal["mean", "sum", "count", "histogram"]


class ManifestError(ValueError):
    """A manifest that cannot be used; the message says which field (JSON pointer), what is wrong and the fix."""

    def __init__(self, pointer: str, problem: str, fix: str) -> None:
        super().__init__(f"{MANIFEST_FILE}{pointer}: {problem}; {fix}")
        self.pointer, self.problem, self.fix = pointer, problem, fix


@dataclass(frozen=True)
class Resources:
    cpu: float = 1.0
    memory_mb: int = 512
    gpu: bool = False
    timeout_s: int = 60


@dataclass(frozen=True)
class OutputSpec:
    name: str
    scope: Scope
    schema: Mapping[str, Any] = field(default_factory=dict)  # JSON Schema of one value (subject scope)
    source: str | None = None  # aggregate: the subject-scope field it reduces
    reducer: Reducer | None = None  # aggregate only
    bounds: tuple[float, float] | None = None  # aggregate mean/sum/histogram: values are clipped into [lo, hi]
    bins: tuple[float, ...] | None = None  # histogram edges


@dataclass(frozen=True)
class OnnxSpec:
    model: str
    input_map: Mapping[str, tuple[str, ...]]
    output_map: Mapping[str, tuple[str, ...]]


@dataclass(frozen=True)
class Manifest:
    name: str
    version: str
    kind: Kind
    inputs: tuple[str, ...]
    outputs: tuple[OutputSpec, ...]
    resources: Resources = Resources()
    entrypoint: str | None = None
    onnx: OnnxSpec | None = None
    image: str | None = None
    description: str = ""

    def subject_outputs(self) -> tuple[OutputSpec, ...]:
        return tuple(o for o in self.outputs if o.scope == "subject")

    def aggregate_outputs(self) -> tuple[OutputSpec, ...]:
        return tuple(o for o in self.outputs if o.scope == "aggregate")


_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9.+_-]{0,63}")
_FIELD = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,63}")
_IMAGE = re.compile(r"sha256:[0-9a-f]{64}")
_KIND_FIELDS: dict[str, frozenset[str]] = {
    "onnx": frozenset({"model", "inputMap", "outputMap"}),
    "python": frozenset({"entrypoint"}),
    "oci": frozenset({"image", "entrypoint"}),
}
_COMMON = frozenset({"name", "version", "kind", "inputs", "outputs", "resources", "description"})
_OUTPUT_FIELDS = frozenset({"name", "scope", "schema", "source", "reducer", "bounds", "bins", "description"})
_RESOURCE_FIELDS = frozenset({"cpu", "memory", "gpu", "timeout"})
_REDUCERS = ("mean", "sum", "count", "histogram")
_BOUNDED = frozenset({"mean", "sum", "histogram"})
TIMEOUT_RANGE = (1, 3600)
MEMORY_RANGE_MB = (16, 65536)
MAX_CPU = 64.0


def parse_manifest(data: Any) -> Manifest:
    """Validate and parse a manifest document; raise ManifestError naming the first problem."""
    doc = _object(data, "", "write the manifest as one JSON object")
    kind = doc.get("kind")
    if kind not in _KIND_FIELDS:
        raise ManifestError("/kind", f"{kind!r} is not a kind", "use one of: onnx, python, oci")
    _no_unknown(doc, "", _COMMON | _KIND_FIELDS[kind])
    name = _matching(doc, "/name", _NAME, "use 1-64 letters, digits, '.', '_' or '-', e.g. career-match")
    version = _matching(doc, "/version", _VERSION, "use e.g. 1.0.0")
    inputs = _inputs(doc.get("inputs"))
    outputs = _outputs(doc.get("outputs"))
    description = doc.get("description", "")
    if not isinstance(description, str):
        raise ManifestError("/description", "not a string", "write a short text or leave it out")
    manifest = Manifest(
        name=name, version=version, kind=kind, inputs=inputs, outputs=outputs,
        resources=_resources(doc.get("resources", {})), description=description,
    )
    if kind == "python":
        return replace(manifest, entrypoint=_bundle_path(doc, "/entrypoint", ".py", "main.py"))
    if kind == "onnx":
        return replace(manifest, onnx=_onnx(doc, manifest))
    image = doc.get("image")
    if not isinstance(image, str) or not _IMAGE.fullmatch(image):
        raise ManifestError("/image", f"{image!r} is not an image digest",
                            "give the image id as sha256:<64 lowercase hex> (docker image inspect --format {{.Id}})")
    entrypoint = doc.get("entrypoint")
    if entrypoint is not None and (not isinstance(entrypoint, str) or not entrypoint.strip()):
        raise ManifestError("/entrypoint", "not a non-empty string", "give the command to run, or leave it out")
    return replace(manifest, image=image, entrypoint=entrypoint)


def manifest_to_json(manifest: Manifest) -> dict[str, Any]:
    """The manifest back as its JSON document (stored with a job, shown on the APIs)."""
    doc: dict[str, Any] = {"name": manifest.name, "version": manifest.version, "kind": manifest.kind}
    if manifest.description:
        doc["description"] = manifest.description
    if manifest.entrypoint is not None:
        doc["entrypoint"] = manifest.entrypoint
    if manifest.image is not None:
        doc["image"] = manifest.image
    if manifest.onnx is not None:
        doc["model"] = manifest.onnx.model
        doc["inputMap"] = {name: list(columns) for name, columns in manifest.onnx.input_map.items()}
        doc["outputMap"] = {name: fields[0] if len(fields) == 1 else list(fields)
                            for name, fields in manifest.onnx.output_map.items()}
    doc["inputs"] = list(manifest.inputs)
    doc["outputs"] = [_output_to_json(o) for o in manifest.outputs]
    r = manifest.resources
    doc["resources"] = {"cpu": r.cpu, "memory": r.memory_mb, "gpu": r.gpu, "timeout": r.timeout_s}
    return doc


def _output_to_json(output: OutputSpec) -> dict[str, Any]:
    doc: dict[str, Any] = {"name": output.name, "scope": output.scope}
    if output.schema:
        doc["schema"] = copy.deepcopy(dict(output.schema))
    if output.source is not None:
        doc["source"] = output.source
    if output.reducer is not None:
        doc["reducer"] = output.reducer
    if output.bounds is not None:
        doc["bounds"] = list(output.bounds)
    if output.bins is not None:
        doc["bins"] = list(output.bins)
    return doc


# -- pieces ----------------------------------------------------------------------------------------------------------


def _object(value: Any, pointer: str, fix: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ManifestError(pointer, f"expected a JSON object, found {_type_name(value)}", fix)
    return value


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "a boolean", int: "a number", float: "a number", str: "a string", list: "an array",
            tuple: "an array", dict: "an object"}.get(type(value), type(value).__name__)


def _no_unknown(doc: Mapping[str, Any], pointer: str, known: frozenset[str]) -> None:
    for key in doc:
        if key not in known:
            raise ManifestError(f"{pointer}/{_escape(str(key))}", "unknown member (a typo would otherwise pass "
                                "silently)", f"remove it; allowed here: {', '.join(sorted(known))}")


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def _matching(doc: Mapping[str, Any], pointer: str, pattern: re.Pattern[str], fix: str) -> str:
    value = doc.get(pointer[1:])
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise ManifestError(pointer, f"{value!r} is missing or not valid", fix)
    return value


def _field_name(value: Any, pointer: str, what: str) -> str:
    if not isinstance(value, str) or not _FIELD.fullmatch(value):
        raise ManifestError(pointer, f"{value!r} is not a valid {what}",
                            "start with a letter, then up to 63 letters, digits, '_', '.' or '-' "
                            "(names starting with '_' are reserved for the connector)")
    return value


def _inputs(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise ManifestError("/inputs", "missing or not a non-empty array",
                            "list the dataset columns the algorithm reads, e.g. [\"skills\", \"years\"]")
    names = tuple(_field_name(v, f"/inputs/{i}", "column name") for i, v in enumerate(value))
    _unique(names, "/inputs", "column")
    return names


def _unique(names: tuple[str, ...], pointer: str, what: str) -> None:
    seen: set[str] = set()
    for i, name in enumerate(names):
        if name in seen:
            raise ManifestError(f"{pointer}/{i}", f"{what} {name!r} appears twice", "list each name once")
        seen.add(name)


def _outputs(value: Any) -> tuple[OutputSpec, ...]:
    if not isinstance(value, list) or not value:
        raise ManifestError("/outputs", "missing or not a non-empty array",
                            "declare at least one output: {\"name\": ..., \"scope\": \"subject\", \"schema\": {...}}")
    raw = [_object(v, f"/outputs/{i}", "write each output as an object") for i, v in enumerate(value)]
    names = tuple(_field_name(o.get("name"), f"/outputs/{i}/name", "output name") for i, o in enumerate(raw))
    _unique(names, "/outputs", "output")
    subject: dict[str, OutputSpec] = {}
    for i, doc in enumerate(raw):
        if doc.get("scope") == "subject":
            subject[names[i]] = _subject_output(doc, f"/outputs/{i}", names[i])
    specs = []
    for i, doc in enumerate(raw):
        pointer = f"/outputs/{i}"
        scope = doc.get("scope")
        if scope == "subject":
            specs.append(subject[names[i]])
        elif scope == "aggregate":
            specs.append(_aggregate_output(doc, pointer, names[i], subject))
        else:
            raise ManifestError(pointer + "/scope", f"{scope!r} is not a scope",
                                "use \"subject\" (one value per record, for that subject) or \"aggregate\" "
                                "(computed by the connector over records, with noise)")
    return tuple(specs)


def _subject_output(doc: Mapping[str, Any], pointer: str, name: str) -> OutputSpec:
    _no_unknown(doc, pointer, frozenset({"name", "scope", "schema", "description"}))
    schema = doc.get("schema")
    if not isinstance(schema, Mapping) or not schema:
        raise ManifestError(pointer + "/schema", "a subject output needs a non-empty JSON Schema for its value",
                            "declare at least its type, e.g. {\"type\": \"number\", \"minimum\": 0}")
    try:
        validator_for(schema).check_schema(schema)
    except SchemaError as exc:
        where = "/".join(_escape(str(p)) for p in exc.path)
        raise ManifestError(pointer + "/schema" + (f"/{where}" if where else ""),
                            f"not a valid JSON Schema ({exc.message})", "fix the schema") from None
    return OutputSpec(name=name, scope="subject", schema=copy.deepcopy(dict(schema)))


def _aggregate_output(doc: Mapping[str, Any], pointer: str, name: str,
                      subject: Mapping[str, OutputSpec]) -> OutputSpec:
    _no_unknown(doc, pointer, _OUTPUT_FIELDS - {"schema"})
    source = doc.get("source")
    if source not in subject:
        raise ManifestError(pointer + "/source", f"{source!r} is not a subject-scope output",
                            f"name the subject output it reduces, one of: {', '.join(subject) or '(none declared)'}")
    reducer = doc.get("reducer")
    if reducer not in _REDUCERS:
        raise ManifestError(pointer + "/reducer", f"{reducer!r} is not a reducer",
                            f"use one of: {', '.join(_REDUCERS)}")
    if reducer in _BOUNDED and not _numeric_schema(subject[source].schema):
        raise ManifestError(pointer + "/source", f"{reducer} needs numbers, but the schema of {source!r} "
                            "declares no numeric type", "give that output {\"type\": \"number\"} (or integer)")
    bounds = _bounds(doc, pointer, reducer)
    bins = _bins(doc, pointer, reducer, bounds)
    return OutputSpec(name=name, scope="aggregate", source=source, reducer=reducer, bounds=bounds, bins=bins)


def _numeric_schema(schema: Mapping[str, Any]) -> bool:
    declared = schema.get("type")
    if declared is None:
        return True  # e.g. an enum or anyOf of numbers; the gate still checks every value
    types = [declared] if isinstance(declared, str) else declared
    return any(t in ("number", "integer") for t in types)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def _bounds(doc: Mapping[str, Any], pointer: str, reducer: str) -> tuple[float, float] | None:
    raw = doc.get("bounds")
    if reducer not in _BOUNDED:
        if raw is not None:
            raise ManifestError(pointer + "/bounds", f"{reducer} uses no bounds", "remove them")
        return None
    pair = [_number(v) for v in raw] if isinstance(raw, list) and len(raw) == 2 else None
    if pair is None or pair[0] is None or pair[1] is None or not pair[0] < pair[1]:
        raise ManifestError(pointer + "/bounds", f"{reducer} needs bounds [lo, hi] with finite numbers lo < hi "
                            f"(found {raw!r})", "give the range values are clipped into, e.g. [0, 1]; the noise "
                            "is calibrated to it")
    return (pair[0], pair[1])


def _bins(doc: Mapping[str, Any], pointer: str, reducer: str,
          bounds: tuple[float, float] | None) -> tuple[float, ...] | None:
    raw = doc.get("bins")
    if reducer != "histogram":
        if raw is not None:
            raise ManifestError(pointer + "/bins", f"{reducer} uses no bins", "remove them")
        return None
    edges = [_number(v) for v in raw] if isinstance(raw, list) else []
    if len(edges) < 2 or any(e is None for e in edges) or any(a >= b for a, b in zip(edges, edges[1:], strict=False)):
        raise ManifestError(pointer + "/bins", f"a histogram needs at least 2 strictly increasing finite edges "
                            f"(found {raw!r})", "give the bin edges, e.g. [0, 0.25, 0.5, 0.75, 1]")
    bins = tuple(e for e in edges if e is not None)
    assert bounds is not None
    if bounds[0] < bins[0] or bounds[1] > bins[-1]:
        raise ManifestError(pointer + "/bounds", f"bounds {list(bounds)} reach outside the bins "
                            f"[{bins[0]}, {bins[-1]}]", "choose bounds inside the first and last edge")
    return bins


def _resources(value: Any) -> Resources:
    doc = _object(value, "/resources", "write {\"cpu\": 1, \"memory\": 512, \"gpu\": false, \"timeout\": 60}")
    _no_unknown(doc, "/resources", _RESOURCE_FIELDS)
    default = Resources()
    cpu = _number(doc.get("cpu", default.cpu))
    if cpu is None or not 0 < cpu <= MAX_CPU:
        raise ManifestError("/resources/cpu", f"{doc.get('cpu')!r} is not a CPU share in (0, {MAX_CPU:g}]",
                            "give the number of CPUs, e.g. 1 or 0.5")
    memory = _integer(doc, "memory", default.memory_mb, MEMORY_RANGE_MB, "MiB of memory, e.g. 512")
    timeout = _integer(doc, "timeout", default.timeout_s, TIMEOUT_RANGE, "seconds of wall time, e.g. 60")
    gpu = doc.get("gpu", default.gpu)
    if not isinstance(gpu, bool):
        raise ManifestError("/resources/gpu", f"{gpu!r} is not a boolean", "use true or false")
    return Resources(cpu=cpu, memory_mb=memory, gpu=gpu, timeout_s=timeout)


def _integer(doc: Mapping[str, Any], key: str, default: int, limits: tuple[int, int], what: str) -> int:
    value = doc.get(key, default)
    lo, hi = limits
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ManifestError(f"/resources/{key}", f"{value!r} is not a whole number from {lo} to {hi}",
                            f"give {what}")
    return value


def _bundle_path(doc: Mapping[str, Any], pointer: str, suffix: str, example: str) -> str:
    """A relative path inside the bundle: no absolute path, no '..', no backslash; './' prefixes are dropped."""
    value = doc.get(pointer[1:])
    fix = f"give a relative path inside the bundle ending in {suffix}, e.g. {example}"
    if not isinstance(value, str) or not value or "\\" in value or "\x00" in value:
        raise ManifestError(pointer, f"{value!r} is missing or not a path", fix)
    path = PurePosixPath(value)
    if path.is_absolute() or ".." in path.parts:
        raise ManifestError(pointer, f"{value!r} points outside the bundle", fix)
    normal = path.as_posix()
    if normal in ("", ".") or not normal.endswith(suffix):
        raise ManifestError(pointer, f"{value!r} does not end in {suffix}", fix)
    return normal


def _onnx(doc: Mapping[str, Any], manifest: Manifest) -> OnnxSpec:
    model = _bundle_path(doc, "/model", ".onnx", "model.onnx")
    raw_in = _object(doc.get("inputMap"), "/inputMap",
                     "map each model input to the dataset columns it takes, e.g. {\"features\": [\"a\", \"b\"]}")
    if not raw_in:
        raise ManifestError("/inputMap", "empty", "map at least one model input to dataset columns")
    input_map: dict[str, tuple[str, ...]] = {}
    for key, columns in raw_in.items():
        pointer = f"/inputMap/{_escape(str(key))}"
        if not isinstance(columns, list) or not columns:
            raise ManifestError(pointer, "not a non-empty array of column names", "e.g. [\"skills\", \"years\"]")
        for i, column in enumerate(columns):
            if column not in manifest.inputs:
                raise ManifestError(f"{pointer}/{i}", f"column {column!r} is not listed in inputs",
                                    "add it to inputs (only those columns reach the algorithm) or fix the name")
        input_map[str(key)] = tuple(columns)
    raw_out = _object(doc.get("outputMap"), "/outputMap",
                      "map each model output to a subject output name, e.g. {\"score\": \"matchScore\"}")
    if not raw_out:
        raise ManifestError("/outputMap", "empty", "map at least one model output to a subject output")
    subject = {o.name for o in manifest.subject_outputs()}
    output_map: dict[str, tuple[str, ...]] = {}
    for key, target in raw_out.items():
        pointer = f"/outputMap/{_escape(str(key))}"
        fields = [target] if isinstance(target, str) else target
        if not isinstance(fields, list) or not fields:
            raise ManifestError(pointer, "not a field name or a non-empty array of field names",
                                "name the subject output(s) this model output fills")
        for i, name in enumerate(fields):
            if name not in subject:
                raise ManifestError(pointer if isinstance(target, str) else f"{pointer}/{i}",
                                    f"{name!r} is not a subject-scope output",
                                    f"use one of: {', '.join(sorted(subject)) or '(none declared)'}")
        output_map[str(key)] = tuple(fields)
    return OnnxSpec(model=model, input_map=input_map, output_map=output_map)

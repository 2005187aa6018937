"""The manifest parser: every kind parses and round-trips; every bad field is named by pointer, with a fix."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from compute_to_data.manifest import ManifestError, Resources, manifest_to_json, parse_manifest

SCHEMA = {"type": "number", "minimum": 0, "maximum": 1}


def python_manifest() -> dict[str, Any]:
    return {
        "name": "career-match", "version": "1.0.0", "kind": "python", "entrypoint": "main.py",
        "inputs": ["skills", "years"],
        "outputs": [
            {"name": "score", "scope": "subject", "schema": SCHEMA},
            {"name": "label", "scope": "subject", "schema": {"type": "string", "enum": ["data", "web"]}},
            {"name": "meanScore", "scope": "aggregate", "source": "score", "reducer": "mean", "bounds": [0, 1]},
            {"name": "scoreSum", "scope": "aggregate", "source": "score", "reducer": "sum", "bounds": [0, 1]},
            {"name": "scored", "scope": "aggregate", "source": "label", "reducer": "count"},
            {"name": "scoreHistogram", "scope": "aggregate", "source": "score", "reducer": "histogram",
             "bounds": [0, 1], "bins": [0, 0.5, 1]},
        ],
        "resources": {"cpu": 0.5, "memory": 256, "gpu": False, "timeout": 30},
    }


def onnx_manifest() -> dict[str, Any]:
    return {
        "name": "career-onnx", "version": "2", "kind": "onnx", "model": "model.onnx",
        "inputMap": {"features": ["python", "sql"]}, "outputMap": {"probabilities": ["pData", "pWeb"],
                                                                   "label": "label"},
        "inputs": ["python", "sql"],
        "outputs": [{"name": "pData", "scope": "subject", "schema": {"type": "number"}},
                    {"name": "pWeb", "scope": "subject", "schema": {"type": "number"}},
                    {"name": "label", "scope": "subject", "schema": {"type": "integer"}}],
    }


def oci_manifest() -> dict[str, Any]:
    return {"name": "img", "version": "1", "kind": "oci", "image": "sha256:" + "ab" * 32,
            "entrypoint": "python /app/run.py", "inputs": ["x"],
            "outputs": [{"name": "y", "scope": "subject", "schema": {"type": "number"}}]}


@pytest.mark.parametrize("doc", [python_manifest(), onnx_manifest(), oci_manifest()], ids=["python", "onnx", "oci"])
def test_each_kind_parses_and_round_trips(doc: dict[str, Any]) -> None:
    manifest = parse_manifest(doc)
    again = parse_manifest(manifest_to_json(manifest))
    assert again == manifest
    assert manifest_to_json(again) == manifest_to_json(manifest)


def test_parsed_fields() -> None:
    manifest = parse_manifest(python_manifest())
    assert manifest.entrypoint == "main.py"
    assert manifest.resources == Resources(cpu=0.5, memory_mb=256, gpu=False, timeout_s=30)
    assert [o.name for o in manifest.subject_outputs()] == ["score", "label"]
    histogram = manifest.aggregate_outputs()[-1]
    assert histogram.bins == (0.0, 0.5, 1.0) and histogram.bounds == (0.0, 1.0) and histogram.source == "score"
    onnx = parse_manifest(onnx_manifest()).onnx
    assert onnx is not None and onnx.output_map == {"probabilities": ("pData", "pWeb"), "label": ("label",)}
    assert onnx.input_map == {"features": ("python", "sql")}


def test_defaults_and_dot_slash_entrypoint() -> None:
    doc = python_manifest()
    del doc["resources"]
    doc["entrypoint"] = "./src/main.py"
    manifest = parse_manifest(doc)
    assert manifest.resources == Resources()
    assert manifest.entrypoint == "src/main.py"


def _set(path: str, value: Any) -> Any:
    """A mutation of the python manifest: set (or, for value ..., delete) the member at a dotted path."""
    def mutate(doc: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target: Any = doc
        for part in parents:
            target = target[int(part)] if part.isdigit() else target[part]
        if value is ...:
            del target[int(last) if last.isdigit() else last]
        else:
            target[int(last) if last.isdigit() else last] = value
    return mutate


BAD = [
    ("not-an-object", None, ""),
    ("kind", _set("kind", "wasm"), "/kind"),
    ("name", _set("name", "../evil"), "/name"),
    ("missing version", _set("version", ...), "/version"),
    ("unknown member", _set("entrypont", "main.py"), "/entrypont"),
    ("model on python", _set("model", "m.onnx"), "/model"),
    ("entrypoint not .py", _set("entrypoint", "main.sh"), "/entrypoint"),
    ("entrypoint absolute", _set("entrypoint", "/etc/main.py"), "/entrypoint"),
    ("entrypoint dot-dot", _set("entrypoint", "../main.py"), "/entrypoint"),
    ("entrypoint missing", _set("entrypoint", ...), "/entrypoint"),
    ("inputs empty", _set("inputs", []), "/inputs"),
    ("input reserved", _set("inputs", ["_record"]), "/inputs/0"),
    ("input twice", _set("inputs", ["a", "a"]), "/inputs/1"),
    ("outputs missing", _set("outputs", ...), "/outputs"),
    ("output twice", _set("outputs.1.name", "score"), "/outputs/1"),
    ("scope", _set("outputs.0.scope", "global"), "/outputs/0/scope"),
    ("subject without schema", _set("outputs.0.schema", ...), "/outputs/0/schema"),
    ("empty schema", _set("outputs.0.schema", {}), "/outputs/0/schema"),
    ("invalid schema", _set("outputs.0.schema", {"type": "decimal"}), "/outputs/0/schema/type"),
    ("source missing", _set("outputs.2.source", ...), "/outputs/2/source"),
    ("source aggregate", _set("outputs.2.source", "scoreSum"), "/outputs/2/source"),
    ("reducer", _set("outputs.2.reducer", "median"), "/outputs/2/reducer"),
    ("mean without bounds", _set("outputs.2.bounds", ...), "/outputs/2/bounds"),
    ("bounds reversed", _set("outputs.3.bounds", [1, 0]), "/outputs/3/bounds"),
    ("bounds not numbers", _set("outputs.3.bounds", ["0", 1]), "/outputs/3/bounds"),
    ("mean of text", _set("outputs.2.source", "label"), "/outputs/2/source"),
    ("count with bounds", _set("outputs.4.bounds", [0, 1]), "/outputs/4/bounds"),
    ("histogram without bins", _set("outputs.5.bins", ...), "/outputs/5/bins"),
    ("bins not increasing", _set("outputs.5.bins", [0, 1, 0.5]), "/outputs/5/bins"),
    ("bounds outside bins", _set("outputs.5.bounds", [-1, 1]), "/outputs/5/bounds"),
    ("bins on mean", _set("outputs.2.bins", [0, 1]), "/outputs/2/bins"),
    ("timeout zero", _set("resources.timeout", 0), "/resources/timeout"),
    ("timeout too long", _set("resources.timeout", 3601), "/resources/timeout"),
    ("memory too small", _set("resources.memory", 8), "/resources/memory"),
    ("memory too large", _set("resources.memory", 65537), "/resources/memory"),
    ("memory boolean", _set("resources.memory", True), "/resources/memory"),
    ("cpu zero", _set("resources.cpu", 0), "/resources/cpu"),
    ("gpu string", _set("resources.gpu", "yes"), "/resources/gpu"),
    ("resource typo", _set("resources.memoryMb", 512), "/resources/memoryMb"),
]


@pytest.mark.parametrize(("case", "mutate", "pointer"), BAD, ids=[b[0] for b in BAD])
def test_every_bad_field_is_named(case: str, mutate: Any, pointer: str) -> None:
    doc: Any = None
    if mutate is not None:
        doc = copy.deepcopy(python_manifest())
        mutate(doc)
    with pytest.raises(ManifestError) as caught:
        parse_manifest(doc)
    assert caught.value.pointer == pointer, str(caught.value)
    assert caught.value.problem and caught.value.fix
    assert str(caught.value).startswith(f"sovra-algorithm.json{pointer}: ")


ONNX_BAD = [
    ("model missing", _set("model", ...), "/model"),
    ("model not onnx", _set("model", "model.bin"), "/model"),
    ("inputMap missing", _set("inputMap", ...), "/inputMap"),
    ("column not an input", _set("inputMap.features", ["python", "age"]), "/inputMap/features/1"),
    ("outputMap unknown field", _set("outputMap.label", "nope"), "/outputMap/label"),
    ("outputMap list unknown", _set("outputMap.probabilities", ["pData", "x"]), "/outputMap/probabilities/1"),
    ("entrypoint on onnx", _set("entrypoint", "main.py"), "/entrypoint"),
]


@pytest.mark.parametrize(("case", "mutate", "pointer"), ONNX_BAD, ids=[b[0] for b in ONNX_BAD])
def test_onnx_fields(case: str, mutate: Any, pointer: str) -> None:
    doc = onnx_manifest()
    mutate(doc)
    with pytest.raises(ManifestError) as caught:
        parse_manifest(doc)
    assert caught.value.pointer == pointer, str(caught.value)


@pytest.mark.parametrize("image", ["sha256:abc", "alpine:3", "sha256:" + "AB" * 32, None])
def test_oci_needs_an_image_digest(image: Any) -> None:
    doc = oci_manifest()
    doc["image"] = image
    with pytest.raises(ManifestError) as caught:
        parse_manifest(doc)
    assert caught.value.pointer == "/image"

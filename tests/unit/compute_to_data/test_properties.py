"""Properties over generated input: unpack never writes outside its folder; the gate never raises."""

from __future__ import annotations

import io
import json
import os
import tarfile
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compute_to_data.bundle import BundleError, unpack
from compute_to_data.gate import GateRequest, gate
from compute_to_data.manifest import MANIFEST_FILE, ManifestError, parse_manifest

MANIFEST = {"name": "p", "version": "1", "kind": "python", "entrypoint": "main.py", "inputs": ["x"],
            "outputs": [{"name": "y", "scope": "subject", "schema": {"type": "number"}},
                        {"name": "m", "scope": "aggregate", "source": "y", "reducer": "mean", "bounds": [0, 1]}]}

segment = st.sampled_from(["..", ".", "", "a", "b", "main.py", MANIFEST_FILE, "/", "~", "lib"])
names = st.lists(segment, min_size=1, max_size=4).map("/".join)
kinds = st.sampled_from([tarfile.REGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE])


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(names, kinds), max_size=6))
def test_unpack_stays_inside_its_folder(entries: list[tuple[str, bytes]]) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        archive = root / "x.tar.gz"
        with tarfile.open(archive, "w:gz") as tar:
            for name, kind in [(MANIFEST_FILE, tarfile.REGTYPE), ("main.py", tarfile.REGTYPE), *entries]:
                info = tarfile.TarInfo(name)
                info.type = kind
                body = json.dumps(MANIFEST).encode() if name == MANIFEST_FILE else b"#"
                info.size = len(body) if kind == tarfile.REGTYPE else 0
                info.linkname = "../../etc/passwd" if kind in (tarfile.SYMTYPE, tarfile.LNKTYPE) else ""
                tar.addfile(info, io.BytesIO(body) if kind == tarfile.REGTYPE else None)
        dest = root / "inner" / "dest"
        try:
            unpack(archive, dest)
        except (BundleError, ManifestError):
            assert list(dest.iterdir()) == []
        written = {p for p in root.rglob("*")} - {archive, root / "inner", dest}
        assert all(p.is_relative_to(dest) and not p.is_symlink() for p in written)
        assert all(os.stat(p).st_nlink == 1 for p in written if p.is_file())


RECORDS = [{"_record": f"r{i}", "x": f"value number {i}"} for i in range(4)]
REQUEST = GateRequest(manifest=parse_manifest(MANIFEST), records=RECORDS,
                      record_subjects={f"r{i}": f"s{i}" for i in range(4)}, results_jsonl=b"", epsilon=1.0,
                      min_aggregation=2, max_output_bytes=10_000)
json_values = st.recursive(st.none() | st.booleans() | st.floats(allow_nan=False) | st.integers() | st.text(),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
                           max_leaves=8)
rows = st.dictionaries(st.sampled_from(["_record", "y", "m", "z"]), json_values | st.sampled_from(["r0", "r1", "r2"]))


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.binary(max_size=300),
                 st.lists(rows, max_size=5).map(lambda rs: "\n".join(json.dumps(r) for r in rs).encode())))
def test_the_gate_never_raises_and_never_releases_undeclared_data(results: bytes) -> None:
    from dataclasses import replace

    outcome = gate(replace(REQUEST, results_jsonl=results))
    if outcome.released:
        assert set(outcome.aggregates) <= {"m"}
        for result in outcome.subject_results.values():
            assert set(result) <= {"y"}
    else:
        assert outcome.reasons and not outcome.aggregates and not outcome.subject_results


_QUICK_SCHEMAS = [
    {"type": "number", "minimum": 0, "maximum": 1},
    {"type": "integer", "exclusiveMinimum": 0},
    {"type": "number", "exclusiveMaximum": 5.5},
    {"type": "boolean"},
    {"type": "string"},
]


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(_QUICK_SCHEMAS),
       st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-5, 5), st.booleans(), st.text(max_size=3),
                 st.none()))
def test_the_gates_quick_schema_check_never_accepts_what_jsonschema_refuses(schema, value) -> None:
    from jsonschema.validators import validator_for

    from compute_to_data.gate import _quick_check

    quick = _quick_check(schema)
    assert quick is not None
    if quick(value):
        assert validator_for(schema)(schema).is_valid(value), (schema, value)


NUMERIC_MANIFEST = {**MANIFEST, "outputs": [
    {"name": "y", "scope": "subject", "schema": {"type": "number", "minimum": 0, "maximum": 1}},
    {"name": "w", "scope": "subject", "schema": {"type": "number"}},
    {"name": "m", "scope": "aggregate", "source": "y", "reducer": "mean", "bounds": [0, 1]}]}
NUMERIC_RECORDS = [{"_record": f"r{i}", "a": i / 10, "b": 0.5} for i in range(5)]
NUMERIC_REQUEST = GateRequest(manifest=parse_manifest(NUMERIC_MANIFEST), records=NUMERIC_RECORDS,
                              record_subjects={f"r{i}": f"s{i}" for i in range(5)}, results_jsonl=b"", epsilon=1.0,
                              min_aggregation=2, max_output_bytes=10_000)
numeric_rows = st.fixed_dictionaries(
    {"_record": st.sampled_from(["r0", "r1", "r2", "r3", "r4", "r9"]),
     "y": st.sampled_from([0.0, 0.1, 0.5, 1.0, 1.5, 0.3]), "w": st.sampled_from([0.5, 0.2, 3, "x"])},
    optional={"z": st.just(1.0)})
result_lines = st.one_of(
    numeric_rows.map(lambda r: json.dumps(r).encode()),
    numeric_rows.map(lambda r: json.dumps({k: v for k, v in r.items() if k != "_record"}).encode()),
    st.sampled_from([b"", b"  ", b"[1, 2]", b"not json", b'{"_record": "r1", "y": NaN}', b'{"_record": "r0"}\r',
                     b'{"_record": "r1", "y": 0.5, "w": 1e400}', b'{"_record": "r2", "y": 0.5}, {"_record": "r3"}']))


@settings(max_examples=300, deadline=None)
@given(st.lists(result_lines, max_size=7), st.booleans())
def test_the_gates_fast_paths_decide_exactly_as_the_line_by_line_path(lines: list[bytes], final_newline: bool) -> None:
    """The whole-file parse, the whole-column rows and the column-wise verbatim check are shortcuts for files a
    runner usually writes; on any file they must give the same verdict, reasons and results as the slow path."""
    from dataclasses import replace
    from unittest import mock

    import numpy as np

    from compute_to_data import gate as gate_module

    results = b"\n".join(lines) + (b"\n" if final_newline and lines else b"")
    request = replace(NUMERIC_REQUEST, results_jsonl=results)
    fast = gate(request, rng=np.random.default_rng(7))
    with mock.patch.object(gate_module, "_parse_plain", lambda raw, count: None), \
            mock.patch.object(gate_module, "_plain_rows", lambda parsed, known: None), \
            mock.patch.object(gate_module, "_columns", lambda rows: None):
        slow = gate(request, rng=np.random.default_rng(7))
    assert (fast.released, fast.reasons, fast.subject_results, fast.aggregates) == \
        (slow.released, slow.reasons, slow.subject_results, slow.aggregates)

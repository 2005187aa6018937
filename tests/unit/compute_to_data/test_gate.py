"""The release gate: schema, verbatim data, minimum aggregation, calibrated noise, size caps; refusals, not crashes."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from compute_to_data.gate import GateRequest, gate, noise_scale, sensitivity
from compute_to_data.manifest import Manifest, parse_manifest

SECRET = "Alice Wonderland, 12 Rabbit Hole"


def manifest(*aggregates: dict[str, Any], subject: list[dict[str, Any]] | None = None) -> Manifest:
    return parse_manifest({
        "name": "m", "version": "1", "kind": "python", "entrypoint": "main.py", "inputs": ["name", "years"],
        "outputs": (subject or [
            {"name": "score", "scope": "subject", "schema": {"type": "number", "minimum": 0, "maximum": 10}},
            {"name": "track", "scope": "subject", "schema": {"type": "string", "maxLength": 40}},
        ]) + list(aggregates),
    })


MEAN = {"name": "meanScore", "scope": "aggregate", "source": "score", "reducer": "mean", "bounds": [0, 10]}
SUM = {"name": "scoreSum", "scope": "aggregate", "source": "score", "reducer": "sum", "bounds": [0, 10]}
COUNT = {"name": "tracked", "scope": "aggregate", "source": "track", "reducer": "count"}
HIST = {"name": "scoreHist", "scope": "aggregate", "source": "score", "reducer": "histogram", "bounds": [0, 10],
        "bins": [0, 5, 10]}

RECORDS = [{"_record": f"r{i}", "name": f"Student number {i}", "years": i} for i in range(1, 6)]
SUBJECTS = {f"r{i}": f"subject-{i}" for i in range(1, 6)}


def jsonl(*rows: dict[str, Any]) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


def scores(*values: float) -> bytes:
    return jsonl(*({"_record": f"r{i}", "score": v, "track": "data"} for i, v in enumerate(values, start=1)))


def request(results: bytes, m: Manifest | None = None, **changes: Any) -> GateRequest:
    base = GateRequest(manifest=m or manifest(MEAN), records=RECORDS, record_subjects=SUBJECTS,
                       results_jsonl=results, epsilon=1.0, min_aggregation=2, max_output_bytes=1 << 20)
    return replace(base, **changes)


def refused(outcome: Any, *fragments: str) -> None:
    assert not outcome.released
    assert not outcome.aggregates and not outcome.subject_results and outcome.epsilon_charged == 0
    text = " | ".join(outcome.reasons)
    for fragment in fragments:
        assert fragment in text, text
    assert SECRET not in text


def test_release_with_all_reducers() -> None:
    m = manifest(MEAN, SUM, COUNT, HIST)
    outcome = gate(request(scores(1, 2, 3, 4, 9), m, epsilon=0.8), np.random.default_rng(7))
    assert outcome.released, outcome.reasons
    assert outcome.reasons == []
    assert outcome.epsilon_charged == 0.8 and outcome.records_used == 5 and outcome.mechanism == "laplace"
    assert set(outcome.aggregates) == {"meanScore", "scoreSum", "tracked", "scoreHist"}
    assert 0 <= outcome.aggregates["meanScore"] <= 10
    assert isinstance(outcome.aggregates["scoreHist"], list) and len(outcome.aggregates["scoreHist"]) == 2
    share = 0.8 / 4
    assert outcome.noise["meanScore"] == {"scale": pytest.approx(10 / 5 / share), "sensitivity": 2.0,
                                          "epsilon": pytest.approx(share)}
    assert outcome.noise["scoreSum"]["sensitivity"] == 10 and outcome.noise["tracked"]["sensitivity"] == 1
    assert outcome.noise["scoreHist"]["scale"] == pytest.approx(1 / share)
    assert outcome.subject_results["subject-5"] == {"score": 9, "track": "data"}


def test_subject_results_go_to_their_subject_only() -> None:
    outcome = gate(request(jsonl({"_record": "r2", "score": 7.5}, {"_record": "r1", "score": 1, "track": "web"},
                                 {"_record": "r3"}), manifest(MEAN)))
    assert outcome.released, outcome.reasons
    assert outcome.subject_results == {"subject-2": {"score": 7.5}, "subject-1": {"score": 1, "track": "web"},
                                       "subject-3": {}}


def test_several_records_of_one_subject() -> None:
    subjects = {**SUBJECTS, "r2": "subject-1"}
    outcome = gate(request(scores(1, 2), record_subjects=subjects))
    assert outcome.released
    assert outcome.subject_results == {"subject-1": {"_records": [{"score": 1, "track": "data"},
                                                                 {"score": 2, "track": "data"}]}}


def test_schema_mismatch_is_refused_without_echoing_the_value() -> None:
    outcome = gate(request(jsonl({"_record": "r1", "score": 1}, {"_record": "r2", "score": 3, "track": SECRET + "!"*9}),
                           manifest(MEAN)))
    refused(outcome, "line 2", "'track'", "maxLength")  # the reason names the keyword, not the value
    outcome = gate(request(scores(1, 11)))
    refused(outcome, "'score'", "maximum")


def test_undeclared_fields_are_refused_without_naming_them() -> None:
    outcome = gate(request(jsonl({"_record": "r1", "score": 1, SECRET: 1}, {"_record": "r2", "score": 2})))
    refused(outcome, "line 1", "not a declared subject-scope output")
    # the algorithm may not write an aggregate itself either
    refused(gate(request(jsonl({"_record": "r1", "meanScore": 5}, {"_record": "r2", "score": 2}))),
            "not a declared subject-scope output")


@pytest.mark.parametrize(("results", "fragment"), [
    (jsonl({"_record": "r9", "score": 1}), "not one of the input records"),
    (jsonl({"score": 1}), "'_record' is missing"),
    (jsonl({"_record": 1, "score": 1}), "'_record' is missing"),
    (jsonl({"_record": "r1", "score": 1}, {"_record": "r1", "score": 2}), "has a result row already"),
    (b'{"_record": "r1", "score": 1}\n{not json}\n', "line 2 is not JSON"),
    (b'{"_record": "r1", "score": NaN}\n', "line 1 is not JSON"),
    (b'{"_record": "r1", "score": Infinity}\n', "line 1 is not JSON"),
    (b'[1, 2]\n', "not a JSON object"),
    (b'{"_record": "r1", "score": 1}\n\xff\xfe\n', "not UTF-8"),
    (b"[" * 100_000, "line 1 is not JSON"),
    (jsonl(*({"_record": f"r{i}"} for i in range(1, 7))), "more result rows than the 5 input records"),
], ids=["unknown record", "no record", "record not string", "duplicate", "bad json", "nan", "infinity",
        "not object", "not utf8", "deep nesting", "too many rows"])
def test_bad_results_are_refused(results: bytes, fragment: str) -> None:
    refused(gate(request(results)), fragment)


def test_blank_lines_and_no_trailing_newline_are_fine() -> None:
    assert gate(request(b'\n{"_record": "r1", "score": 1}\n\n{"_record": "r2", "score": 2}')).released


def test_verbatim_strings_are_refused() -> None:
    m = manifest(subject=[{"name": "note", "scope": "subject", "schema": {"type": "string"}}])
    records = [*RECORDS, {"_record": "r6", "name": SECRET, "years": 3}]
    subjects = {**SUBJECTS, "r6": "subject-6"}
    leak = request(jsonl({"_record": "r1", "note": f"see {SECRET} here"}), m, records=records,
                   record_subjects=subjects)
    refused(gate(leak), "line 1", "'note'", "verbatim")
    exact = request(jsonl({"_record": "r1", "note": "Student number 3"}), m)
    refused(gate(exact), "verbatim")
    nested = parse_manifest({**_doc(m), "outputs": [{"name": "notes", "scope": "subject",
                                                     "schema": {"type": "array"}}]})
    refused(gate(request(jsonl({"_record": "r1", "notes": [{"x": "Student number 2"}]}), nested)), "verbatim")
    short = request(jsonl({"_record": "r1", "note": "Student"}), m)  # under 8 characters: ordinary words
    assert gate(short).released


def _doc(m: Manifest) -> dict[str, Any]:
    from compute_to_data.manifest import manifest_to_json
    return manifest_to_json(m)


def test_rows_repeating_a_record_are_refused() -> None:
    m = manifest(subject=[{"name": "a", "scope": "subject", "schema": {"type": ["string", "number"]}},
                          {"name": "b", "scope": "subject", "schema": {"type": ["string", "number"]}},
                          {"name": "c", "scope": "subject", "schema": {"type": "number"}}])
    records = [{"_record": "r1", "name": "Bo", "years": 4}, {"_record": "r2", "name": "Al", "years": 2}]
    subjects = {"r1": "s1", "r2": "s2"}
    same = request(jsonl({"_record": "r1", "a": 2, "b": "Al"}), m, records=records, record_subjects=subjects)
    refused(gate(same), "repeats an input record")
    superset = request(jsonl({"_record": "r2", "a": "Bo", "b": 4.0, "c": 0.5}), m, records=records,
                       record_subjects=subjects)
    refused(gate(superset), "repeats an input record")
    fine = request(jsonl({"_record": "r1", "a": 4, "b": 0.5}), m, records=records, record_subjects=subjects)
    assert gate(fine).released


def test_rows_repeating_a_numeric_record_are_refused_on_the_vectorised_path() -> None:
    """Numbers-only records and rows take a numpy path; it must refuse exactly what the general path refuses."""
    m = manifest(subject=[{"name": n, "scope": "subject", "schema": {"type": "number"}} for n in ("a", "b", "c")])
    records = [{"_record": f"r{i}", "x": float(i), "y": -0.0 if i == 2 else i * 10, "z": 0.5} for i in range(1, 400)]
    subjects = {f"r{i}": f"s{i}" for i in range(1, 400)}

    def outcome(*rows: dict[str, Any]) -> Any:
        return gate(request(jsonl(*rows), m, records=records, record_subjects=subjects))

    reordered = outcome({"_record": "r1", "a": 0.5, "b": 10, "c": 1})  # r1's values in another order, 10 == 10.0
    refused(reordered, "line 1: the row repeats an input record's values")
    signed_zero = outcome({"_record": "r5", "a": 2, "b": 0.0, "c": 0.5})  # r2's -0.0 equals 0.0
    refused(signed_zero, "line 1: the row repeats an input record's values")
    later = outcome({"_record": "r1", "a": 1, "b": 2, "c": 3}, {"_record": "r2", "a": 399, "b": 3990, "c": 0.5})
    refused(later, "line 2: the row repeats")
    assert "line 1" not in " ".join(later.reasons)
    assert outcome({"_record": "r1", "a": 1, "b": 10}).released  # two of r1's three values: not the record
    assert outcome({"_record": "r1", "a": 1, "b": 10, "c": 0.25}).released


def test_min_aggregation_counts_rows_that_carry_the_source() -> None:
    results = jsonl({"_record": "r1", "score": 1}, {"_record": "r2", "track": "x"}, {"_record": "r3"})
    refused(gate(request(results, min_aggregation=2)), "'meanScore' covers fewer than 2 records")
    assert gate(request(results, min_aggregation=1)).released
    refused(gate(request(scores(1, 2, 3), min_aggregation=4)), "fewer than 4")
    refused(gate(request(b"", min_aggregation=0)), "fewer than 1")  # never an aggregate over nobody


@pytest.mark.parametrize("epsilon", [None, 0.0, -1.0, math.nan, math.inf])
def test_aggregates_need_a_positive_epsilon(epsilon: float | None) -> None:
    refused(gate(request(scores(1, 2, 3), epsilon=epsilon)), "dpEpsilon")


def test_no_aggregates_no_epsilon_no_charge() -> None:
    m = manifest()
    outcome = gate(request(scores(1, 2), m, epsilon=None))
    assert outcome.released and outcome.epsilon_charged == 0 and outcome.aggregates == {} and outcome.noise == {}
    assert gate(request(scores(1, 2), m, epsilon=3.0)).epsilon_charged == 0


def test_max_output_bytes() -> None:
    many_bins = {**HIST, "bins": list(range(11))}
    refused(gate(request(scores(1, 2, 3), manifest(many_bins), max_output_bytes=50)), "over maxOutputBytes 50")
    refused(gate(request(jsonl({"_record": "r1", "track": "x" * 40}), manifest(), max_output_bytes=30)),
            "a subject's result is")
    assert gate(request(scores(1, 2, 3), manifest(many_bins), max_output_bytes=1000)).released


def test_a_record_without_subject_is_refused() -> None:
    refused(gate(request(scores(1, 2), record_subjects={"r1": "subject-1"})), "maps to no data subject")


def test_the_gate_never_raises() -> None:
    broken = request(scores(1, 2), records=[None, 5])  # type: ignore[list-item]
    outcome = gate(broken)
    refused(outcome, "could not check the output")


def test_gaussian_scale_and_bad_delta() -> None:
    outcome = gate(request(scores(1, 2, 3, 4), manifest(SUM), mechanism="gaussian", delta=1e-5, epsilon=0.5))
    assert outcome.released and outcome.mechanism == "gaussian"
    expected = 10 * math.sqrt(2 * math.log(1.25 / 1e-5)) / 0.5
    assert outcome.noise["scoreSum"] == {"scale": pytest.approx(expected), "sensitivity": 10,
                                         "epsilon": 0.5, "delta": 1e-5}
    refused(gate(request(scores(1, 2), mechanism="gaussian", delta=0)), "delta")


def test_sensitivities() -> None:
    m = manifest(MEAN, SUM, COUNT, HIST, {**SUM, "name": "negSum", "bounds": [-7, 3]})
    by_name = {o.name: o for o in m.aggregate_outputs()}
    assert sensitivity(by_name["meanScore"], 20) == 0.5
    assert sensitivity(by_name["scoreSum"], 20) == 10
    assert sensitivity(by_name["negSum"], 20) == 7
    assert sensitivity(by_name["tracked"], 20) == 1 and sensitivity(by_name["scoreHist"], 20) == 1
    assert noise_scale(2.0, 0.5, "laplace", 1e-6) == 4.0


def test_values_are_clipped_into_bounds_before_reducing() -> None:
    m = manifest({**SUM, "bounds": [0, 1]}, subject=[{"name": "score", "scope": "subject",
                                                      "schema": {"type": "number"}}])
    results = jsonl(*({"_record": f"r{i}", "score": 100} for i in (1, 2, 3)))
    sums = [gate(request(results, m, epsilon=1000.0), np.random.default_rng(i)).aggregates["scoreSum"]
            for i in range(50)]
    assert abs(float(np.mean(sums)) - 3.0) < 0.01  # clipped to 1 each, tiny noise at epsilon 1000


@pytest.mark.parametrize(("mechanism", "spread"), [
    ("laplace", lambda noise: float(np.mean(np.abs(noise)))),  # E|Laplace(b)| = b
    ("gaussian", lambda noise: float(np.std(noise))),  # sigma
])
def test_empirical_noise_matches_the_calibration(mechanism: str, spread: Any) -> None:
    rng = np.random.default_rng(20261122)
    req = request(scores(1, 2, 3, 4, 5), manifest(SUM, COUNT), epsilon=2.0, mechanism=mechanism, delta=1e-5)
    draws = [gate(req, rng) for _ in range(3000)]
    sum_noise = np.array([d.aggregates["scoreSum"] - 15 for d in draws])
    count_noise = np.array([d.aggregates["tracked"] - 5 for d in draws if d.aggregates["tracked"] > 0])
    scale_sum, scale_count = draws[0].noise["scoreSum"]["scale"], draws[0].noise["tracked"]["scale"]
    assert scale_sum == pytest.approx(noise_scale(10, 1.0, mechanism, 1e-5))
    assert abs(float(np.mean(sum_noise))) < 0.1 * scale_sum
    assert 0.9 * scale_sum < spread(sum_noise) < 1.1 * scale_sum
    if mechanism == "laplace":  # count noise, b = 1 / (2 / 2); clamping at 0 is rare with 5 records
        assert 0.85 * scale_count < spread(count_noise) < 1.15 * scale_count


def test_a_fresh_rng_is_used_when_none_is_given() -> None:
    req = request(scores(1, 2, 3, 4, 5), manifest(SUM))
    assert len({gate(req).aggregates["scoreSum"] for _ in range(5)}) == 5

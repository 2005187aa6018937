"""The release gate: what the connector lets out of a finished run, decided by the connector, never the algorithm.

INTERFACE (lead's skeleton, filled in by the c2d-core helper). Checks, each refusing with a reason:
- results.jsonl parses, each row's `_record` is one of the input records and appears once, every field is a
  declared subject-scope output and matches its schema (jsonschema);
- no verbatim input data: no output string equal to (or containing) an input string value of length >= 8, and no
  row that equals an input record's values;
- aggregates: n (records with a value) >= min_aggregation, else refused; value clipped into bounds, reducer
  applied, Laplace (or Gaussian with delta) noise calibrated to the reducer's sensitivity and epsilon / number of
  aggregates (sequential composition) added by the connector; epsilon charged = the job's epsilon (0 if no
  aggregates);
- total released bytes (aggregate JSON) <= max_output_bytes;
- subject results map back from `_record` to the subject id and go only to that subject.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from compute_to_data.manifest import Manifest


@dataclass(frozen=True)
class GateRequest:
    manifest: Manifest
    records: Sequence[Mapping[str, Any]]  # exactly what was written to /input/records.jsonl (with `_record`)
    record_subjects: Mapping[str, str]  # `_record` -> subject id
    results_jsonl: bytes  # /output/results.jsonl as the sandbox left it
    epsilon: float | None  # None: no aggregates may be released
    min_aggregation: int
    max_output_bytes: int
    mechanism: Literal["laplace", "gaussian"] = "laplace"
    delta: float = 1e-6


@dataclass
class GateOutcome:
    released: bool
    reasons: list[str] = field(default_factory=list)  # why refused (empty when released)
    aggregates: dict[str, Any] = field(default_factory=dict)  # name -> noised value (what B receives)
    subject_results: dict[str, dict[str, Any]] = field(default_factory=dict)  # subject id -> {field: value}
    epsilon_charged: float = 0.0
    noise: dict[str, dict[str, float]] = field(default_factory=dict)  # name -> {mechanism scale, sensitivity}
    records_used: int = 0


def gate(request: GateRequest, rng: np.random.Generator | None = None) -> GateOutcome:
    raise NotImplementedError

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

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

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

    def subject_outputs(self) -> tuple[OutputSpec, ...]:
        return tuple(o for o in self.outputs if o.scope == "subject")

    def aggregate_outputs(self) -> tuple[OutputSpec, ...]:
        return tuple(o for o in self.outputs if o.scope == "aggregate")


def parse_manifest(data: Any) -> Manifest:
    """Validate and parse a manifest document; raise ManifestError naming the first problem."""
    raise NotImplementedError


def manifest_to_json(manifest: Manifest) -> dict[str, Any]:
    """The manifest back as its JSON document (stored with a job, shown on the APIs)."""
    raise NotImplementedError

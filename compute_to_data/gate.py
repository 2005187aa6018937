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

Beyond the skeleton: a subject with several records gets {"_records": [result, ...]}; every refusal reason is
shown to the algorithm provider, so it names lines, declared outputs and schema keywords, never a written value
or an undeclared field name; with aggregates, `mechanism` says which noise was added and `noise` its scale,
sensitivity and per-output epsilon; post-processing clamps a noised mean into its bounds and counts at 0.
"""

from __future__ import annotations

import json
import math
import secrets
from collections import Counter, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import repeat
from operator import attrgetter
from typing import Any, Literal, NamedTuple

import numpy as np
import orjson
from jsonschema.exceptions import best_match
from jsonschema.validators import validator_for

from compute_to_data.manifest import Manifest, OutputSpec
from compute_to_data.signing import canonical_json


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
    index: InputIndex | None = None  # index_input(records), when the caller built it already


@dataclass
class GateOutcome:
    released: bool
    reasons: list[str] = field(default_factory=list)  # why refused (empty when released)
    aggregates: dict[str, Any] = field(default_factory=dict)  # name -> noised value (what B receives)
    subject_results: dict[str, dict[str, Any]] = field(default_factory=dict)  # subject id -> {field: value}
    epsilon_charged: float = 0.0
    noise: dict[str, dict[str, float]] = field(default_factory=dict)  # name -> {mechanism scale, sensitivity}
    records_used: int = 0
    mechanism: str = ""  # "laplace" | "gaussian" when aggregates were noised


MAX_REASONS = 20
VERBATIM_MIN_CHARS = 8
MULTIPLE_RECORDS_KEY = "_records"  # a subject with several records gets {"_records": [result, ...]}


def gate(request: GateRequest, rng: np.random.Generator | None = None) -> GateOutcome:
    """Decide what leaves a finished run. Never raises: a bad output (or a gate bug) is a refusal with reasons.

    Reasons are shown to the algorithm provider, so they name lines, declared outputs and schema keywords, never
    a value the algorithm wrote (which could carry data) or an undeclared field name.
    """
    try:
        return _gate(request, rng if rng is not None else np.random.default_rng(secrets.randbits(128)))
    except Exception as exc:  # fail closed: nothing is released when the gate itself cannot decide
        return GateOutcome(released=False, reasons=[f"the release gate could not check the output "
                                                    f"({type(exc).__name__}); nothing was released"])


class _Problems:
    def __init__(self) -> None:
        self.items: list[str] = []
        self.dropped = 0

    def add(self, reason: str) -> None:
        if len(self.items) < MAX_REASONS:
            self.items.append(reason)
        else:
            self.dropped += 1

    def __bool__(self) -> bool:
        return bool(self.items)

    def refusal(self) -> GateOutcome:
        more = [f"... and {self.dropped} more problems"] if self.dropped else []
        return GateOutcome(released=False, reasons=self.items + more)


class _Row(NamedTuple):  # a tuple: 10,000-row outputs build one per row
    line: int
    record: str
    fields: dict[str, Any]
    chars: int  # length of its line in results.jsonl, in bytes


# Canonical JSON of a parsed line is at most ~4.5x the line's characters (a number like 9e15 prints as
# 9000000000000000.0; a 1-character non-ASCII letter is up to 4 bytes); below this share of maxOutputBytes a
# result cannot be over the cap and is not re-encoded just to be measured.
_SURELY_SMALL = 8


def _gate(request: GateRequest, rng: np.random.Generator) -> GateOutcome:
    problems = _Problems()
    parsed = _parse_lines(request.results_jsonl, len(request.records), problems)
    if problems:
        return problems.refusal()
    index = request.index if request.index is not None else index_input(request.records)
    rows, checked, columns = _check_rows(request, index, parsed, problems)
    _check_verbatim(index, rows, problems, columns)
    aggregates, noise = _aggregates(request, rows, checked, rng, problems)
    subject_results = _subject_results(request, rows, problems)
    released_bytes = len(canonical_json(aggregates))
    if released_bytes > request.max_output_bytes:
        problems.add(f"the aggregate outputs are {released_bytes} bytes, over maxOutputBytes "
                     f"{request.max_output_bytes}")
    if problems:
        return problems.refusal()
    charged = float(request.epsilon or 0.0) if request.manifest.aggregate_outputs() else 0.0
    return GateOutcome(released=True, aggregates=aggregates, subject_results=subject_results,
                       epsilon_charged=charged, noise=noise, records_used=len(rows),
                       mechanism=request.mechanism if aggregates else "")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


_DECODER = json.JSONDecoder(parse_constant=_reject_constant)  # json.loads with options builds one per call


def _parse_line(line: bytes) -> Any:
    """orjson for speed; the standard decoder where orjson refuses (1e400, deep nesting), so the verdict is the
    standard one. orjson reads an integer beyond 64 bits as a float."""
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError:
        return _DECODER.decode(line.decode("utf-8"))


def _parse_lines(raw: bytes, record_count: int, problems: _Problems) -> list[tuple[int, int, dict[str, Any]]]:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        problems.add("results.jsonl is not UTF-8")
        return []
    quick = _parse_plain(raw, record_count)
    if quick is not None:
        return quick
    parsed: list[tuple[int, int, dict[str, Any]]] = []
    for number, line in enumerate(raw.split(b"\n"), start=1):
        if not line.strip():
            continue
        if len(parsed) >= record_count:
            problems.add(f"results.jsonl has more result rows than the {record_count} input records")
            return []
        try:
            row = _parse_line(line)
        except (ValueError, RecursionError):
            problems.add(f"results.jsonl line {number} is not JSON (NaN and Infinity are not allowed either)")
            continue
        if not isinstance(row, dict):
            problems.add(f"results.jsonl line {number} is not a JSON object")
            continue
        parsed.append((number, len(line), row))
    return parsed


def _parse_plain(raw: bytes, record_count: int) -> list[tuple[int, int, dict[str, Any]]] | None:
    """The usual file (one JSON object per line, no blank line, orjson reads every line) in C-level passes; None
    otherwise, and _parse_lines goes line by line for the verdict and the reasons. Same rows either way: a line
    orjson reads is one the line-by-line path reads with orjson too."""
    lines = raw[:-1].split(b"\n") if raw.endswith(b"\n") else raw.split(b"\n")
    if not raw or len(lines) > record_count:
        return None
    try:
        rows = list(map(orjson.loads, lines))
    except orjson.JSONDecodeError:
        return None
    if set(map(type, rows)) != {dict}:
        return None
    return list(zip(range(1, len(rows) + 1), map(len, lines), rows, strict=True))


_QUICK_KEYS = frozenset({"type", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "$schema",
                         "title", "description"})


def _quick_check(schema: Mapping[str, Any]) -> Any:
    """A predicate that says True only for values the schema surely accepts (a bounded number, a boolean, a
    string), or None when the schema says more than that. A False sends the value through jsonschema, which
    gives the verdict and the message; so this only saves time on 10,000-row outputs of plain scores."""
    kind = schema.get("type")
    if not set(schema) <= _QUICK_KEYS or kind not in ("number", "integer", "boolean", "string"):
        return None
    low, high = schema.get("minimum"), schema.get("maximum")
    x_low, x_high = schema.get("exclusiveMinimum"), schema.get("exclusiveMaximum")
    bounds = (low, high, x_low, x_high)
    if kind in ("boolean", "string"):
        wanted = bool if kind == "boolean" else str
        return lambda v: type(v) is wanted
    if not all(b is None or (type(b) in (int, float) and math.isfinite(b)) for b in bounds):
        return None

    def check(value: Any) -> bool:
        if type(value) not in (int, float) or not math.isfinite(value):
            return False
        if kind == "integer" and value != int(value):
            return False
        return ((low is None or value >= low) and (high is None or value <= high)
                and (x_low is None or value > x_low) and (x_high is None or value < x_high))

    return check


def _quick_column(schema: Mapping[str, Any]) -> Callable[[list[Any]], bool] | None:
    """Like _quick_check, for a whole column at once (numpy): True only when every value surely matches."""
    kind = schema.get("type")
    if _quick_check(schema) is None:
        return None
    if kind in ("boolean", "string"):
        wanted = {bool} if kind == "boolean" else {str}
        return lambda values: set(map(type, values)) <= wanted
    low, high = schema.get("minimum"), schema.get("maximum")
    x_low, x_high = schema.get("exclusiveMinimum"), schema.get("exclusiveMaximum")

    def check(values: list[Any]) -> bool:
        if set(map(type, values)) != {float}:  # ints (possibly beyond a float's precision) go value by value
            return False
        a = np.asarray(values, dtype=float)
        if not np.isfinite(a).all() or (kind == "integer" and not (a == np.floor(a)).all()):
            return False
        return bool((low is None or (a >= low).all()) and (high is None or (a <= high).all())
                    and (x_low is None or (a > x_low).all()) and (x_high is None or (a < x_high).all()))

    return check


def _check_rows(request: GateRequest, index: InputIndex, parsed: list[tuple[int, int, dict[str, Any]]],
                problems: _Problems) -> tuple[list[_Row], dict[str, list[Any]], dict[str, list[Any]] | None]:
    """The rows with a known, unique `_record`; the columns that passed the quick check whole (every value a
    finite number within the schema's bounds, or all booleans, or all strings), which the aggregates reuse; and
    all columns when every row has the same fields (else None)."""
    known = index.keys
    specs = {o.name: o for o in request.manifest.subject_outputs()}
    rows = _plain_rows(parsed, known)
    if rows is None:
        rows = _rows_one_by_one(parsed, known, problems)
    names: set[str] = set().union(*map(_fields_of, rows))
    if names - specs.keys():
        for row in rows:
            if not row.fields.keys() <= specs.keys():
                problems.add(f"results.jsonl line {row.line}: a field that is not a declared subject-scope output "
                             f"(the manifest declares: {', '.join(sorted(specs)) or 'none'})")
    checked: dict[str, list[Any]] = {}
    columns = _columns(rows)
    for name in sorted(names & specs.keys()):
        quick = _quick_column(specs[name].schema)
        column = columns[name] if columns is not None else [row.fields[name] for row in rows if name in row.fields]
        if quick is not None and quick(column):
            checked[name] = column
            continue
        _check_values(name, specs[name].schema, [(row.line, row.fields[name]) for row in rows if name in row.fields],
                      problems)
    return rows, checked, columns


def _plain_rows(parsed: list[tuple[int, int, dict[str, Any]]], known: frozenset[str]) -> list[_Row] | None:
    """The usual case in C-level passes: every `_record` a known input key, each once; `_record` then leaves the
    rows' fields. None otherwise (nothing changed), and _rows_one_by_one says which lines are wrong."""
    numbers, chars, fields = zip(*parsed, strict=True) if parsed else ((), (), ())
    keys = list(map(dict.get, fields, repeat("_record")))
    if not (set(map(type, keys)) <= {str} and len(set(keys)) == len(keys) and known.issuperset(keys)):
        return None
    deque(map(dict.pop, fields, repeat("_record")), maxlen=0)
    return list(map(_Row, numbers, keys, fields, chars))


def _rows_one_by_one(parsed: list[tuple[int, int, dict[str, Any]]], known: frozenset[str],
                     problems: _Problems) -> list[_Row]:
    seen: set[str] = set()
    rows: list[_Row] = []
    for number, chars, row in parsed:
        key = row.pop("_record", None)
        if not isinstance(key, str) or key not in known:
            problems.add(f"results.jsonl line {number}: '_record' is missing or not one of the input records")
            continue
        if key in seen:
            problems.add(f"results.jsonl line {number}: record {key} has a result row already (one row per record)")
            continue
        seen.add(key)
        rows.append(_Row(number, key, row, chars))
    return rows


def _columns(rows: list[_Row]) -> dict[str, list[Any]] | None:
    """Every field's column in one transposition when all rows have the same fields in the same order (what a
    runner writes); None otherwise."""
    if not rows:
        return {}
    fields = list(map(_fields_of, rows))
    shapes = set(map(tuple, fields))
    if len(shapes) != 1:
        return None
    names = shapes.pop()
    return dict(zip(names, map(list, zip(*map(dict.values, fields), strict=True)), strict=True)) if names else {}


_fields_of = attrgetter("fields")


def _check_values(name: str, schema: Mapping[str, Any], column: list[tuple[int, Any]], problems: _Problems) -> None:
    """One output's values against its schema, value by value (the slow path, with a reason per bad line)."""
    validator = validator_for(schema)(schema)
    quick = _quick_check(schema)
    verdicts: dict[tuple[type, Any], bool] = {}  # scalar outputs repeat a lot (scores, labels)
    for line, value in column:
        if quick is not None and quick(value):
            continue
        cache_key = (type(value), value) if isinstance(value, str | int | float | bool) else None
        valid = verdicts.get(cache_key) if cache_key is not None else None
        if valid is None:
            valid = validator.is_valid(value)
            if cache_key is not None:
                verdicts[cache_key] = valid
        if not valid:
            error = best_match(validator.iter_errors(value))
            keyword_path = "/".join(str(p) for p in error.relative_schema_path) if error else ""
            problems.add(f"results.jsonl line {line}: output {name!r} does not match its schema "
                         f"(fails {keyword_path or 'schema'})")


# -- verbatim input data ---------------------------------------------------------------------------------------------


def _leaves(value: Any) -> list[Any]:
    """The scalars inside a JSON value (nulls left out), depth first."""
    if not isinstance(value, dict | list | tuple):
        return [] if value is None else [value]
    found: list[Any] = []
    pending = [value]
    while pending:
        current = pending.pop()
        items = current.values() if isinstance(current, dict) else current
        for item in items:
            if isinstance(item, dict | list | tuple):
                pending.append(item)
            elif item is not None:
                found.append(item)
    return found


def _token(leaf: Any) -> str | float:
    """Equal scalars give equal tokens: text as itself, numbers (and booleans) as floats, so 3 == 3.0."""
    return leaf if isinstance(leaf, str) else float(leaf)


@dataclass(frozen=True)
class InputIndex:
    """What the gate looks up in the input, built once per job from the staged records (the connector builds it
    while the sandbox runs; gate() builds it when the request brings none)."""

    keys: frozenset[str]  # the `_record` keys
    numbers_only: bool  # every record holds only ints and floats besides its key
    numeric: dict[int, set[bytes]]  # records of numbers only, two values or more: sorted float64 bytes, by count
    by_prefix: dict[str, set[str]]  # text values of VERBATIM_MIN_CHARS or more, by their first characters
    covering: dict[str | float, list[frozenset[str | float]]]  # records with text, filed under their rarest value


def index_input(records: Sequence[Mapping[str, Any]]) -> InputIndex:
    keys = frozenset(str(record.get("_record")) for record in records)
    if _numbers_only(records):
        values = [[value for name, value in record.items() if name != "_record"] for record in records]
        return InputIndex(keys, True, _sorted_bytes(values), {}, {})
    by_prefix: dict[str, set[str]] = {}
    numeric: list[list[Any]] = []  # records of numbers only: a row must equal one
    with_text: list[frozenset[str | float]] = []  # records with text: no row may hold all of one's values
    for record in records:
        leaves = [leaf for name, value in record.items() if name != "_record" for leaf in _leaves(value)]
        has_text = False
        for leaf in leaves:
            if isinstance(leaf, str):
                has_text = True
                if len(leaf) >= VERBATIM_MIN_CHARS:
                    by_prefix.setdefault(leaf[:VERBATIM_MIN_CHARS], set()).add(leaf)
        if len(leaves) < 2:
            continue
        if has_text:
            with_text.append(frozenset(_token(leaf) for leaf in leaves))
        else:
            numeric.append(leaves)
    # Each record is filed under its rarest value: a row can only hold the record if it holds that value, and common
    # values (a skill everyone has) would otherwise make every row check every record.
    frequency = Counter(token for tokens in with_text for token in tokens)
    covering: dict[str | float, list[frozenset[str | float]]] = {}
    for tokens in with_text:
        covering.setdefault(min(tokens, key=frequency.__getitem__), []).append(tokens)
    return InputIndex(keys, False, _sorted_bytes(numeric), by_prefix, covering)


def _check_verbatim(index: InputIndex, rows: list[_Row], problems: _Problems,
                    columns: Mapping[str, list[Any]] | None = None) -> None:
    """Refuse output that carries input data: a string containing an input string of 8+ characters, or a row whose
    values equal an input record's values (records of two or more values), or include all of them (when at least
    one of those is text)."""
    if index.numbers_only and columns is not None and _only_numbers(list(columns.values())):
        _check_verbatim_columns(index, rows, list(columns.values()), problems)
        return
    row_values = [list(row.fields.values()) for row in rows]
    if index.numbers_only and _only_numbers(row_values):
        _check_verbatim_numbers(index, rows, row_values, problems)
        return
    for row in rows:
        where = f"results.jsonl line {row.line}"
        row_leaves: list[Any] = []
        for name, value in row.fields.items():
            leaves = _leaves(value)
            if index.by_prefix and any(isinstance(leaf, str) and _contains_input(leaf, index.by_prefix)
                                       for leaf in leaves):
                problems.add(f"{where}: output {name!r} carries an input value verbatim")
            row_leaves.extend(leaves)
        if len(row_leaves) < 2:
            continue
        tokens = frozenset(_token(leaf) for leaf in row_leaves)
        repeats = any(candidate <= tokens for token in tokens for candidate in index.covering.get(token, ()))
        if not repeats and len(row_leaves) in index.numeric and not any(isinstance(leaf, str) for leaf in row_leaves):
            repeats = _sorted_key(row_leaves) in index.numeric[len(row_leaves)]
        if repeats:
            problems.add(f"{where}: the row repeats an input record's values")


_NUMBER_TYPES = frozenset({int, float})


def _only_numbers(value_lists: list[list[Any]]) -> bool:
    """Whether every value is an int or a float (no text, no nesting, no null, no boolean)."""
    types: set[type] = set()
    for values in value_lists:
        types.update(map(type, values))
    return types <= _NUMBER_TYPES


def _numbers_only(records: Sequence[Mapping[str, Any]]) -> bool:
    """Whether every record holds a string `_record` key and otherwise only ints and floats (one C pass each)."""
    kinds: Counter[type] = Counter()
    for record in records:
        kinds.update(map(type, record.values()))
    return set(kinds) <= _NUMBER_TYPES | {str} and kinds[str] == len(records) and all("_record" in r for r in records)


def _check_verbatim_columns(index: InputIndex, rows: list[_Row], columns: list[list[Any]],
                            problems: _Problems) -> None:
    """_check_verbatim_numbers when every row has the same number fields: the sorted rows come from the columns."""
    known = index.numeric.get(len(columns))
    if len(columns) < 2 or not known or not rows:
        return
    matrix = np.sort(np.asarray(columns, dtype=float).T, axis=1) + 0.0
    for row, sorted_values in zip(rows, matrix, strict=True):
        if sorted_values.tobytes() in known:
            problems.add(f"results.jsonl line {row.line}: the row repeats an input record's values")


def _check_verbatim_numbers(index: InputIndex, rows: list[_Row], row_values: list[list[Any]],
                            problems: _Problems) -> None:
    """The numbers-only case of _check_verbatim, vectorised: a row of two or more numbers repeats a record when its
    sorted values equal that record's sorted values (so 3 == 3.0, and -0.0 == 0.0)."""
    widths = set(map(len, row_values)) & index.numeric.keys()  # a row can only repeat a record as wide as itself
    for width, matrix in _sorted_rows([values for values in row_values if len(values) in widths]).items():
        known = index.numeric[width]
        lines = [row.line for row, values in zip(rows, row_values, strict=True) if len(values) == width]
        for line, sorted_values in zip(lines, matrix, strict=True):
            if sorted_values.tobytes() in known:
                problems.add(f"results.jsonl line {line}: the row repeats an input record's values")


def _sorted_rows(value_lists: list[list[Any]]) -> dict[int, np.ndarray]:
    """Lists of two or more numbers grouped by length, each as a matrix of sorted float rows (-0.0 made 0.0)."""
    groups: dict[int, list[list[Any]]] = {}
    for values in value_lists:
        if len(values) >= 2:
            groups.setdefault(len(values), []).append(values)
    return {width: np.sort(np.asarray(group, dtype=float), axis=1) + 0.0 for width, group in groups.items()}


def _sorted_bytes(value_lists: list[list[Any]]) -> dict[int, set[bytes]]:
    return {width: {line.tobytes() for line in matrix} for width, matrix in _sorted_rows(value_lists).items()}


def _sorted_key(values: list[Any]) -> bytes:
    return (np.sort(np.asarray(values, dtype=float)) + 0.0).tobytes()


def _contains_input(text: str, by_prefix: Mapping[str, set[str]]) -> bool:
    if len(text) < VERBATIM_MIN_CHARS or not by_prefix:
        return False
    for start in range(len(text) - VERBATIM_MIN_CHARS + 1):
        for needle in by_prefix.get(text[start:start + VERBATIM_MIN_CHARS], ()):
            if text.startswith(needle, start):
                return True
    return False


# -- aggregates with differential privacy ----------------------------------------------------------------------------


def sensitivity(spec: OutputSpec, n: int) -> float:
    """L1 (and, for one value, L2) sensitivity of the reducer over n records clipped into the bounds."""
    if spec.reducer in ("count", "histogram"):
        return 1.0
    assert spec.bounds is not None
    lo, hi = spec.bounds
    if spec.reducer == "mean":
        return (hi - lo) / n
    return max(abs(lo), abs(hi))


def noise_scale(sens: float, epsilon: float, mechanism: str, delta: float) -> float:
    """Laplace b = sensitivity / epsilon; Gaussian sigma = sensitivity * sqrt(2 ln(1.25 / delta)) / epsilon."""
    if mechanism == "gaussian":
        return sens * math.sqrt(2.0 * math.log(1.25 / delta)) / epsilon
    return sens / epsilon


def _aggregates(request: GateRequest, rows: list[_Row], checked: Mapping[str, list[Any]], rng: np.random.Generator,
                problems: _Problems) -> tuple[dict[str, Any], dict[str, dict[str, float]]]:
    specs = request.manifest.aggregate_outputs()
    if not specs:
        return {}, {}
    epsilon = request.epsilon
    if epsilon is None or not math.isfinite(epsilon) or epsilon <= 0:
        problems.add("the algorithm declares aggregate outputs but the job asks for no positive dpEpsilon; set "
                     "parameters.dpEpsilon (e.g. 0.5)")
        return {}, {}
    if request.mechanism not in ("laplace", "gaussian"):
        problems.add(f"unknown noise mechanism {request.mechanism!r}; use laplace or gaussian")
        return {}, {}
    if request.mechanism == "gaussian" and not 0 < request.delta < 1:
        problems.add("the Gaussian mechanism needs 0 < delta < 1")
        return {}, {}
    share = epsilon / len(specs)
    floor = max(1, request.min_aggregation)
    released: dict[str, Any] = {}
    noise: dict[str, dict[str, float]] = {}
    for spec in specs:
        assert spec.source is not None
        values = checked.get(spec.source)  # a column the quick check passed whole has no null in it
        if values is None:
            values = [row.fields[spec.source] for row in rows if row.fields.get(spec.source) is not None]
        if len(values) < floor:
            problems.add(f"aggregate {spec.name!r} covers fewer than {floor} records (minAggregationSize)")
            continue
        if spec.reducer != "count" and not _all_numbers(values):
            problems.add(f"aggregate {spec.name!r}: {spec.source!r} holds values that are not finite numbers")
            continue
        sens = sensitivity(spec, len(values))
        scale = noise_scale(sens, share, request.mechanism, request.delta)
        released[spec.name] = _noised(spec, values, scale, request.mechanism, rng)
        noise[spec.name] = {"scale": scale, "sensitivity": sens, "epsilon": share}
        if request.mechanism == "gaussian":
            noise[spec.name]["delta"] = request.delta
    return released, noise


def _all_numbers(values: list[Any]) -> bool:
    """Finite ints and floats only (no booleans); one pass in C for the usual all-floats column."""
    if not set(map(type, values)) <= _NUMBER_TYPES:
        return False
    try:
        return bool(np.isfinite(np.asarray(values, dtype=float)).all())
    except OverflowError:  # an int beyond a float's range
        return False


def _noised(spec: OutputSpec, values: list[Any], scale: float, mechanism: str, rng: np.random.Generator) -> Any:
    """The reducer over clipped values plus noise; then post-processing that costs no privacy (clamping)."""
    if spec.reducer == "count":
        return max(0.0, len(values) + _draw(scale, mechanism, rng, 1)[0])
    assert spec.bounds is not None
    lo, hi = spec.bounds
    clipped = np.clip(np.asarray(values, dtype=float), lo, hi)
    if spec.reducer == "histogram":
        assert spec.bins is not None
        counts, _ = np.histogram(clipped, bins=np.asarray(spec.bins, dtype=float))
        noised = counts + _draw(scale, mechanism, rng, len(counts))
        return [max(0.0, float(c)) for c in noised]
    if spec.reducer == "mean":
        return float(np.clip(clipped.mean() + _draw(scale, mechanism, rng, 1)[0], lo, hi))
    return float(clipped.sum() + _draw(scale, mechanism, rng, 1)[0])


def _draw(scale: float, mechanism: str, rng: np.random.Generator, size: int) -> np.ndarray:
    if mechanism == "gaussian":
        return rng.normal(0.0, scale, size)
    return rng.laplace(0.0, scale, size)


# -- per-subject results ---------------------------------------------------------------------------------------------


def _subject_results(request: GateRequest, rows: list[_Row], problems: _Problems) -> dict[str, dict[str, Any]]:
    subjects = [request.record_subjects.get(row.record) for row in rows]
    if (None not in subjects and len(set(subjects)) == len(subjects)
            and max((row.chars for row in rows), default=0) * _SURELY_SMALL <= request.max_output_bytes):
        return {subject: row.fields for subject, row in zip(subjects, rows, strict=True)}  # one small row each
    grouped: dict[str, list[_Row]] = {}
    for row in rows:
        subject = request.record_subjects.get(row.record)
        if subject is None:
            problems.add(f"record {row.record} maps to no data subject; nothing can be released for it")
            continue
        grouped.setdefault(subject, []).append(row)
    results: dict[str, dict[str, Any]] = {}
    for subject, own in grouped.items():
        result = own[0].fields if len(own) == 1 else {MULTIPLE_RECORDS_KEY: [row.fields for row in own]}
        if sum(row.chars for row in own) * _SURELY_SMALL <= request.max_output_bytes:
            results[subject] = result
            continue
        size = len(canonical_json(result))
        if size > request.max_output_bytes:
            problems.add(f"a subject's result is {size} bytes, over maxOutputBytes {request.max_output_bytes}")
            continue
        results[subject] = result
    return results

"""Prebuilt statements run on the driver's own cursor: compiled once per dialect and set of parameters, their values
converted by the columns' types, then executed without Core's per-execution machinery.

For a fixed statement whose result is a plain value (an id, a sequence number, a row count), Core's execute spends
its time on what such a statement does not need: a cache key computed from the statement's structure, an execution
context, a result object. On this machine, on PostgreSQL, a statement took 113-140 us of CPU this way against
154-177 us through Core (one thread, its transaction's share included), and each side of a negotiation runs some
twenty of them.

Nothing of the meaning changes: the SQL is Core's own compilation for the dialect (with its casts and ON CONFLICT
clauses), the values go through the same type conversions (a UTC datetime stored naive, JSON serialised, booleans
as the driver wants them), the engine's cursor events still see each statement, and a driver error still surfaces
as SQLAlchemy's (a lost connection invalidates it).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Executable, Insert
from sqlalchemy.exc import DBAPIError


@dataclass(frozen=True, slots=True)
class _Compiled:
    sql: str
    positions: tuple[str, ...] | None  # parameter names in order, for a positional dialect (SQLite); None: named
    fixed: dict[str, Any]  # values bound in the statement itself (e.g. status = 'pending')
    processors: tuple[tuple[str, Callable[[Any], Any]], ...]


_COMPILED: dict[tuple[Executable, str, tuple[str, ...]], _Compiled] = {}


def execute(connection: Connection, statement: Executable, params: Mapping[str, Any]) -> Any:
    """Run `statement` with `params` in `connection`'s transaction; returns the driver's cursor (fetch from it)."""
    key = (statement, connection.dialect.name, tuple(params))
    compiled = _COMPILED.get(key)
    if compiled is None:
        compiled = _COMPILED[key] = _compile(statement, connection, tuple(params))
    return _run(connection, compiled, params)


def execute_all(connection: Connection, writes: Sequence[tuple[Executable, Mapping[str, Any]]],
                then: tuple[Executable, Mapping[str, Any]] | None = None) -> Any:
    """Run `writes`, statements whose outcome nobody reads (no rows returned, no row count checked), in order,
    and then `then`, a statement that returns one row: that row is returned (None without `then`).

    On PostgreSQL they go as one statement: all but the last become data-modifying WITH clauses of the last,
    which the server runs in full whether or not anything refers to them, and whose row comes back. A
    transaction's closing writes (its events, its process rows, the message it queues) took two to five
    statements this way folded into one, and each statement saved is about 100 us of CPU on the client and 50 on
    the server. Every part sees the rows as they were before the statement, not another part's work, so the
    writes must touch distinct rows (each held row is written once, events and messages are only inserted)."""
    parts = [*writes, *([then] if then is not None else [])]
    if connection.dialect.name != "postgresql":
        cursors = [execute(connection, statement, params) for statement, params in parts]
    else:
        cursors = [_execute_combined(connection, parts[start:start + WRITES_PER_STATEMENT])
                   for start in range(0, len(parts), WRITES_PER_STATEMENT)]
    return None if then is None or not cursors else cursors[-1].fetchone()


# Writes per combined statement: a message's transaction closes with two to four, a batch of acknowledgements
# with two per negotiation; grouping those by eight keeps the distinct statements (each compiled here, and
# prepared by the server on every connection that runs it twice) few.
WRITES_PER_STATEMENT = 8


def _execute_combined(connection: Connection, writes: Sequence[tuple[Executable, Mapping[str, Any]]]) -> Any:
    if len(writes) == 1:
        return execute(connection, *writes[0])
    key = tuple((statement, tuple(params)) for statement, params in writes)
    compiled = _COMBINED.get(key)
    if compiled is None:
        if len(_COMBINED) >= MAX_COMBINED:
            _COMBINED.clear()
        compiled = _COMBINED[key] = _combine(connection, key)
    return _run(connection, compiled, {f"w{index}_{name}": value
                                       for index, (_statement, params) in enumerate(writes)
                                       for name, value in params.items()})


# Distinct sequences of writes that `execute_all` combined: one per code path that ends a transaction (which
# statements, which columns changed), a few dozen in practice; the bound only guards against a path that varies.
MAX_COMBINED = 512
_COMBINED: dict[tuple[tuple[Executable, tuple[str, ...]], ...], _Compiled] = {}


def _run(connection: Connection, compiled: _Compiled, params: Mapping[str, Any]) -> Any:
    dialect = connection.dialect
    values = {**compiled.fixed, **params}
    for name, process in compiled.processors:
        values[name] = process(values[name])
    bound: Any = values if compiled.positions is None else [values[name] for name in compiled.positions]
    sql = compiled.sql
    dbapi_connection = connection.connection.dbapi_connection
    cursor = dbapi_connection.cursor()  # type: ignore[union-attr]
    before, after = connection.dispatch.before_cursor_execute, connection.dispatch.after_cursor_execute
    try:
        for listener in before:  # tracing and logging see these statements too (with no execution context)
            sql, bound = listener(connection, cursor, sql, bound, None, False)
        cursor.execute(sql, bound)
        for listener in after:
            listener(connection, cursor, sql, bound, None, False)
    except dialect.loaded_dbapi.Error as exc:
        disconnected = dialect.is_disconnect(exc, dbapi_connection, cursor)
        if disconnected:
            connection.invalidate(exc)
        raise DBAPIError.instance(sql, bound, exc, dialect.loaded_dbapi.Error,
                                  connection_invalidated=disconnected, dialect=dialect) from exc
    return cursor


def _combine(connection: Connection, parts: tuple[tuple[Executable, tuple[str, ...]], ...]) -> _Compiled:
    """One PostgreSQL statement of `parts`, each part's parameters renamed `w<index>_<name>` (psycopg's named
    placeholders are `%(name)s`; a literal percent sign is compiled as `%%`, so the pattern cannot misfire)."""
    sqls, fixed, processors = [], {}, []
    for index, (statement, names) in enumerate(parts):
        compiled = _compile(statement, connection, names)
        prefix = f"w{index}_"
        sqls.append(_PLACEHOLDER.sub(lambda match, p=prefix: f"%({p}{match.group(1)})s", compiled.sql))
        fixed.update({prefix + name: value for name, value in compiled.fixed.items()})
        processors.extend((prefix + name, process) for name, process in compiled.processors)
    clauses = ", ".join(f"w{index} AS ({sql})" for index, sql in enumerate(sqls[:-1]))
    return _Compiled(f"WITH {clauses} {sqls[-1]}", None, fixed, tuple(processors))


_PLACEHOLDER = re.compile(r"%\((\w+)\)s")


def _compile(statement: Executable, connection: Connection, names: tuple[str, ...]) -> _Compiled:
    dialect = connection.dialect
    # An INSERT names the columns it is given; other statements bind their parameters by name.
    compiled = statement.compile(dialect=dialect, column_keys=list(names) if isinstance(statement, Insert) else None)
    fixed = {name: value for name, value in compiled.construct_params(dict.fromkeys(names)).items()
             if name not in names}
    processors = []
    for bind, name in compiled.bind_names.items():
        process = bind.type.dialect_impl(dialect).bind_processor(dialect)
        if process is not None:
            processors.append((name, process))
    positions = tuple(compiled.positiontup) if compiled.positiontup else None
    return _Compiled(compiled.string, positions, fixed, tuple(processors))

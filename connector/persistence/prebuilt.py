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

from collections.abc import Callable, Mapping
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
    dialect = connection.dialect
    key = (statement, dialect.name, tuple(params))
    compiled = _COMPILED.get(key)
    if compiled is None:
        compiled = _COMPILED[key] = _compile(statement, connection, tuple(params))
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

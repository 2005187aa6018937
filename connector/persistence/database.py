"""Engine set-up and the unit of work: one transaction per inbound request or worker step.

SQLite runs in WAL mode. Write units start with BEGIN IMMEDIATE, so a read-then-write never fails half-way with
SQLITE_BUSY, and inside one process they queue on a Python lock: SQLite's own busy handler sleeps in steps of up to
100 ms, which would dominate latency under load. Read-only units use a second engine with plain (deferred) BEGIN
and never wait for writers. PostgreSQL needs none of this.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DisconnectionError
from sqlalchemy.orm import Session, sessionmaker


class DatabaseUrlError(ValueError):
    pass


# PostgreSQL connections a process keeps open, and how many more it may open at a peak (at most 30 in all, so
# that two connectors fit a stock server's 100). The kept number must cover the usual concurrency of the request
# and outbox threads: a connection beyond it is closed when returned, and under load that meant more than one
# new server process per negotiation (a fork, a fresh catalog cache, prepared statements lost), 1-2 ms of CPU
# on each side every time.
POOL_SIZE, POOL_OVERFLOW = 20, 10

# psycopg prepares a statement on a connection once it has run there this many times. Its default, 5, spread over
# 20 pooled connections meant that two thirds of a burst's statements were parsed and planned afresh on the server
# (about 40 us of server CPU each, plus the text sent every time): a connection takes few messages per burst.
PREPARE_THRESHOLD = 1


def create_database_engine(url: str, *, read_only: bool = False) -> Engine:
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise DatabaseUrlError(
            f"database URL {url!r} cannot be parsed; use sqlite:///path/to/file.db "
            "or postgresql+psycopg://user@host:port/dbname"
        ) from exc
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        _configure_sqlite(engine, begin="BEGIN" if read_only else "BEGIN IMMEDIATE")
        return engine
    if backend == "postgresql":
        if parsed.drivername != "postgresql+psycopg":
            parsed = parsed.set(drivername="postgresql+psycopg")
        engine = create_engine(parsed, pool_size=POOL_SIZE, max_overflow=POOL_OVERFLOW,
                               connect_args={"prepare_threshold": PREPARE_THRESHOLD})
        _ping_after_idle(engine)
        return engine
    raise DatabaseUrlError(
        f"database backend {backend!r} is not supported; use sqlite:/// or postgresql+psycopg://"
    )


def _configure_sqlite(engine: Engine, *, begin: str) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):  # type: ignore[no-untyped-def]
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection):  # type: ignore[no-untyped-def]
        connection.exec_driver_sql(begin)


# A pooled PostgreSQL connection unused for this long is pinged before it is handed out.
PING_AFTER_IDLE_SECONDS = 1.0
_RETURNED_AT = "sovra_returned_at"


def _ping_after_idle(engine: Engine) -> None:
    """Ping a pooled connection only when it sat idle: a database restart, or a connection closed by the server or
    a firewall while idle, stays invisible to the next caller, as with SQLAlchemy's `pool_pre_ping`. Pinging every
    checkout, as `pool_pre_ping` does, cost one more round trip per transaction (nine per negotiation and side),
    although a connection in steady use was handed back a few milliseconds earlier, and its failure surfaces
    anyway: the failed transaction rolls back and SQLAlchemy replaces the pool's connections."""

    @event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_connection, record):  # type: ignore[no-untyped-def]
        record.info[_RETURNED_AT] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_connection, record, _proxy):  # type: ignore[no-untyped-def]
        returned_at = record.info.get(_RETURNED_AT)
        if returned_at is None or time.monotonic() - returned_at < PING_AFTER_IDLE_SECONDS:
            return  # new (just connected) or in steady use
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:  # the pool discards this connection and hands out a new one
            raise DisconnectionError(f"pooled connection failed its ping after being idle: {exc}") from exc


def is_postgres(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"


AFTER_COMMIT = "after_commit"


def after_commit(session: Session, callback: Callable[[], None]) -> None:
    """Run `callback` once the unit of work has committed (never if it rolls back): a worker woken earlier
    would look for rows it cannot see yet."""
    callbacks = session.info.setdefault(AFTER_COMMIT, [])
    if callback not in callbacks:
        callbacks.append(callback)


AFTER_ROLLBACK = "after_rollback"


def after_rollback(session: Session, callback: Callable[[], None]) -> None:
    """Run `callback` if the unit of work rolls back: to give back what the block took from memory, expecting the
    commit to make it durable."""
    session.info.setdefault(AFTER_ROLLBACK, []).append(callback)


BEFORE_COMMIT = "before_commit"


def before_commit(session: Session, callback: Callable[[], None]) -> None:
    """Run `callback` when the unit of work's block has returned, inside its transaction, just before commit: the
    place to derive something from the transaction's final state (it may still query; an error rolls back)."""
    session.info.setdefault(BEFORE_COMMIT, []).append(callback)


def _keep_for_the_unit_of_work(session: Session, instance: object) -> None:
    """Hold every row the unit of work inserted until it ends. The identity map holds persistent objects weakly:
    a row a service created and let go of (an agreement, say) would vanish from it at the flush, and reading it
    back before commit would cost a SELECT."""
    session.info.setdefault(KEPT, []).append(instance)


KEPT = "kept"


class Database:
    def __init__(self, engine: Engine, *, read_engine: Engine | None = None) -> None:
        self.engine = engine
        self._read_engine = read_engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        event.listen(self._sessions, "pending_to_persistent", _keep_for_the_unit_of_work)
        self._read_sessions = sessionmaker(read_engine or engine, expire_on_commit=False)
        self._write_lock = threading.Lock() if engine.dialect.name == "sqlite" else None

    @classmethod
    def from_url(cls, url: str) -> Database:
        engine = create_database_engine(url)
        read_engine = create_database_engine(url, read_only=True) if engine.dialect.name == "sqlite" else None
        return cls(engine, read_engine=read_engine)

    @contextmanager
    def unit_of_work(self) -> Iterator[Session]:
        """Commit if the block returns, roll back if it raises; services never commit themselves."""
        lock = self._write_lock or contextlib.nullcontext()
        with lock:
            session = self._sessions()
            try:
                yield session
                for callback in session.info.get(BEFORE_COMMIT, ()):
                    callback()
                session.commit()
            except BaseException:
                session.rollback()
                for callback in session.info.get(AFTER_ROLLBACK, ()):
                    callback()
                raise
            finally:
                session.close()
        for callback in session.info.get(AFTER_COMMIT, ()):
            callback()

    @contextmanager
    def read_only(self) -> Iterator[Session]:
        """A snapshot for reads that never writes: it neither waits for nor blocks writers.

        It ends with COMMIT, not ROLLBACK (the same for a transaction that wrote nothing): psycopg forgets every
        statement it prepared on a connection at a ROLLBACK, and the idle workers' polls read through here twice a
        second, which kept most pooled connections from ever keeping a prepared statement."""
        session = self._read_sessions()
        try:
            yield session
            session.commit()
        finally:
            session.close()  # loaded rows stay readable (no expiry on commit)

    def dispose(self) -> None:
        self.engine.dispose()
        if self._read_engine is not None:
            self._read_engine.dispose()

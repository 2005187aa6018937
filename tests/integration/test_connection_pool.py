"""PostgreSQL connections: kept, not reopened, at a connector's usual concurrency; checked before use only after
sitting idle, and then replaced without an error if the server closed them.

A connection the pool cannot keep is closed when it is returned, and the next unit of work opens a new one: a new
server process each time. Under load that churn cost more than one new server process per negotiation.
"""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import create_engine, event, text
from sqlalchemy.pool import NullPool

from connector.persistence import database
from connector.persistence.database import POOL_SIZE, Database, is_postgres

THREADS = 16  # request and outbox threads busy at once under a burst of negotiations
ROUNDS = 10


def test_concurrent_units_of_work_reuse_their_connections(db: Database) -> None:
    if not is_postgres(db.engine):
        pytest.skip("SQLite opens no server connections")
    db.engine.dispose()  # count from an empty pool
    opened: list[object] = []
    event.listen(db.engine, "connect", lambda connection, _record: opened.append(connection))
    wave = threading.Barrier(THREADS)
    failures: list[BaseException] = []

    def work() -> None:
        """Load comes in waves (a burst of messages, then a pause): every wave needs all the connections again."""
        try:
            for _ in range(ROUNDS):
                wave.wait()
                with db.unit_of_work() as uow:
                    uow.execute(text("SELECT 1"))
                    time.sleep(0.005)  # hold the connection like a real transaction does
        except BaseException as exc:  # noqa: BLE001 - reported below
            failures.append(exc)

    threads = [threading.Thread(target=work) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert failures == []
    assert THREADS <= POOL_SIZE
    assert len(opened) <= THREADS, f"{len(opened)} connections opened for {THREADS} threads"


def _backend_pid(db: Database) -> int:
    with db.unit_of_work() as uow:
        return int(uow.execute(text("SELECT pg_backend_pid()")).scalar_one())


def test_an_idle_connection_the_server_closed_is_replaced_unseen(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    if not is_postgres(db.engine):
        pytest.skip("SQLite has no server to lose")
    monkeypatch.setattr(database, "PING_AFTER_IDLE_SECONDS", 0.0)
    db.engine.dispose()
    first = _backend_pid(db)
    admin = create_engine(db.engine.url, poolclass=NullPool)
    try:  # another session ends the server process of the connection now idle in the pool
        with admin.begin() as connection:
            assert connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": first}).scalar_one()
    finally:
        admin.dispose()
    time.sleep(0.2)
    assert _backend_pid(db) != first  # the dead connection was pinged, discarded and replaced: no error


def test_a_connection_in_steady_use_is_not_pinged(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    if not is_postgres(db.engine):
        pytest.skip("SQLite is not pinged")
    pings: list[object] = []
    real_ping = db.engine.dialect.do_ping
    monkeypatch.setattr(db.engine.dialect, "do_ping",
                        lambda connection: pings.append(connection) or real_ping(connection))
    for _ in range(20):
        _backend_pid(db)
    assert pings == []
    monkeypatch.setattr(database, "PING_AFTER_IDLE_SECONDS", 0.0)
    _backend_pid(db)
    assert len(pings) == 1  # once idle (here: at once), it is pinged before use


def _prepared_on_the_connection(db: Database) -> int:
    with db.unit_of_work() as uow:
        return int(uow.execute(text("SELECT count(*) FROM pg_prepared_statements")).scalar_one())


def test_reads_and_writes_keep_the_statements_prepared_on_a_connection(db: Database) -> None:
    """psycopg drops a connection's prepared statements at every ROLLBACK; a read-only unit must not roll back,
    or the pollers' reads (twice a second) leave the protocol's statements to be parsed and planned every time."""
    if not is_postgres(db.engine):
        pytest.skip("SQLite prepares in the driver, per connection, without a server")
    db.engine.dispose()  # one pooled connection, used by every unit below in turn
    for _ in range(3):
        with db.unit_of_work() as uow:
            uow.execute(text("SELECT 1 WHERE 1 = :x"), {"x": 1})
    prepared = _prepared_on_the_connection(db)
    assert prepared >= 1  # prepared on its second run
    with db.read_only() as session:
        session.execute(text("SELECT 2 WHERE 2 = :x"), {"x": 2})
    assert _prepared_on_the_connection(db) >= prepared, "the read-only unit dropped the prepared statements"

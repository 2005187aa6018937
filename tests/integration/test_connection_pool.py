"""PostgreSQL connections are kept, not reopened, at a connector's usual concurrency.

A connection the pool cannot keep is closed when it is returned, and the next unit of work opens a new one: a new
server process each time. Under load that churn cost more than one new server process per negotiation.
"""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import event, text

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

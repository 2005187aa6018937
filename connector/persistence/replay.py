"""The one place that records a token id, so a token is accepted once by any process sharing the database.

`record_token_id` writes inside the caller's transaction (a DSP message records its token with the change it
makes); `DatabaseReplayGuard` does the same in a transaction of its own, for requests that change nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import delete
from sqlalchemy.orm import Session

from connector.persistence.appends import record_token
from connector.persistence.database import Database
from connector.persistence.tables import UsedTokenRow


def record_token_id(uow: Session, jti: str, keep_until: datetime) -> bool:
    """Record `jti` until `keep_until`; False when it was already recorded (a replay)."""
    return record_token(uow, jti, keep_until)


class DatabaseReplayGuard:
    def __init__(self, db: Database, now: Callable[[], datetime], *, prune_every: int = 1000) -> None:
        self._db, self._now, self._prune_every, self._count = db, now, prune_every, 0

    def remember(self, jti: str, expires_at: datetime) -> bool:
        self._count += 1
        try:
            with self._db.unit_of_work() as uow:
                if self._count % self._prune_every == 0:
                    uow.execute(delete(UsedTokenRow).where(UsedTokenRow.expires_at < self._now()))
                if not record_token_id(uow, jti, expires_at):
                    raise _Replayed
        except _Replayed:
            return False
        return True


class _Replayed(Exception):
    """Rolls the guard's own transaction back when the token id was already there."""

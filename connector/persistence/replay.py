"""Token ids for requests that change nothing (a catalog request, a GET): recorded in a transaction of their own,
so a token is accepted once by any process sharing the database. A DSP message that changes something records its
token id in the same transaction as that change (`appends.record_token`, which this guard uses as well)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import delete

from connector.persistence.appends import record_token
from connector.persistence.database import Database
from connector.persistence.tables import UsedTokenRow


class DatabaseReplayGuard:
    def __init__(self, db: Database, now: Callable[[], datetime], *, prune_every: int = 1000) -> None:
        self._db, self._now, self._prune_every, self._count = db, now, prune_every, 0

    def remember(self, jti: str, expires_at: datetime) -> bool:
        self._count += 1
        try:
            with self._db.unit_of_work() as uow:
                if self._count % self._prune_every == 0:
                    uow.execute(delete(UsedTokenRow).where(UsedTokenRow.expires_at < self._now()))
                if not record_token(uow, jti, expires_at):
                    raise _Replayed
        except _Replayed:
            return False
        return True


class _Replayed(Exception):
    """Rolls the guard's own transaction back when the token id was already there."""

"""Database-backed replay guard: a token id is accepted once, by any process sharing the database."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError

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
                uow.add(UsedTokenRow(jti=jti, expires_at=expires_at))
        except IntegrityError:
            return False
        return True

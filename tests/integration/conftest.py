"""Fixtures shared by the integration tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from connector.persistence.database import Database
from connector.persistence.migrate import upgrade


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    """A migrated database of its own for the test, once per backend (see `database_url`)."""
    database = Database.from_url(database_url)
    upgrade(database.engine)
    yield database
    database.dispose()

"""Fixtures shared by the whole test suite."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

# --- Database URLs -----------------------------------------------------------------------------
# Persistence must behave the same on SQLite (the zero-setup default) and PostgreSQL (production),
# so tests that take `database_url` run once per backend. PostgreSQL joins only when
# SOVRA_TEST_DATABASE_URL names a server and a role allowed to CREATE DATABASE; scripts/test
# starts one with scripts/postgres.sh and sets it. Each PostgreSQL test gets its own database, so
# tests cannot see each other's rows and need no cleanup of their own.

DATABASE_URL_ENV = "SOVRA_TEST_DATABASE_URL"


class TestDatabaseError(RuntimeError):
    """The PostgreSQL server named by SOVRA_TEST_DATABASE_URL could not provide a test database."""

    __test__ = False  # not a test class, despite the name

    def __init__(self, admin_url: str, action: str, cause: Exception) -> None:
        super().__init__(
            f"Could not {action} on {admin_url} ({cause}); start the server with scripts/postgres.sh "
            f"or unset {DATABASE_URL_ENV} to test on SQLite only."
        )
        self.admin_url = admin_url
        self.action = action


def database_urls() -> list[tuple[str, str | None]]:
    """Backends to test on, as (id, admin URL); SQLite needs no admin URL."""
    urls: list[tuple[str, str | None]] = [("sqlite", None)]
    admin_url = os.environ.get(DATABASE_URL_ENV, "").strip()
    if admin_url:
        urls.append(("postgresql", admin_url))
    return urls


def _fresh_postgresql_database(admin_url: str) -> Iterator[str]:
    """Create a uniquely named database, yield its SQLAlchemy URL, drop it even if still in use."""
    import psycopg
    from psycopg import sql
    from sqlalchemy.engine import make_url

    admin = make_url(admin_url)
    libpq_url = admin.set(drivername="postgresql").render_as_string(hide_password=False)
    name = f"sovra_test_{uuid.uuid4().hex[:12]}"
    try:
        with psycopg.connect(libpq_url, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    except psycopg.Error as exc:
        raise TestDatabaseError(admin_url, f"create database {name}", exc) from exc
    try:
        yield admin.set(drivername="postgresql+psycopg", database=name).render_as_string(hide_password=False)
    finally:
        _drop_database(libpq_url, name, admin_url)


def _drop_database(libpq_url: str, name: str, admin_url: str, attempts: int = 20) -> None:
    """DROP ... WITH (FORCE) cannot end an autovacuum worker (it runs as the superuser, our role is not one), and
    autovacuum visits a database after a test's bulk writes: wait for it and try again."""
    import psycopg
    from psycopg import sql

    for attempt in range(attempts):
        try:
            with psycopg.connect(libpq_url, autocommit=True) as conn:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
            return
        except (psycopg.errors.InsufficientPrivilege, psycopg.errors.ObjectInUse) as exc:
            if attempt == attempts - 1:
                raise TestDatabaseError(admin_url, f"drop database {name}", exc) from exc
            time.sleep(0.25)
        except psycopg.Error as exc:
            raise TestDatabaseError(admin_url, f"drop database {name}", exc) from exc


@pytest.fixture(params=database_urls(), ids=lambda param: param[0])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """SQLAlchemy URL of an empty database private to this test, once per backend."""
    _backend, admin_url = request.param
    if admin_url is None:
        yield f"sqlite:///{tmp_path / 'sovra.db'}"
    else:
        yield from _fresh_postgresql_database(admin_url)

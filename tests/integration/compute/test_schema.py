"""Migration 0003 creates exactly the compute tables the code declares (on every test backend)."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from connector.persistence.database import Database
from connector.persistence.migrate import upgrade
from connector.persistence.tables import Base

COMPUTE_TABLES = {"compute_jobs", "compute_job_subjects", "consent_events", "privacy_budgets", "privacy_charges",
                  "audit_events", "subject_tokens", "algorithm_agreements"}


def test_migrations_match_the_tables(database_url: str) -> None:
    db = Database.from_url(database_url)
    try:
        upgrade(db.engine)
        with db.engine.connect() as connection:
            assert COMPUTE_TABLES <= set(inspect(connection).get_table_names())
            # types are left out: PostgreSQL reflects FLOAT as DOUBLE PRECISION, which is the same column
            diff = compare_metadata(MigrationContext.configure(connection, opts={"compare_type": False}),
                                    Base.metadata)
        assert diff == [], diff
    finally:
        db.dispose()

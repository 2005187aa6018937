"""The `database_url` fixture hands each test a working, empty, private database on every backend."""

from sqlalchemy import create_engine, inspect, text


def test_database_url_accepts_connections_and_starts_empty(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        assert inspect(engine).get_table_names() == []
        with engine.begin() as conn:
            assert conn.execute(text("SELECT 1")).scalar_one() == 1
            conn.execute(text("CREATE TABLE probe (id INTEGER PRIMARY KEY, note TEXT)"))
            conn.execute(text("INSERT INTO probe (id, note) VALUES (1, 'written')"))
        with engine.connect() as conn:
            assert conn.execute(text("SELECT note FROM probe WHERE id = 1")).scalar_one() == "written"
    finally:
        engine.dispose()


def test_database_url_is_not_shared_between_tests(database_url: str) -> None:
    # Runs after the test above created `probe`; a shared database would still contain it.
    engine = create_engine(database_url)
    try:
        assert "probe" not in inspect(engine).get_table_names()
    finally:
        engine.dispose()

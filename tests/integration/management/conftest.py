"""A connector on a private database and data directory, its app, and a client holding the management API key."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from connector.container import Connector
from connector.http.app import create_app
from connector.settings import Settings

API_KEY = "test-key-123"


@pytest.fixture
def connector(database_url: str, tmp_path: Path) -> Connector:
    settings = Settings(port=18181, dev=True, api_key=API_KEY, database_url=database_url,
                        data_dir=tmp_path / "data").with_defaults().validate()
    return Connector(settings)


@pytest.fixture
def client(connector: Connector) -> Iterator[TestClient]:
    """The whole app with its lifespan (migrations, outbox), every request carrying the API key."""
    with TestClient(create_app(connector), base_url="http://localhost:18181",
                    headers={"X-Api-Key": API_KEY}) as test_client:
        yield test_client

"""A connector app with no credentials preset: the console signs in with the API key and holds a cookie."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from connector.container import Connector
from connector.http.app import create_app
from connector.settings import Settings

API_KEY = "console-key-123"
BASE_URL = "http://localhost:18182"


@pytest.fixture
def connector(database_url: str, tmp_path: Path) -> Connector:
    settings = Settings(port=18182, dev=True, api_key=API_KEY, database_url=database_url,
                        data_dir=tmp_path / "data").with_defaults().validate()
    return Connector(settings)


@pytest.fixture
def browser(connector: Connector) -> Iterator[TestClient]:
    """Like a browser: keeps cookies, sends no X-Api-Key."""
    with TestClient(create_app(connector), base_url=BASE_URL) as client:
        yield client

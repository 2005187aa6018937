"""A connector whose DSP peer is an in-process function (httpx.MockTransport), on each test database."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from connector.container import Connector
from connector.persistence.migrate import upgrade
from connector.settings import Settings


@pytest.fixture
def connector_with_peer(database_url: str, tmp_path: Path) -> Iterator[Callable[..., Connector]]:
    """Build the connector once per test: `connector_with_peer(peer, start=..., **settings)`; `start` runs its
    outbox worker (stopped at teardown), else the test drives the outbox itself."""
    made: list[Connector] = []

    def build(peer: Callable[[httpx.Request], httpx.Response], *, start: bool, **settings: Any) -> Connector:
        connector = Connector(Settings(port=18191, dev=True, api_key="test-key-123", database_url=database_url,
                                       data_dir=tmp_path / "data", **settings).with_defaults().validate(),
                              transport=httpx.MockTransport(peer))
        upgrade(connector.db.engine)
        if start:
            connector.outbox.start()
        made.append(connector)
        return connector

    yield build
    for connector in made:
        connector.outbox.stop()
        connector.db.dispose()

"""Crash safety and scale-out: kill -9 at random moments, and two processes sharing one PostgreSQL database."""

from __future__ import annotations

import os
import random
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from connector.localnet import ConnectorProcess
from tests.conftest import _fresh_postgresql_database
from tests.e2e.conftest import first_offer, publish

pytestmark = pytest.mark.e2e


def _events(client: Any, negotiation_id: str) -> list[tuple[str, str]]:
    events = client.ok(client.get(f"/v3/contractnegotiations/{negotiation_id}/events"))
    return [(e["direction"], e["message"]) for e in events if e["direction"] in ("in", "out")]


def _wait_all(client: Any, ids: list[str], timeout: float) -> dict[str, dict[str, Any]]:
    return {i: client.wait_state(f"/v3/contractnegotiations/{i}", {"FINALIZED", "TERMINATED"}, timeout=timeout)
            for i in ids}


def test_repeated_kill_9_of_the_provider_loses_nothing_and_repeats_nothing(
        spawn: Callable[..., ConnectorProcess]) -> None:
    provider, consumer = spawn("provider"), spawn("consumer")
    publish(provider)
    c = consumer.management()
    offer = first_offer(c, provider, "asset-1")
    rng = random.Random(7)
    ids: list[str] = []
    for round_ in range(3):
        for _ in range(4):
            ids.append(c.ok(c.post("/v3/contractnegotiations", {
                "counterPartyAddress": provider.dsp_url, "counterPartyId": provider.did,
                "policy": offer}))["@id"])  # type: ignore[index]
        time.sleep(rng.uniform(0.0, 0.3))  # somewhere in the middle of the flows
        provider.kill()
        time.sleep(0.2 * round_)
        provider.start()
    finals = _wait_all(c, ids, timeout=90)
    assert {f["state"] for f in finals.values()} == {"FINALIZED"}, [f.get("errorDetail") for f in finals.values()]
    for negotiation_id in ids:
        applied = _events(c, negotiation_id)
        assert sorted(applied) == sorted(set(applied)), applied
        assert applied.count(("in", "ContractAgreementMessage")) == 1
    p = provider.management()
    provider_ids = [n["@id"] for n in p.ok(p.post("/v3/contractnegotiations/request", {"limit": 100}))]
    assert len(provider_ids) == len(ids)
    for provider_id in provider_ids:  # an acknowledgement lost in a crash is recovered after restart
        assert p.wait_state(f"/v3/contractnegotiations/{provider_id}", {"FINALIZED", "TERMINATED"},
                            timeout=30)["state"] == "FINALIZED"


@pytest.mark.skipif(not os.environ.get("SOVRA_TEST_DATABASE_URL"), reason="needs PostgreSQL (scripts/test starts it)")
def test_two_provider_processes_share_one_postgresql_database(tmp_path: Path) -> None:
    admin = os.environ["SOVRA_TEST_DATABASE_URL"]
    shared_db = _fresh_postgresql_database(admin)
    url = next(shared_db)
    started: list[ConnectorProcess] = []
    try:
        a = ConnectorProcess("provider-a", tmp_path / "a", database_url=url)
        started.append(a.start())
        b = ConnectorProcess("provider-b", tmp_path / "b", database_url=url, extra_args=("--public-url", a.url))
        (b.data_dir / "keys").mkdir(parents=True)
        shutil.copy(a.data_dir / "keys" / "connector-key.pem", b.data_dir / "keys" / "connector-key.pem")
        started.append(b.start())
        consumer = ConnectorProcess("consumer", tmp_path / "consumer")
        started.append(consumer.start())
        publish(a)
        c = consumer.management()
        offer = first_offer(c, a, "asset-1")
        ids = []
        for i in range(24):  # half the consumers' requests reach process B: both do real work on one database
            entry = a if i % 2 == 0 else b
            ids.append(c.ok(c.post("/v3/contractnegotiations", {
                "counterPartyAddress": entry.dsp_url, "counterPartyId": a.did, "policy": offer}))["@id"])
        finals = _wait_all(c, ids, timeout=90)
        assert {f["state"] for f in finals.values()} == {"FINALIZED"}, [f.get("errorDetail") for f in finals.values()]
        for negotiation_id in ids:
            applied = _events(c, negotiation_id)
            assert sorted(applied) == sorted(set(applied)), applied
        engine = create_engine(url)
        deadline = time.monotonic() + 10  # the acknowledgement of a last message is recorded within moments
        while True:
            with engine.connect() as conn:
                rows = conn.execute(text("SELECT status, attempts, leased_by FROM outbox")).all()
            if all(r.status != "pending" for r in rows) or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        engine.dispose()
        assert len(rows) == 24 * 2  # agreement + finalized event per negotiation
        assert {r.status for r in rows} == {"sent"}
        assert all(r.attempts == 0 for r in rows), "no message needed a second send"
        assert len({r.leased_by for r in rows}) == 2, "both processes delivered messages"
    finally:
        for process in started:
            process.kill()
        shared_db.close()

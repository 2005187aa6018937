"""A data provider (A) on a real database with one JSONL dataset of students, a compute agreement with an AI
provider (B), and B's algorithm packed and signed locally; the worker is driven step by step by the tests."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from compute_to_data import bundle, signing
from compute_to_data.jobs import FINAL
from compute_to_data.sandbox.base import Availability, SandboxResult, SandboxSpec
from connector.container import Connector
from connector.http.app import create_app
from connector.persistence.tables import AgreementRow, AssetRow, ComputeJobRow, TransferRow
from connector.services import compute_jobs, consents
from connector.services.algorithm_source import AlgorithmFetchError, FetchedAlgorithm
from connector.settings import Settings
from connector.workers.compute import ComputeWorker, open_sandbox
from identity.did_web import build_did_document
from identity.keys import SigningKey, generate_signing_key, public_jwk

API_KEY = "test-key-123"
B_DID = "did:web:b.example"
MALLORY_DID = "did:web:mallory.example"
PURPOSE = "https://w3id.org/dpv#ServicePersonalisation"
ASSET_ID = "students"
STUDENTS = [
    {"subject": "alice", "name": "Alice Liddell", "python": 8, "sql": 6, "email": "alice@example.org"},
    {"subject": "bob", "name": "Bob Marley", "python": 3, "sql": 9, "email": "bob@example.org"},
    {"subject": "carol", "name": "Carol Danvers", "python": 5, "sql": 5, "email": "carol@example.org"},
    {"subject": "dave", "name": "Dave Grohl", "python": 9, "sql": 2, "email": "dave@example.org"},
]

MAIN_PY = '''
import json, sys
rows = [json.loads(line) for line in open("/input/records.jsonl")]
params = json.load(open("/input/parameters.json"))
print("scoring", len(rows), "records")
for row in rows:
    print("record", row.get("name", "?"), file=sys.stderr)
with open("/output/results.jsonl", "w") as out:
    for row in rows:
        score = (row["python"] + row["sql"]) / 20
        out.write(json.dumps({"_record": row["_record"], "score": score}) + "\\n")
'''


def manifest(**changes: Any) -> dict[str, Any]:
    document = {
        "name": "career-match", "version": "1.0.0", "kind": "python", "entrypoint": "main.py",
        "inputs": ["python", "sql", "name"],
        "outputs": [
            {"name": "score", "scope": "subject", "schema": {"type": "number", "minimum": 0, "maximum": 1}},
            {"name": "meanScore", "scope": "aggregate", "source": "score", "reducer": "mean", "bounds": [0, 1]},
        ],
        "resources": {"cpu": 1, "memory": 512, "gpu": False, "timeout": 30},
    }
    document.update(changes)
    return document


def compute_policy(signers: list[str], *, budget: float = 5.0) -> dict[str, Any]:
    return {
        "@id": "urn:uuid:policy-students-compute", "@type": "Agreement", "assigner": "did:web:a.example",
        "assignee": B_DID, "target": ASSET_ID,
        "permission": [{"action": "https://w3id.org/sovra/c2d/v1#compute", "constraint": [
            {"leftOperand": "c2d:algorithmSigner", "operator": "isAnyOf", "rightOperand": signers},
            {"leftOperand": "c2d:dpEpsilon", "operator": "lteq", "rightOperand": 1},
            {"leftOperand": "c2d:minAggregationSize", "operator": "gteq", "rightOperand": 2},
            {"leftOperand": "c2d:dpEpsilonBudget", "operator": "lteq", "rightOperand": budget},
            {"leftOperand": "c2d:consentRequired", "operator": "eq", "rightOperand": True},
            {"leftOperand": "purpose", "operator": "isA", "rightOperand": "https://w3id.org/dpv#Purpose"},
        ]}],
    }


@dataclass
class Signer:
    did: str
    key: SigningKey

    def document(self) -> dict[str, Any]:
        return build_did_document(self.did, public_jwk(self.key), service_endpoints={})


@dataclass
class LocalAlgorithmSource:
    """Serves packed, signed bundles by the job's algorithm ref, the way the DSP source serves fetched ones."""

    bundles: dict[str, FetchedAlgorithm] = field(default_factory=dict)
    fetched: list[str] = field(default_factory=list)

    def fetch(self, job: Any) -> FetchedAlgorithm:
        self.fetched.append(job.algorithm_ref)
        try:
            return self.bundles[job.algorithm_ref]
        except KeyError:
            raise AlgorithmFetchError(f"no algorithm {job.algorithm_ref}") from None


class RecordingSandbox:
    """Stands in where a test proves that nothing runs: any run is recorded and fails the test."""

    name = "recording"

    def __init__(self) -> None:
        self.runs: list[SandboxSpec] = []

    def available(self) -> Availability:
        return Availability(True)

    def run(self, spec: SandboxSpec) -> SandboxResult:
        self.runs.append(spec)
        return SandboxResult(exit_code=1, timed_out=False, wall_seconds=0.0, stdout_tail=b"", stderr_tail=b"",
                             output_bytes=0, killed_reason="the recording sandbox never runs anything")


@dataclass
class World:
    connector: Connector
    client: TestClient
    source: LocalAlgorithmSource
    b: Signer
    mallory: Signer
    work: Path

    @property
    def db(self) -> Any:
        return self.connector.db

    @property
    def rt(self) -> Any:
        return self.connector.rt

    def publish(self, ref: str, signer: Signer | None, *, main: str = MAIN_PY, tamper: bool = False,
                **manifest_changes: Any) -> str:
        """Pack and sign an algorithm as B would; returns its digest."""
        folder = self.work / ref
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        (folder / "sovra-algorithm.json").write_text(json.dumps(manifest(**manifest_changes)))
        (folder / "main.py").write_text(main)
        archive = self.work / f"{ref}.tar.gz"
        digest = bundle.pack(folder, archive)
        envelope: dict[str, Any] = {}
        if signer is not None:
            now = datetime.now(UTC).isoformat()
            statement = signing.bundle_statement(archive.name, digest, manifest(**manifest_changes), signer.did,
                                                 started=now, finished=now)
            envelope = signing.sign_statement(statement, signer.key, signer.did)
        if tamper:
            raw = bytearray(archive.read_bytes())
            raw[len(raw) // 2] ^= 0x01
            archive.write_bytes(bytes(raw))
        self.source.bundles[ref] = FetchedAlgorithm(archive=archive, envelope=envelope)
        return digest

    def consent(self, subject: str, action: str = "grant", *, provider: str = B_DID, purpose: str = PURPOSE) -> None:
        with self.db.unit_of_work() as uow:
            consents.record(uow, self.rt, subject=subject, provider=provider, purpose=purpose, action=action,
                            source="operator", actor="operator")

    def request(self, ref: str = "career-match", **parameters: Any) -> str:
        params = {"dpEpsilon": 0.5, "minAggregationSize": 2, "purpose": PURPOSE, **parameters}
        with self.db.unit_of_work() as uow:
            agreement = uow.get(AgreementRow, "agreement-1")
            now = datetime.now(UTC)
            transfer = TransferRow(id=self.rt.new_id(), role="PROVIDER", state="REQUESTED",
                                   consumer_pid=self.rt.new_id(), provider_pid=None, counter_party_id=B_DID,
                                   counter_party_address="http://b.example/api/dsp/2025-1",
                                   agreement_id=agreement.id, asset_id=ASSET_ID, transfer_type="Compute-PULL",
                                   created_at=now, updated_at=now)
            uow.add(transfer)
            uow.flush()
            job = compute_jobs.accept_compute_request(uow, self.rt, transfer_row=transfer, agreement_row=agreement,
                                                      algorithm_ref=ref, algorithm_provider="http://b.example/api/dsp/2025-1",
                                                      parameters=params)
            return job.id

    def run(self, job_id: str, *, max_steps: int = 20) -> ComputeJobRow:
        """Drive the worker until the job is final (each pass: claim, then steps while the lease holds)."""
        worker = ComputeWorker(self.db, self.rt)
        for _ in range(max_steps):
            job = self.job(job_id)
            if job.state in FINAL:
                return job
            assert worker.run_once(), f"nothing was due, but job {job_id} is {job.state}"
        raise AssertionError(f"job {job_id} did not finish in {max_steps} steps: {self.job(job_id).state}")

    def job(self, job_id: str) -> ComputeJobRow:
        with self.db.read_only() as session:
            job = session.get(ComputeJobRow, job_id)
            assert job is not None
            return job

    def set_policy(self, policy: dict[str, Any]) -> None:
        with self.db.unit_of_work() as uow:
            uow.get(AgreementRow, "agreement-1").policy = policy


@pytest.fixture
def world(database_url: str, tmp_path: Path) -> Iterator[World]:
    settings = Settings(port=18181, dev=True, api_key=API_KEY, database_url=database_url, data_dir=tmp_path / "a",
                        sandbox_backend="none", c2d_workers=0, c2d_epsilon_budget=10.0).with_defaults().validate()
    connector = Connector(settings)
    b = Signer(B_DID, generate_signing_key())
    mallory = Signer(MALLORY_DID, generate_signing_key())
    connector.did_resolver.seed(B_DID, b.document())
    connector.did_resolver.seed(MALLORY_DID, mallory.document())
    source = LocalAlgorithmSource()
    connector.rt.algorithm_source = source
    dataset = settings.file_root / "students.jsonl"
    dataset.parent.mkdir(parents=True, exist_ok=True)
    dataset.write_text("".join(json.dumps(s) + "\n" for s in STUDENTS))
    with TestClient(create_app(connector), base_url="http://localhost:18181",
                    headers={"X-Api-Key": API_KEY}) as client:
        now = datetime.now(UTC)
        with connector.db.unit_of_work() as uow:
            uow.add(AssetRow(id=ASSET_ID, properties={"name": "students", "c2d:subjectField": "subject"},
                             private_properties={}, data_address={"type": "File", "path": str(dataset)},
                             created_at=now))
            uow.add(AgreementRow(id="agreement-1", negotiation_id="n-1", role="PROVIDER",
                                 provider_id=settings.participant_id, consumer_id=B_DID, asset_id=ASSET_ID,
                                 policy=compute_policy([B_DID]), signed_at=now, finalized=True,
                                 request_context={"purpose": PURPOSE}))
        work = tmp_path / "b-algorithms"
        work.mkdir()
        yield World(connector, client, source, b, mallory, work)


@pytest.fixture
def sandboxed(world: World) -> World:
    """The world with the real default sandbox (bubblewrap); skipped where it cannot run."""
    sandbox, problem = open_sandbox("bubblewrap")
    if sandbox is None:
        pytest.skip(f"no usable bubblewrap sandbox here: {problem}")
    world.rt.sandbox = sandbox
    return world


@pytest.fixture
def recording(world: World) -> RecordingSandbox:
    sandbox = RecordingSandbox()
    world.rt.sandbox = sandbox
    return sandbox


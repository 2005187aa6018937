"""Signed algorithms over DSP: B publishes one as a dataset; A obtains it through its own DSP contract with B.

Publication (requester B): `publish` stores the signed bundle (.tar.gz) under the file root and creates an asset
whose File address serves it and whose properties carry the DSSE envelope and the bundle's digest, so both appear
in B's DCAT dataset (`catalog.dcat` lists every public property under its IRI).

Fetching (data provider A, `DspAlgorithmSource.fetch`, called by the compute worker outside any transaction):

1. B's dataset is read over DSP (one DatasetRequestMessage): its envelope and digest property;
2. if our cache holds a file with that digest, it is used at once;
3. otherwise we pull it under our agreement for (B, dataset), negotiating one first when we hold none (B's first
   offer, with our purpose) and waiting for FINALIZED; the pull is an ordinary HttpData-PULL whose EDR we wait for;
4. the archive is streamed to `<c2d work dir>/algorithms/<digest>.tar.gz` while it is hashed, with a size cap,
   and the transfer is completed; the row of `algorithm_agreements` remembers agreement, digest and path.

The signature, signer and digest are checked afterwards by the pipeline (VERIFYING); this module only makes sure
that what it hands over is what B's catalog describes. Every failure raises AlgorithmFetchError with the reason.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from connector.persistence.tables import (
    AgreementRow,
    AlgorithmAgreementRow,
    AssetRow,
    EdrRow,
    NegotiationRow,
    TransferRow,
)
from connector.services import assets, negotiations, remote_catalog, transfers
from connector.services.algorithm_source import AlgorithmFetchError, FetchedAlgorithm
from connector.services.compute_transfers import ALGORITHM_DIGEST, ALGORITHM_ENVELOPE
from connector.services.runtime import Runtime

if TYPE_CHECKING:
    from connector.container import Connector

log = logging.getLogger("sovra.algorithms")

MAX_ARCHIVE_BYTES = 512 << 20
WAIT_SECONDS = 60.0
POLL_SECONDS = 0.1
CHUNK = 1 << 20
ALGORITHM_TYPE = "https://w3id.org/sovra/c2d/v1#Algorithm"


def envelope_of(properties: Mapping[str, Any]) -> dict[str, Any] | None:
    """The DSSE envelope a dataset or asset carries (an object, or the same as a JSON string)."""
    value = properties.get(ALGORITHM_ENVELOPE)
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return None
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    return dict(value) if isinstance(value, Mapping) else None


def digest_property(properties: Mapping[str, Any]) -> str | None:
    value = properties.get(ALGORITHM_DIGEST)
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    if isinstance(value, Mapping):
        value = value.get("@value")
    return value if isinstance(value, str) else None


# -- publication (B) ---------------------------------------------------------------------------------------------------
def publish(uow: Session, rt: Runtime, *, asset_id: str, archive: Path, envelope: Mapping[str, Any],
            digest: str, properties: Mapping[str, Any]) -> AssetRow:
    """Create the asset of a signed algorithm bundle (already stored under the file root)."""
    return assets.create(uow, rt, asset_id=asset_id, private_properties={}, data_address={
        "type": "File", "path": str(archive)}, properties={
        "name": asset_id, "contenttype": "application/gzip", "@type": ALGORITHM_TYPE, **properties,
        ALGORITHM_ENVELOPE: dict(envelope), ALGORITHM_DIGEST: digest})


def file_digest(path: Path) -> str:
    sha = hashlib.sha256()
    with path.open("rb") as stream:
        while block := stream.read(CHUNK):
            sha.update(block)
    return "sha256:" + sha.hexdigest()


# -- fetching (A) ------------------------------------------------------------------------------------------------------
class DspAlgorithmSource:
    """`rt.algorithm_source` of a connector: fetch(job) -> FetchedAlgorithm(archive, envelope)."""

    def __init__(self, connector: Connector, *, wait_seconds: float = WAIT_SECONDS,
                 max_bytes: int = MAX_ARCHIVE_BYTES) -> None:
        self._connector = connector
        self._wait = wait_seconds
        self._max_bytes = max_bytes
        self._locks: dict[tuple[str, str], threading.Lock] = {}
        self._locks_guard = threading.Lock()

    @property
    def _db(self) -> Any:
        return self._connector.db

    @property
    def _rt(self) -> Runtime:
        return self._connector.rt

    def _work_dir(self) -> Path:
        settings = self._connector.settings
        base = getattr(settings, "c2d_work_dir", None) or settings.data_dir / "c2d"
        path = Path(base) / "algorithms"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def fetch(self, job: Any) -> FetchedAlgorithm:
        provider_id, dataset_id = str(job.counterparty_id), str(job.algorithm_ref)
        address = str(job.algorithm_provider or "")
        with self._locks_guard:  # one fetch per (B, dataset) at a time here: parallel jobs share one agreement
            lock = self._locks.setdefault((provider_id, dataset_id), threading.Lock())
        try:
            with lock:
                return self._fetch(provider_id, dataset_id, address)
        except AlgorithmFetchError:
            raise
        except remote_catalog.CounterPartyAddressError as exc:
            raise AlgorithmFetchError(f"the algorithm provider's address is unusable: {exc}") from exc
        except Exception as exc:  # the peer, the network, our disk: say what broke
            log.warning("fetching algorithm %s from %s failed", dataset_id, provider_id, exc_info=True)
            raise AlgorithmFetchError(f"fetching algorithm {dataset_id} from {provider_id} failed: "
                              f"{type(exc).__name__}: {exc}") from exc

    def _fetch(self, provider_id: str, dataset_id: str, address: str) -> FetchedAlgorithm:
        if remote_catalog.counter_party_id_for(address) != provider_id:
            raise AlgorithmFetchError(f"the algorithm provider {address} is not the job's requester {provider_id}: "
                              "an algorithm is only taken from the participant that asked for the job")
        client = self._connector.dsp_client
        dsp_base = remote_catalog.resolve_dsp_base(client, address, audience=provider_id)
        dataset = remote_catalog.fetch_dataset(client, dsp_base=dsp_base, audience=provider_id,
                                               dataset_id=dataset_id)
        envelope = envelope_of(dataset)
        digest = digest_property(dataset)
        if envelope is None or digest is None:
            raise AlgorithmFetchError(f"dataset {dataset_id} of {provider_id} is not a signed algorithm: it lacks "
                              f"{ALGORITHM_ENVELOPE} or {ALGORITHM_DIGEST}")
        with self._db.read_only() as uow:
            known = uow.get(AlgorithmAgreementRow, (provider_id, dataset_id))
            cached = Path(known.archive_path) if known is not None and known.archive_path else None
            agreement_id = known.agreement_id if known is not None else None
            if agreement_id is not None and not _usable_agreement(uow, agreement_id):
                agreement_id = None
        if cached is not None and known is not None and known.digest == digest and cached.is_file() \
                and file_digest(cached) == digest:
            self._remember(provider_id, dataset_id, dsp_base, agreement_id, None, digest, cached, envelope)
            return FetchedAlgorithm(archive=cached, envelope=envelope)
        negotiation_id = None
        if agreement_id is None:
            agreement_id, negotiation_id = self._negotiate(provider_id, dataset_id, dsp_base, dataset)
        self._remember(provider_id, dataset_id, dsp_base, agreement_id, negotiation_id, None, None, None)
        archive = self._pull(agreement_id, dsp_base, digest)
        self._remember(provider_id, dataset_id, dsp_base, agreement_id, negotiation_id, digest, archive, envelope)
        return FetchedAlgorithm(archive=archive, envelope=envelope)

    def _negotiate(self, provider_id: str, dataset_id: str, dsp_base: str,
                   dataset: Mapping[str, Any]) -> tuple[str, str]:
        offers = dataset.get("hasPolicy") or []
        if isinstance(offers, Mapping):
            offers = [offers]
        if not offers or not isinstance(offers[0], Mapping):
            raise AlgorithmFetchError(f"dataset {dataset_id} of {provider_id} offers no contract to us")
        offer = {**offers[0], "target": dataset_id, "assigner": provider_id}
        with self._db.unit_of_work() as uow:
            row = negotiations.initiate(uow, self._rt, counter_party_address=dsp_base, counter_party_id=provider_id,
                                        offer=offer)
            negotiation_id = row.id
        log.info("negotiating algorithm %s with %s (%s)", dataset_id, provider_id, negotiation_id)

        def finalized() -> str | None:
            with self._db.read_only() as uow:
                row = uow.get(NegotiationRow, negotiation_id)
                if row is None or row.state == "TERMINATED":
                    reason = row.error_detail if row is not None else "it vanished"
                    raise AlgorithmFetchError(f"the negotiation for algorithm {dataset_id} with {provider_id} ended: "
                                      f"{reason}")
                if row.state == "FINALIZED" and row.agreement_id:
                    return str(row.agreement_id)
                return None

        agreement_id = self._until(finalized, f"the negotiation for algorithm {dataset_id} to finalize")
        return agreement_id, negotiation_id

    def _pull(self, agreement_id: str, dsp_base: str, digest: str) -> Path:
        with self._db.unit_of_work() as uow:
            transfer = transfers.initiate(uow, self._rt, counter_party_address=dsp_base, agreement_id=agreement_id,
                                          transfer_type=transfers.PULL, data_destination=None)
            transfer_id = transfer.id

        def edr() -> dict[str, Any] | None:
            with self._db.read_only() as uow:
                row = uow.get(TransferRow, transfer_id)
                if row is None or row.state == "TERMINATED":
                    raise AlgorithmFetchError(f"the algorithm transfer was refused: "
                                      f"{row.error_detail if row is not None else 'it vanished'}")
                found = uow.get(EdrRow, transfer_id)
                return dict(found.data_address) if found is not None and row.state == "STARTED" else None

        address = self._until(edr, "the algorithm transfer to start")
        from connector.services.compute_release import endpoint_of

        endpoint, token = endpoint_of(address)
        try:
            return self._download(endpoint, token, digest)
        finally:
            try:
                with self._db.unit_of_work() as uow:
                    transfers.complete(uow, self._rt, transfer_id)
            except Exception:  # completing only frees the provider's token early; it expires anyway
                log.info("completing algorithm transfer %s failed", transfer_id, exc_info=True)

    def _download(self, endpoint: str, token: str, digest: str) -> Path:
        """Stream the archive to the work dir while hashing it; keep it only if it has the catalog's digest."""
        folder = self._work_dir()
        partial = folder / f".download-{os.getpid()}-{time.monotonic_ns()}"
        sha, size = hashlib.sha256(), 0
        try:
            with self._connector.http.stream("GET", endpoint, headers={"Authorization": token},
                                             timeout=60.0) as response, partial.open("wb") as out:
                if response.status_code != 200:
                    raise AlgorithmFetchError(f"the algorithm provider's data plane answered {response.status_code}")
                for chunk in response.iter_bytes(CHUNK):
                    size += len(chunk)
                    if size > self._max_bytes:
                        raise AlgorithmFetchError(f"the algorithm archive exceeds {self._max_bytes} bytes")
                    sha.update(chunk)
                    out.write(chunk)
            got = "sha256:" + sha.hexdigest()
            if got != digest:
                raise AlgorithmFetchError(f"the algorithm archive's digest {got} differs from the {digest} its dataset "
                                  "declares")
            final = folder / f"{got.removeprefix('sha256:')}.tar.gz"
            shutil.move(partial, final)
            return final
        finally:
            partial.unlink(missing_ok=True)

    def _remember(self, provider_id: str, dataset_id: str, address: str, agreement_id: str | None,
                  negotiation_id: str | None, digest: str | None, archive: Path | None,
                  envelope: Mapping[str, Any] | None) -> None:
        with self._db.unit_of_work() as uow:
            row = uow.get(AlgorithmAgreementRow, (provider_id, dataset_id))
            if row is None:
                row = AlgorithmAgreementRow(provider_id=provider_id, dataset_id=dataset_id, provider_address=address,
                                            updated_at=self._rt.clock())
                uow.add(row)
            row.provider_address = address
            row.agreement_id = agreement_id or row.agreement_id
            row.negotiation_id = negotiation_id or row.negotiation_id
            if digest is not None and archive is not None:
                row.digest, row.archive_path = digest, str(archive)
                row.envelope = dict(envelope) if envelope is not None else row.envelope
            row.updated_at = self._rt.clock()

    def _until(self, probe: Callable[[], Any], what: str) -> Any:
        deadline = time.monotonic() + self._wait
        while time.monotonic() < deadline:
            value = probe()
            if value is not None:
                return value
            time.sleep(POLL_SECONDS)
        raise AlgorithmFetchError(f"timed out after {self._wait:.0f} s waiting for {what}")


def _usable_agreement(uow: Session, agreement_id: str) -> bool:
    agreement = uow.get(AgreementRow, agreement_id)
    return agreement is not None and agreement.finalized

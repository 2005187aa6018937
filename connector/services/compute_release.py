"""The requester (B) takes delivery of a compute job: pull the release document, verify A's receipt, store both.

Runs as an outbox job (`transfers.RELEASE_JOB`), queued in the transaction that applied A's TransferStartMessage,
so a crash between the start and the pull loses nothing. The document comes from A's public data plane with the
token A put in the start's DataAddress (our EDR). The receipt must be a DSSE envelope signed by A's DID (the
transfer's counter-party) over a run receipt of this very job whose output digests match what we received;
otherwise our job is FAILED with the reason and nothing is stored as released.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from compute_to_data.receipts import output_digest, verify_receipt
from compute_to_data.signing import SignatureCheckError
from connector.persistence.database import Database
from connector.persistence.tables import EdrRow, TransferRow
from connector.services import compute_transfers, transfers
from connector.services.runtime import Runtime
from contracts.transfer import TransferMessage, TransferState, reached_state

MAX_RELEASE_BYTES = 8 << 20

DidResolve = Callable[[str], Mapping[str, Any]]


class ReleaseError(Exception):
    """The release cannot be taken (wrong document, bad receipt): the job fails, no retry helps."""


def endpoint_of(address: Mapping[str, Any]) -> tuple[str, str]:
    """(endpoint, token) of a DSP DataAddress as a provider's TransferStartMessage carries it."""
    endpoint = address.get("endpoint")
    token = None
    for prop in address.get("endpointProperties") or []:
        if isinstance(prop, Mapping) and prop.get("name") in ("authorization",
                                                              "https://w3id.org/edc/v0.0.1/ns/authorization"):
            token = prop.get("value")
            break
    if not isinstance(endpoint, str) or not isinstance(token, str):
        raise ReleaseError("the provider's DataAddress names no endpoint and authorization token")
    return endpoint, token


def fetch_document(http: httpx.Client, endpoint: str, token: str) -> dict[str, Any]:
    """GET the release document with the transfer's token, capped at MAX_RELEASE_BYTES."""
    with http.stream("GET", endpoint, headers={"Authorization": token}, timeout=30.0) as response:
        if response.status_code != 200:
            body = response.read()[:300].decode(errors="replace")
            raise httpx.HTTPStatusError(f"the provider's data plane answered {response.status_code}: {body}",
                                        request=response.request, response=response)
        chunks, size = [], 0
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > MAX_RELEASE_BYTES:
                raise ReleaseError(f"the release document exceeds {MAX_RELEASE_BYTES} bytes")
            chunks.append(chunk)
    try:
        document = json.loads(b"".join(chunks))
    except ValueError as exc:
        raise ReleaseError(f"the release document is not JSON: {exc}") from exc
    if not isinstance(document, dict) or not isinstance(document.get("outputs"), dict) \
            or not isinstance(document.get("receipt"), dict):
        raise ReleaseError('the release document must be {"jobId", "outputs": {...}, "receipt": {...}}')
    return document


def verify_release(document: Mapping[str, Any], *, provider_did: str, resolve: DidResolve) -> dict[str, Any]:
    """Check A's receipt against the document; return the receipt's predicate. Raises ReleaseError."""
    try:
        verified = verify_receipt(document["receipt"], resolve)
    except (SignatureCheckError, ValueError, KeyError, TypeError) as exc:
        raise ReleaseError(f"the run receipt does not verify: {exc}") from exc
    if verified.signer_did != provider_did:
        raise ReleaseError(f"the run receipt is signed by {verified.signer_did}, not by the provider {provider_did}")
    statement = verified.statement
    predicate = dict(statement.get("predicate") or {})
    if predicate.get("jobId") != document.get("jobId"):
        raise ReleaseError(f"the run receipt is about job {predicate.get('jobId')}, not {document.get('jobId')}")
    signed = {s.get("name"): "sha256:" + str((s.get("digest") or {}).get("sha256"))
              for s in statement.get("subject") or [] if isinstance(s, Mapping)}
    outputs = document.get("outputs") or {}
    if set(signed) != set(outputs):
        raise ReleaseError(f"the released outputs {sorted(outputs)} are not the ones the receipt signs "
                           f"{sorted(signed)}")
    for name, value in outputs.items():
        if signed[name] != output_digest(value):
            raise ReleaseError(f"output {name!r} does not match the digest the receipt signs")
    return predicate


class ReleasePuller:
    """The outbox's `release` hook: one call per Compute-PULL start at the requester."""

    def __init__(self, db: Database, rt: Runtime, http: httpx.Client, resolve: DidResolve) -> None:
        self._db, self._rt, self._http, self._resolve = db, rt, http, resolve

    def __call__(self, transfer_id: str) -> None:
        with self._db.read_only() as uow:
            transfer = uow.get(TransferRow, transfer_id)
            edr = uow.get(EdrRow, transfer_id)
            job = compute_transfers.job_for_transfer(uow, transfer) if transfer is not None else None
            if transfer is None or job is None or job.state in compute_transfers.FINAL_STATES:
                return
            address = dict(edr.data_address) if edr is not None else None
            provider_did = transfer.counter_party_id
        try:
            if address is None:
                raise ReleaseError("the provider started the transfer without a DataAddress")
            endpoint, token = endpoint_of(address)
            document = fetch_document(self._http, endpoint, token)
            predicate = verify_release(document, provider_did=provider_did, resolve=self._resolve)
        except ReleaseError as exc:
            self._finish(transfer_id, failure=str(exc))
            return
        self._finish(transfer_id, document=document, predicate=predicate)

    def _finish(self, transfer_id: str, *, failure: str | None = None, document: Mapping[str, Any] | None = None,
                predicate: Mapping[str, Any] | None = None) -> None:
        with self._db.unit_of_work() as uow:
            transfer = transfers.get_local(uow, transfer_id, lock=True)
            job = compute_transfers.job_for_transfer(uow, transfer)
            if job is None or job.state in compute_transfers.FINAL_STATES:
                return
            open_transfer = reached_state(TransferState(transfer.state)) == TransferState.STARTED
            if failure is not None:
                compute_transfers.finish_requester_job(job, self._rt, compute_transfers.FAILED, failure)
                if open_transfer:
                    transfers.send(uow, self._rt, transfer, TransferMessage.TERMINATION,
                                   {"code": "c2d:RECEIPT_INVALID", "reason": failure[:500]})
                return
            assert document is not None and predicate is not None  # noqa: S101 - set together by the caller
            algorithm = predicate.get("algorithm") or {}
            inputs = predicate.get("input") or {}
            compute_transfers.finish_requester_job(
                job, self._rt, compute_transfers.RELEASED, None,
                outputs=dict(document["outputs"]), receipt=dict(document["receipt"]),
                algorithm_digest=algorithm.get("digest") or job.algorithm_digest,
                algorithm_signer=algorithm.get("signer") or job.algorithm_signer,
                record_count=inputs.get("recordCount", job.record_count),
                epsilon_charged=predicate.get("epsilonCharged", job.epsilon_charged),
                input_digest=inputs.get("digest") or job.input_digest)
            if open_transfer:
                transfers.send(uow, self._rt, transfer, TransferMessage.COMPLETION)

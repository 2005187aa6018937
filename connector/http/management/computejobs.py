"""Compute jobs: /v3/computejobs (Sovra extension). Both roles' jobs; the requester (B) creates them here.

POST asks a data provider to run our signed algorithm on data we hold a (compute-only) agreement for; the request
travels as a DSP transfer of format Compute-PULL (docs/compute-to-data.md). GET shows a job with its state, reason,
scrubbed events and, once RELEASED, the released outputs and A's signed receipt. A requester's GET of a job that is
still running asks the provider for its current state (best effort: a peer that does not answer changes nothing).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from sqlalchemy import select

from connector.http.deps import ConnectorDep
from connector.http.management.errors import invalid, not_found, transaction, translated
from connector.http.management.jsonld_io import Body
from connector.http.management.schemas import ApiError
from connector.persistence.tables import AgreementRow, ComputeJobRow, NegotiationRow, TransferRow
from connector.services import compute_jobs, compute_transfers, receipt_check, remote_catalog

log = logging.getLogger("sovra.computejobs")

router = APIRouter(prefix="/v3/computejobs", tags=["Compute jobs"])
_ERRORS = {400: {"model": list[ApiError]}, 404: {"model": list[ApiError]}}
ROLES = ("provider", "requester")


def job_body(job: ComputeJobRow) -> dict[str, Any]:
    """A job as the API shows it (the pipeline's view, plus the DSP side and the receipt): never raw data."""
    return {**compute_jobs.job_json(job, operator=True), "transferProcessId": job.transfer_id,
            "counterPartyAddress": job.counterparty_address, "receipt": job.receipt}


def _text(body: dict[str, Any], key: str, *, required: bool = True) -> str | None:
    value = body.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value:
        raise invalid(f"/{key}", "is required and must be a non-empty string", value)
    return value


@router.post("", summary="Ask a data provider to run our algorithm on its data (requester; extension)",
             status_code=201, responses={201: {"description": "The job, QUEUED"}, **_ERRORS,
                                         502: {"model": list[ApiError]}})
def create_job(body: Body, connector: ConnectorDep) -> JSONResponse:
    agreement_id = _text(body, "agreementId")
    algorithm = _text(body, "algorithm")
    address = _text(body, "counterPartyAddress", required=False)
    parameters = body.get("parameters", {})
    if not isinstance(parameters, dict):
        raise invalid("/parameters", 'must be an object, e.g. {"dpEpsilon": 0.5, "minAggregationSize": 2}',
                      parameters)
    with transaction(connector) as uow:
        agreement = uow.get(AgreementRow, agreement_id)
        if agreement is None or agreement.role != "CONSUMER":
            raise invalid("/agreementId", f"names no contract agreement we consume ({agreement_id}); negotiate "
                                          "the dataset first", agreement_id)
        provider_id = agreement.provider_id
        negotiation = uow.get(NegotiationRow, agreement.negotiation_id)
        address = address or (negotiation.counter_party_address if negotiation else "")
    with translated():
        dsp_base = remote_catalog.resolve_dsp_base(connector.dsp_client, address or "", audience=provider_id)
    try:
        with transaction(connector) as uow:
            job = compute_transfers.request_job(uow, connector.rt, agreement_id=str(agreement_id),
                                                dsp_base=dsp_base, algorithm=str(algorithm), parameters=parameters)
            answer = {"@id": job.id, "@type": "ComputeJob", "state": job.state, "transferProcessId": job.transfer_id}
    except compute_transfers.ComputeJobRequestError as exc:
        raise invalid(exc.pointer, exc.problem) from exc
    return JSONResponse(answer, status_code=201)


@router.get("", summary="List compute jobs, newest first (both roles; extension)")
def list_jobs(connector: ConnectorDep, role: str | None = Query(None), state: str | None = Query(None),
              offset: int = Query(0, ge=0), limit: int = Query(50, ge=1, le=500)) -> JSONResponse:
    if role is not None and role not in ROLES:
        raise invalid("?role", f"is {role!r}; use provider or requester", role)
    query = select(ComputeJobRow).order_by(ComputeJobRow.created_at.desc(), ComputeJobRow.id)
    if role is not None:
        query = query.where(ComputeJobRow.role == role)
    if state is not None:
        query = query.where(ComputeJobRow.state == state.upper())
    with transaction(connector) as uow:
        rows = list(uow.scalars(query.offset(offset).limit(limit)))
        return JSONResponse([job_body(row) for row in rows])


def _load(connector: Any, job_id: str) -> dict[str, Any]:
    with transaction(connector) as uow:
        job = uow.get(ComputeJobRow, job_id)
        if job is None:
            raise not_found("compute job", job_id)
        return job_body(job)


def _refresh(connector: Any, job_id: str) -> None:
    """Ask the provider for a running job's state (DSP GET of its transfer); never fails the caller."""
    with connector.db.read_only() as uow:
        job = uow.get(ComputeJobRow, job_id)
        if job is None or job.role != "requester" or job.state in compute_transfers.FINAL_STATES:
            return
        transfer = uow.get(TransferRow, job.transfer_id) if job.transfer_id else None
        if transfer is None or not transfer.provider_pid:
            return
        url = f"{transfer.counter_party_address}/transfers/{transfer.provider_pid}"
        audience = transfer.counter_party_id
    try:
        body = connector.dsp_client.get(url, audience=audience).body or {}
    except Exception as exc:  # best effort: the provider may be busy or gone; our stored state still stands
        log.info("refreshing compute job %s from %s failed: %s", job_id, url, exc)
        return
    with connector.db.unit_of_work() as uow:
        job = uow.get(ComputeJobRow, job_id)
        if job is not None:
            compute_transfers.mirror_provider_state(job, connector.rt, body)


@router.get("/{job_id}", summary="Get a compute job (extension)", responses=_ERRORS)
def get_job(job_id: str, connector: ConnectorDep) -> JSONResponse:
    _load(connector, job_id)  # 404 first
    try:
        _refresh(connector, job_id)
    except Exception:  # never fails the GET
        log.exception("refreshing compute job %s failed", job_id)
    return JSONResponse(_load(connector, job_id))


@router.get("/{job_id}/receipt", summary="The signed run receipt (DSSE envelope) of a job (extension)",
            responses=_ERRORS)
def get_receipt(job_id: str, connector: ConnectorDep) -> JSONResponse:
    body = _load(connector, job_id)
    if body["receipt"] is None:
        raise not_found(f"receipt of compute job (state {body['state']})", job_id)
    return JSONResponse(body["receipt"])


@router.get("/{job_id}/outputs", summary="The released outputs of a job (extension)", responses=_ERRORS)
def get_outputs(job_id: str, connector: ConnectorDep) -> JSONResponse:
    body = _load(connector, job_id)
    if body["outputs"] is None:
        raise not_found(f"released outputs of compute job (state {body['state']})", job_id)
    return JSONResponse(body["outputs"])


@router.get("/{job_id}/receipt/verification", responses=_ERRORS,
            summary="Verify a job's receipt again and decode its statement (extension)")
def verify_job_receipt(job_id: str, connector: ConnectorDep) -> JSONResponse:
    """The data provider signs every receipt: the counter-party for a requester's job, ourselves for our own."""
    body = _load(connector, job_id)
    if body["receipt"] is None:
        raise not_found(f"receipt of compute job (state {body['state']})", job_id)
    expected = body["counterPartyId"] if body["role"] == "requester" else connector.settings.participant_id
    with translated():
        answer = receipt_check.check_receipt(body["receipt"], expected_signer=str(expected),
                                             outputs=body["outputs"], resolve=connector.did_resolver.resolve)
    return JSONResponse({"jobId": job_id, **answer})

"""The data subject's own API, mounted at /api/subject/v1: `Authorization: Bearer <personal token>`.

The page at /console/me calls it with her session cookie instead (connector.http.console.subject_signin).
A subject sees and changes only what is hers: her consents (grant or revoke for an AI provider and purpose),
the jobs that ran on her record, her own result and the job's signed receipt. Anything else answers 404, so a
job she was not part of is indistinguishable from one that does not exist.

    GET  /consents                    her consents: current status and the events
    POST /consents                    {"provider", "purpose", "action": "grant"|"revoke", "expiresAt"?}
    GET  /jobs                        jobs that ran on her record
    GET  /jobs/{id}/result            her result of that job
    GET  /jobs/{id}/receipt           the job's signed run receipt (DSSE envelope)
    GET  /jobs/{id}/receipt/verification   that receipt checked again against our DID, its statement decoded
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse

from connector.container import Connector
from connector.http.body import BodyError, read_json
from connector.http.console.sessions import CSRF_HEADER, UNSAFE_METHODS
from connector.http.console.subject_signin import SUBJECT_COOKIE, SubjectSessions
from connector.persistence.tables import ComputeJobRow
from connector.services import compute_jobs, consents, receipt_check, subject_results, subject_tokens

SUBJECT_PATH = "/api/subject/v1"
BODY_LIMIT = 64 * 1024


class SubjectApiError(Exception):
    def __init__(self, status: int, code: str, message: str, *, path: str | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.path = status, code, path


def _error(status: int, code: str, message: str, path: str | None = None) -> JSONResponse:
    headers = {"WWW-Authenticate": 'Bearer realm="subject"'} if status == 401 else None
    return JSONResponse({"error": code, "message": message, "path": path}, status_code=status, headers=headers)


def subject_of(request: Request) -> str:
    """The subject the bearer token (or her /console/me session, with its CSRF header on a change) belongs to;
    401 otherwise."""
    connector: Connector = request.app.state.connector
    header = request.headers.get("authorization") or ""
    scheme, _, token = header.partition(" ")
    if not header and SUBJECT_COOKIE in request.cookies:
        token = _session_token(request)
    elif scheme.lower() != "bearer" or not token.strip():
        raise SubjectApiError(401, "unauthorized", "send your personal token as 'Authorization: Bearer <token>'")
    with connector.db.read_only() as session:
        subject = subject_tokens.authenticate(session, token.strip())
    if subject is None:
        raise SubjectApiError(401, "unauthorized", "the token is unknown or revoked; ask the data provider's "
                                                   "operator for a new one")
    return subject


def _session_token(request: Request) -> str:
    """The personal token behind a /console/me session cookie; unsafe methods must repeat its CSRF token."""
    sessions: SubjectSessions | None = request.app.state.subject_sessions
    found = sessions.lookup(request.cookies.get(SUBJECT_COOKIE)) if sessions is not None else None
    if found is None:
        raise SubjectApiError(401, "unauthorized", "your session has ended (signed out, expired or the connector "
                                                   "restarted); sign in again with your personal token")
    session, token = found
    if request.method in UNSAFE_METHODS and not session.csrf_matches(request.headers.get(CSRF_HEADER)):
        raise SubjectApiError(403, "forbidden", f"the {CSRF_HEADER} header is missing or does not match your "
                                                "session; reload the page")
    return token


async def connector_of(request: Request) -> Connector:  # async: no thread-pool hop (see deps.get_connector)
    return request.app.state.connector


SubjectDep = Annotated[str, Depends(subject_of)]
ConnectorDep = Annotated[Connector, Depends(connector_of)]


def build_app(connector: Connector, sessions: SubjectSessions | None = None) -> FastAPI:
    app = FastAPI(title="Sovra data subject API", openapi_url="/openapi.json", docs_url=None, redoc_url=None,
                  redirect_slashes=False)
    app.state.connector = connector
    app.state.subject_sessions = sessions

    @app.exception_handler(SubjectApiError)
    async def subject_error(_request: Request, exc: SubjectApiError) -> JSONResponse:
        return _error(exc.status, exc.code, str(exc), exc.path)

    @app.exception_handler(BodyError)
    async def body_error(_request: Request, exc: BodyError) -> JSONResponse:
        return _error(exc.status, exc.code, str(exc))

    @app.get("/consents")
    def my_consents(subject: SubjectDep, connector: ConnectorDep) -> JSONResponse:
        with connector.db.read_only() as session:
            status = consents.status(session, connector.rt, subject=subject)
            events = [consents.event_json(r) for r in consents.events(session, subject=subject)]
        return JSONResponse({"subject": subject, "consents": status, "events": events})

    @app.post("/consents")
    async def change_consent(request: Request, subject: SubjectDep, connector: ConnectorDep) -> JSONResponse:
        body = await read_json(request, limit=BODY_LIMIT)
        if not isinstance(body, dict):
            raise SubjectApiError(400, "invalid.request", "the body must be a JSON object: "
                                                          '{"provider", "purpose", "action": "grant"|"revoke"}')
        action = body.get("action")
        if action not in consents.ACTIONS:
            raise SubjectApiError(400, "invalid.request", "field /action must be 'grant' or 'revoke'", path="/action")
        expires = _time(body.get("expiresAt"))
        try:
            with connector.db.unit_of_work() as uow:
                row = consents.record(uow, connector.rt, subject=subject, provider=body.get("provider"),  # type: ignore[arg-type]
                                      purpose=body.get("purpose"), action=action, source="subject",  # type: ignore[arg-type]
                                      actor="subject:" + subject, expires_at=expires)
                answer = consents.event_json(row)
        except consents.InvalidConsentError as exc:
            raise SubjectApiError(400, "invalid.request", str(exc), path=exc.pointer) from None
        return JSONResponse(answer, status_code=201)

    @app.get("/jobs")
    def my_jobs(subject: SubjectDep, connector: ConnectorDep) -> JSONResponse:
        with connector.db.read_only() as session:
            rows = subject_results.jobs_of(session, subject)
        return JSONResponse([_job_view(job, has_result=result is not None) for job, result in rows])

    @app.get("/jobs/{job_id}/result")
    def my_result(job_id: str, subject: SubjectDep, connector: ConnectorDep) -> JSONResponse:
        job, result = _mine(connector, job_id, subject)
        return JSONResponse({"jobId": job.id, "subject": subject, "state": job.state, "result": result})

    @app.get("/jobs/{job_id}/receipt")
    def my_receipt(job_id: str, subject: SubjectDep, connector: ConnectorDep) -> JSONResponse:
        job, _mine_row = _mine(connector, job_id, subject)
        if job.receipt is None:
            raise SubjectApiError(404, "not.found", f"job {job_id} has no receipt yet (it is {job.state})")
        return JSONResponse(job.receipt)

    @app.get("/jobs/{job_id}/receipt/verification")
    def my_receipt_checked(job_id: str, subject: SubjectDep, connector: ConnectorDep) -> JSONResponse:
        job, _mine_row = _mine(connector, job_id, subject)
        if job.receipt is None:
            raise SubjectApiError(404, "not.found", f"job {job_id} has no receipt yet (it is {job.state})")
        answer = receipt_check.check_receipt(job.receipt, expected_signer=connector.settings.participant_id,
                                             outputs=None, resolve=connector.did_resolver.resolve)
        return JSONResponse({"jobId": job_id, **answer})

    return app


def _mine(connector: Connector, job_id: str, subject: str) -> tuple[ComputeJobRow, Any]:
    """The job and her result, when the job ran on her record."""
    with connector.db.read_only() as session:
        ran, result = subject_results.result_of(session, job_id, subject)
        job = session.get(ComputeJobRow, job_id) if ran else None
    if job is None:
        raise SubjectApiError(404, "not.found", f"no job {job_id} ran on your record")
    return job, result


def _job_view(job: ComputeJobRow, *, has_result: bool) -> dict[str, Any]:
    view = compute_jobs.job_json(job, operator=False)
    view["hasResult"] = has_result
    return view


def _time(value: Any) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise SubjectApiError(400, "invalid.request", "field /expiresAt must be an RFC 3339 date-time, e.g. "
                                                      "2027-01-01T00:00:00Z", path="/expiresAt") from None
    if parsed.tzinfo is None:
        raise SubjectApiError(400, "invalid.request", "field /expiresAt needs a time zone", path="/expiresAt")
    return parsed

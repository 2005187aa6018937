"""Catalog protocol: POST /catalog/request (paged with Link headers) and GET /catalog/datasets/{id}."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from connector.http.body import BodyError, read_dsp_message
from connector.http.deps import ConnectorDep, ParticipantDep, remember_token
from connector.http.errors import dsp_error_response
from connector.services import catalog as catalog_service

router = APIRouter()
DEFAULT_PAGE_SIZE = 50
EDC_QUERY_SPEC = "https://w3id.org/edc/v0.0.1/ns/QuerySpec"
EDC_FILTER_EXPRESSION = "https://w3id.org/edc/v0.0.1/ns/filterExpression"


def restricting_filters(value: object) -> list[object]:
    """The entries of a catalog request's `filter` that would restrict the catalog (we support none of them).

    Eclipse EDC puts its paging QuerySpec (offset, limit, sort) into `filter` on every catalog request; one
    without filter expressions asks for everything, so it is not a filter we must refuse. Paging itself is ours
    (Link headers), so its offset and limit are not applied.
    """
    entries = value if isinstance(value, list) else [value] if value else []
    return [entry for entry in entries
            if not (isinstance(entry, dict) and entry.get("@type") == EDC_QUERY_SPEC
                    and not entry.get(EDC_FILTER_EXPRESSION))]


@router.post("/catalog/request")
async def catalog_request(request: Request, connector: ConnectorDep, participant: ParticipantDep,
                          pageSize: int = DEFAULT_PAGE_SIZE, continuationToken: str | None = None) -> JSONResponse:  # noqa: N803
    message = await read_dsp_message(request, {"CatalogRequestMessage"}, limit=connector.settings.dsp_body_limit)
    if restricting_filters(message.get("filter")):
        raise BodyError(400, "filter.unsupported",
                        "catalog filters are not supported; request the whole catalog and filter on your side")

    def page() -> catalog_service.Page:
        remember_token(connector, participant)
        with connector.db.read_only() as uow:
            return catalog_service.catalog_page(uow, connector.rt, participant_id=participant.id,
                                                page_size=pageSize, token=continuationToken)

    result = await run_in_threadpool(page)
    base = connector.settings.dsp_url + "/catalog/request"
    links = []
    if result.next_token:
        links.append(f'<{base}?pageSize={pageSize}&continuationToken={quote(result.next_token)}>; rel="next"')
    if result.previous_token:
        links.append(f'<{base}?pageSize={pageSize}&continuationToken={quote(result.previous_token)}>; rel="previous"')
    return JSONResponse(result.body, headers={"Link": ", ".join(links)} if links else None)


@router.get("/catalog/datasets/{dataset_id:path}")
async def dataset(request: Request, dataset_id: str, connector: ConnectorDep,
                  participant: ParticipantDep) -> JSONResponse:
    def load() -> dict | None:  # type: ignore[type-arg]
        remember_token(connector, participant)
        with connector.db.read_only() as uow:
            return catalog_service.dataset_for(uow, connector.rt, participant_id=participant.id,
                                               dataset_id=dataset_id)

    body = await run_in_threadpool(load)
    if body is None:
        return dsp_error_response(request, 404, "not.found", f"dataset {dataset_id} does not exist")
    return JSONResponse(body)

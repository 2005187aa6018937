"""DSP 2025-1 endpoints, provider side and consumer callbacks, under /api/dsp/2025-1."""

from fastapi import APIRouter, Depends

from connector.http.deps import verified_participant
from connector.http.dsp import catalog, negotiations, transfers

router = APIRouter(dependencies=[Depends(verified_participant)])
router.include_router(catalog.router)
router.include_router(negotiations.router)
router.include_router(transfers.router)

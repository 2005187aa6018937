"""Where a provider gets the requester's algorithm from: a seam, so the pipeline never knows about DSP.

The DSP implementation (negotiate with the requester for its algorithm dataset once, pull it, cache it by digest)
lives in connector/services/algorithms.py; tests plug in a source that serves a local signed bundle.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol


class AlgorithmFetchError(RuntimeError):
    """The algorithm could not be obtained; `reason` goes into the job (no secrets, no data)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class FetchedAlgorithm:
    archive: Path
    """The packed bundle (.tar.gz) exactly as the requester published it; the pipeline hashes it itself."""
    envelope: dict[str, Any]
    """The DSSE envelope the requester published beside it (its catalog's c2d:algorithmEnvelope)."""


class AlgorithmSource(Protocol):
    def fetch(self, job: Any) -> FetchedAlgorithm:
        """The artifact for `job` (a ComputeJobRow: algorithm_ref, algorithm_provider, counterparty_id...).

        Called outside any transaction (it may talk to peers); raises AlgorithmFetchError.
        """
        ...


class NoAlgorithmSource:
    """Fail closed: a connector wired without a source refuses to fetch anything."""

    def fetch(self, job: Any) -> FetchedAlgorithm:
        raise AlgorithmFetchError("no algorithm source configured")

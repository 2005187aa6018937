"""The source of a Compute-PULL: a compute job's release document, served as JSON.

The control plane resolves a started Compute-PULL transfer to ``{"type": "ComputeRelease", "document": {...}}``
(`connector.services.compute_transfers.release_address`), read from the database on every request like any other
address. The document holds only what the release gate let out (``jobId``, ``outputs``, ``receipt``); the asset's
own data address is never reachable through a compute transfer.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping

from connector.dataplane.errors import DataAddressError
from connector.dataplane.payload import BytesSource, Source, SourceMetadata

RELEASE_TYPE = "ComputeRelease"


def open_release(properties: Mapping[str, object]) -> Source:
    document = properties.get("document")
    if not isinstance(document, Mapping):
        raise DataAddressError("document", "is required for a ComputeRelease address and must be an object")
    body = json.dumps(document, sort_keys=True, separators=(",", ":")).encode()
    job_id = str(document.get("jobId", "release"))
    metadata = SourceMetadata(content_type="application/json", size=len(body),
                              filename=f"compute-release-{job_id.rsplit(':', 1)[-1]}.json",
                              etag=f'"{hashlib.sha256(body).hexdigest()[:32]}"')
    return BytesSource(body, metadata)

"""Algorithms: POST /v3/algorithms publishes a signed algorithm bundle as an asset (Sovra extension).

The body names files under the connector's --file-root (what `sovra algorithm sign` wrote): the bundle and its
DSSE envelope (a path, or the envelope object itself). The envelope is verified against the bundle (signature,
signer DID, provenance, digest) before anything is stored; the bundle is copied to
`<file root>/algorithms/<digest>.tar.gz` and an asset is created whose properties carry
`https://w3id.org/sovra/c2d/v1#algorithmEnvelope` and `...#algorithmDigest`, so the algorithm appears, with its
envelope, in our DCAT catalog. Offer it with a contract definition as usual; its policy must permit `use` (the data
provider pulls the bundle), e.g. with a prohibition of `distribute`.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from connector.dataplane.errors import DataPlaneError
from connector.dataplane.file_source import confine
from connector.http.deps import ConnectorDep
from connector.http.management.errors import invalid, transaction
from connector.http.management.jsonld_io import Body
from connector.http.management.schemas import ApiError
from connector.services import algorithms

router = APIRouter(prefix="/v3/algorithms", tags=["Algorithms"])
_ERRORS = {400: {"model": list[ApiError]}, 409: {"model": list[ApiError]}}


def _under_root(connector: Any, value: Any, pointer: str) -> Path:
    root = connector.settings.file_root
    if not isinstance(value, str) or not value:
        raise invalid(pointer, "is required: the path of a file under the connector's --file-root", value)
    try:
        path = confine(Path(value), root)
    except DataPlaneError as exc:
        raise invalid(pointer, f"must lie under the connector's --file-root ({root})", value) from exc
    if not path.is_file():
        raise invalid(pointer, f"names no file ({value})", value)
    return path


def _envelope(connector: Any, value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    path = _under_root(connector, value, "/envelope")
    try:
        loaded = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise invalid("/envelope", f"is not a JSON file: {exc}", value) from exc
    if not isinstance(loaded, dict):
        raise invalid("/envelope", "must hold a DSSE envelope (a JSON object)", value)
    return loaded


@router.post("", summary="Publish a signed algorithm bundle as an asset (extension)", status_code=201,
             responses={201: {"description": "The asset id and the bundle's digest"}, **_ERRORS})
def publish_algorithm(body: Body, connector: ConnectorDep) -> JSONResponse:
    from compute_to_data.signing import SignatureCheckError, verify_artifact

    asset_id = body.get("@id") or body.get("id")
    if not isinstance(asset_id, str) or not asset_id:
        raise invalid("/@id", "is required: the asset (and dataset) id of the algorithm", asset_id)
    archive = _under_root(connector, body.get("archive"), "/archive")
    envelope = _envelope(connector, body.get("envelope"))
    properties = body.get("properties") or {}
    if not isinstance(properties, dict):
        raise invalid("/properties", "must be an object of public asset properties", properties)
    digest = algorithms.file_digest(archive)
    try:
        verified = verify_artifact(envelope, digest, connector.did_resolver.resolve)
    except (SignatureCheckError, ValueError) as exc:
        raise invalid("/envelope", f"does not verify against the bundle: {exc}") from exc
    target = connector.settings.file_root / "algorithms" / f"{digest.removeprefix('sha256:')}.tar.gz"
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.resolve() != archive.resolve():
        shutil.copyfile(archive, target)
    with transaction(connector) as uow:
        algorithms.publish(uow, connector.rt, asset_id=asset_id, archive=target, envelope=envelope, digest=digest,
                           properties=properties)
    return JSONResponse({"@id": asset_id, "digest": digest, "signer": verified.signer_did}, status_code=201)

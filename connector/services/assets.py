"""Assets: what a provider can share, with the private data address its data plane reads from.

The rule kept here: an asset is only stored if the data plane could serve it. Its data address must be one of the
types the data plane understands (File, HttpData) and complete for that type, so a mistake surfaces when the
operator creates the asset, not when a consumer first pulls. An asset a provider negotiation or agreement refers
to cannot be deleted (as in EDC): the agreement must stay meaningful.

    AssetError
    ├── AssetNotFoundError   no asset with that id
    ├── AssetExistsError     create with an id already taken
    ├── AssetInUseError      delete of an asset a negotiation or agreement refers to
    └── InvalidAssetError    a field is missing or unusable (`pointer` names it)
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from connector.dataplane.errors import DataAddressError
from connector.dataplane.http_source import HttpDataAddress
from connector.dataplane.release_source import RELEASE_TYPE
from connector.dataplane.sources import FILE_TYPE, normalize_address, source_type
from connector.persistence.tables import AgreementRow, AssetRow, NegotiationRow
from connector.services.runtime import Runtime
from connector.settings import Settings
from contracts import Role


class AssetError(Exception):
    """Base class of the errors this module raises."""


class AssetNotFoundError(AssetError):
    def __init__(self, asset_id: str) -> None:
        self.asset_id = asset_id
        super().__init__(f"asset {asset_id} does not exist")


class AssetExistsError(AssetError):
    def __init__(self, asset_id: str) -> None:
        self.asset_id = asset_id
        super().__init__(f"asset {asset_id} already exists; update it with PUT or choose another @id")


class AssetInUseError(AssetError):
    def __init__(self, asset_id: str, *, referenced_by: str) -> None:
        self.asset_id = asset_id
        self.referenced_by = referenced_by
        super().__init__(f"asset {asset_id} cannot be deleted because {referenced_by} refers to it")


class InvalidAssetError(AssetError):
    def __init__(self, pointer: str, problem: str) -> None:
        self.pointer = pointer
        self.problem = problem
        super().__init__(f"field {pointer} {problem}")


def check_data_address(settings: Settings, address: Mapping[str, Any]) -> dict[str, Any]:
    """Return `address` unchanged if the data plane can serve it; raise InvalidAssetError naming the field."""
    try:
        kind = source_type(address)
        properties = normalize_address(address)
        if kind == RELEASE_TYPE:
            raise InvalidAssetError("/dataAddress/type", "ComputeRelease is built by the connector for compute "
                                    "jobs and cannot be an asset's address; use File or HttpData")
        if kind == FILE_TYPE:
            _check_file(settings, properties)
        else:
            _check_http(properties)
    except DataAddressError as exc:
        hint = f"; supported values: {', '.join(exc.supported)}" if exc.supported else ""
        raise InvalidAssetError(f"/dataAddress/{exc.field}", exc.problem + hint) from exc
    return dict(address)


def _check_file(settings: Settings, properties: Mapping[str, Any]) -> None:
    path = properties.get("path")
    if not isinstance(path, str) or not path:
        raise DataAddressError("path", "is required for a File address; give the absolute path of the file")
    if not Path(path).is_absolute():
        raise DataAddressError("path", f"must be absolute, but {path!r} is relative")
    root = settings.file_root
    if root is not None and not Path(path).resolve().is_relative_to(root.resolve()):
        raise DataAddressError("path", f"lies outside the connector's file root {root}; "
                                       "move the data under it or change --file-root")


def _check_http(properties: Mapping[str, Any]) -> None:
    address = HttpDataAddress.from_properties(properties)
    parts = urlsplit(address.base_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise DataAddressError("baseUrl", f"must be an http(s) URL, not {address.base_url!r}")


def get(uow: Session, asset_id: str) -> AssetRow:
    row = uow.get(AssetRow, asset_id)
    if row is None:
        raise AssetNotFoundError(asset_id)
    return row


def create(uow: Session, rt: Runtime, *, asset_id: str | None, properties: Mapping[str, Any],
           private_properties: Mapping[str, Any], data_address: Mapping[str, Any]) -> AssetRow:
    """Store a new asset; a missing id is generated. Raise AssetExistsError or InvalidAssetError."""
    address = check_data_address(rt.settings, data_address)
    asset_id = asset_id or rt.new_id()
    if uow.get(AssetRow, asset_id) is not None:
        raise AssetExistsError(asset_id)
    row = AssetRow(id=asset_id, properties=_without_id(properties), private_properties=dict(private_properties),
                   data_address=address, created_at=rt.clock())
    uow.add(row)
    return row


def update(uow: Session, rt: Runtime, *, asset_id: str, properties: Mapping[str, Any],
           private_properties: Mapping[str, Any], data_address: Mapping[str, Any]) -> AssetRow:
    """Replace an asset's properties and data address; agreements keep referring to it by id."""
    address = check_data_address(rt.settings, data_address)
    row = get(uow, asset_id)
    row.properties = _without_id(properties)
    row.private_properties = dict(private_properties)
    row.data_address = address
    return row


def delete(uow: Session, asset_id: str) -> None:
    """Delete an asset unless a negotiation or agreement we provide refers to it."""
    row = get(uow, asset_id)
    agreement_id = uow.scalars(select(AgreementRow.id).where(
        AgreementRow.asset_id == asset_id, AgreementRow.role == Role.PROVIDER).limit(1)).first()
    if agreement_id is not None:
        raise AssetInUseError(asset_id, referenced_by=f"contract agreement {agreement_id}")
    negotiation_id = uow.scalars(select(NegotiationRow.id).where(
        NegotiationRow.asset_id == asset_id, NegotiationRow.role == Role.PROVIDER).limit(1)).first()
    if negotiation_id is not None:
        raise AssetInUseError(asset_id, referenced_by=f"contract negotiation {negotiation_id}")
    uow.delete(row)


def _without_id(properties: Mapping[str, Any]) -> dict[str, Any]:
    """The id lives in its own column; a copy among the properties could only disagree with it."""
    return {k: v for k, v in properties.items() if k not in ("id", "@id", "https://w3id.org/edc/v0.0.1/ns/id")}

"""Offer ids and the rule that an agreed offer must equal the advertised one.

An offer id names the contract definition and the asset it was built from, so that a ContractRequestMessage can be
traced back without storing every catalog we ever served. The form is EDC's `<definition>:<asset>:<nonce>` with each
part base64url-encoded; raw (unencoded) parts are accepted too, as EDC does and the DSP TCK relies on.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from contracts.errors import OfferRejectedError

_RULE_KEYS = ("permission", "prohibition", "obligation")


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _unb64(part: str) -> str:
    try:
        raw = base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
        text = raw.decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return part
    return text if text.isprintable() and _b64(text) == part.rstrip("=") else part


@dataclass(frozen=True, slots=True)
class OfferId:
    definition_id: str
    asset_id: str
    nonce: str

    def __str__(self) -> str:
        return f"{_b64(self.definition_id)}:{_b64(self.asset_id)}:{_b64(self.nonce)}"

    @classmethod
    def parse(cls, value: str) -> OfferId:
        """Read an offer id; raise OfferRejectedError if it does not name a definition and an asset."""
        parts = value.split(":")
        if len(parts) != 3 or not all(parts):
            raise OfferRejectedError(
                f"offer id {value!r} is not of the form <contractDefinition>:<asset>:<nonce>; "
                "use an offer @id from our catalog",
                offer_id=value,
            )
        return cls(*(_unb64(p) for p in parts))


def policy_rules(policy: Mapping[str, Any]) -> dict[str, Any]:
    """The part of a policy that binds: its rules, without ids, target, assigner, assignee or profile."""
    return {key: policy[key] for key in _RULE_KEYS if policy.get(key) not in (None, [])}


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def same_rules(requested: Mapping[str, Any], advertised: Mapping[str, Any]) -> bool:
    """Whether the requested offer binds exactly what we advertised (ids and parties may differ)."""
    return canonical(_normalise(policy_rules(requested))) == canonical(_normalise(policy_rules(advertised)))


def _normalise(value: Any) -> Any:
    """Drop empty constraint lists and unwrap one-element lists so equivalent JSON compares equal."""
    if isinstance(value, list):
        items = [_normalise(v) for v in value]
        return items[0] if len(items) == 1 else sorted(items, key=canonical)
    if isinstance(value, dict):
        return {
            k: _normalise(v)
            for k, v in value.items()
            if v not in ([], None) and k not in ("@id", "assigner", "assignee", "target")
        }
    return value

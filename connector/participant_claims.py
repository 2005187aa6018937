"""Participants' identity claims (membership, role, country, ...) as policies see them.

Sovra's DSP tokens prove only who the caller is (its DID). Until verifiable credentials carry claims, the operator
states what it trusts about each participant in a JSON file, `{"did:web:...": {"membership": "...", ...}}`, read
once at start. A participant not in the file has no claims, so a policy that tests a claim denies it (fail closed).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from connector.settings import SettingsError

ClaimsSource = Callable[[str], Mapping[str, Any]]


def load_claims(path: Path | None) -> ClaimsSource:
    if path is None:
        return lambda _participant: {}
    try:
        table = json.loads(path.read_text())
    except FileNotFoundError:
        raise SettingsError("participant-claims", f"file {path} does not exist", "check the path") from None
    except ValueError as exc:
        raise SettingsError("participant-claims", f"{path} is not valid JSON ({exc})", "fix the file") from None
    if not isinstance(table, dict) or not all(isinstance(v, dict) for v in table.values()):
        raise SettingsError("participant-claims", f"{path} must map each participant id to an object of claims",
                            'write e.g. {"did:web:example.org": {"membership": "active"}}')
    frozen = {str(k): dict(v) for k, v in table.items()}
    return lambda participant: frozen.get(participant, {})

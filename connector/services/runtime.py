"""What every service needs besides the unit of work: settings, the policy engine, a clock and an id source."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from connector.services.followups import NoScript, Script
from connector.settings import Settings
from policies import PolicyEngine


def utc_now() -> datetime:
    return datetime.now(UTC)


def new_urn() -> str:
    return f"urn:uuid:{uuid.uuid4()}"


@dataclass
class Runtime:
    settings: Settings
    policies: PolicyEngine
    clock: Callable[[], datetime] = utc_now
    new_id: Callable[[], str] = new_urn
    wake_outbox: Callable[[], None] = field(default=lambda: None)
    script: Script = field(default_factory=NoScript)

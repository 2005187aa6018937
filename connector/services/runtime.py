"""What every service needs besides the unit of work: settings, the policy engine, a clock, an id source, the
outbox worker to hand new messages to, and where participants' claims come from."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from compute_to_data.sandbox.base import Sandbox
from connector.services.algorithm_source import AlgorithmSource, NoAlgorithmSource
from connector.services.followups import NoScript, Script
from connector.settings import Settings
from policies import PolicyEngine


def utc_now() -> datetime:
    return datetime.now(UTC)


def no_claims(participant_id: str) -> Mapping[str, Any]:
    return {}


def new_urn() -> str:
    return f"urn:uuid:{uuid.uuid4()}"


class OutboxDispatch(Protocol):
    """The outbox worker as the services see it.

    A message whose process has nothing else pending is leased to this process in the transaction that queues it,
    built from that transaction's final state and handed to a sender right after commit: the common case costs no
    claim and no second read. With no worker running (tests, tools) nothing is leased and rows wait for a claim.
    An acknowledgement may wait to be recorded; `settle` records those of a process in the caller's transaction,
    and `offer_to_lock` lets the statement that locks the process's row mark their messages sent beforehand.
    """

    def lease_for(self, now: datetime) -> tuple[str, datetime] | None: ...

    def leased(self, uow: Any, row: Any) -> None: ...

    def queued_behind(self, process_id: str) -> None: ...

    def settle(self, uow: Any, process_id: str) -> None: ...

    def offer_to_lock(self, uow: Any, cls: type, process_id: str) -> None: ...


class NoOutbox:
    def lease_for(self, now: datetime) -> tuple[str, datetime] | None:
        return None

    def leased(self, uow: Any, row: Any) -> None:
        pass

    def queued_behind(self, process_id: str) -> None:
        pass

    def settle(self, uow: Any, process_id: str) -> None:
        pass

    def offer_to_lock(self, uow: Any, cls: type, process_id: str) -> None:
        pass


@dataclass
class Runtime:
    settings: Settings
    policies: PolicyEngine
    clock: Callable[[], datetime] = utc_now
    new_id: Callable[[], str] = new_urn
    outbox: OutboxDispatch = field(default_factory=NoOutbox)
    script: Script = field(default_factory=NoScript)
    claims: Callable[[str], Mapping[str, Any]] = no_claims
    """A participant's identity claims (membership, role, country, ...) that policies may test."""
    algorithm_source: AlgorithmSource = field(default_factory=NoAlgorithmSource)
    """Where compute jobs get the requester's signed algorithm; the default refuses (fail closed)."""
    sandbox: Sandbox | None = None
    """The sandbox compute jobs run in; None means none is usable here and every job is REJECTED."""
    sandbox_problem: str = "no sandbox configured"
    """Why `sandbox` is None (the backend's own reason), for the rejected job and the start-up warning."""
    signing_key: Any = None
    """The connector's identity.keys.SigningKey: signs run receipts. None: receipts cannot be signed."""
    compute_wake: Callable[[], None] = lambda: None
    """Tells the compute worker a job is due (after the commit that queued it), instead of waiting for its poll."""
    resolve_did: Callable[[str], Mapping[str, Any]] | None = None
    """DID -> DID document (cached resolver); verifies algorithm signers. None: every signer is unresolvable."""

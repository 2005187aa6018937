"""Monitor scope: the agreement of every transfer we provide is re-evaluated while it runs.

A violation terminates the transfer through the operator's own command (`transfers.terminate`): the peer gets a
TransferTerminationMessage with the reason, the reason is stored on the transfer, and the data plane refuses the
access token from the moment the state changes.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from connector.persistence.tables import AgreementRow, TransferRow
from connector.services import transfers
from connector.services.policy_scopes import monitor_decision
from connector.services.runtime import Runtime
from contracts import Role
from contracts.transfer import TransferState as S


def started_transfers(session: Session) -> list[str]:
    """Ids of the transfers we provide that are STARTED now (oldest first)."""
    return list(session.scalars(select(TransferRow.id).where(
        TransferRow.role == Role.PROVIDER, TransferRow.state == S.STARTED).order_by(TransferRow.created_at)))


def recheck(uow: Session, rt: Runtime, transfer_id: str) -> str | None:
    """Re-evaluate one transfer's agreement; terminate it when the agreement no longer permits it.

    Returns the reason when the transfer was terminated, else None (still permitted, or no longer STARTED)."""
    row = transfers.get_local(uow, transfer_id, lock=True)
    if row.role != Role.PROVIDER or row.state != S.STARTED:
        return None  # changed since it was listed
    agreement = uow.get(AgreementRow, row.agreement_id)
    if agreement is None:
        reason = f"agreement {row.agreement_id} no longer exists"
    else:
        decision = monitor_decision(rt, agreement)
        if decision.permitted:
            return None
        reason = f"agreement {agreement.id} no longer permits this transfer: {decision.explain()}"
    transfers.terminate(uow, rt, row.id, reason)
    return reason

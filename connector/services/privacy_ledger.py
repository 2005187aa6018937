"""The per-dataset differential-privacy budget: what a dataset may still spend, and what each job spent.

The budget is set when the dataset's first job asks (the asset's c2d:epsilonBudget, else --c2d-epsilon-budget).
A job's epsilon is checked before it runs and charged in the transaction that releases its output, under a row
lock, so two jobs finishing together cannot both spend the last of it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from connector.persistence.tables import AssetRow, PrivacyBudgetRow, PrivacyChargeRow
from connector.services.runtime import Runtime
from policies.vocab import C2D

EPSILON_BUDGET = C2D + "epsilonBudget"
_TOLERANCE = 1e-9


class BudgetExceeded(RuntimeError):
    def __init__(self, asset_id: str, epsilon: float, remaining: float, budget: float) -> None:
        super().__init__(f"the job asks epsilon {epsilon:g} but dataset {asset_id} has {max(remaining, 0.0):g} of "
                         f"its privacy budget {budget:g} left")
        self.epsilon, self.remaining, self.budget = epsilon, remaining, budget


def asset_property(asset: AssetRow | None, name: str) -> Any:
    """A c2d property of an asset by full IRI, `c2d:` prefix or bare name."""
    if asset is None:
        return None
    properties = asset.properties or {}
    for key in (C2D + name, "c2d:" + name, name):
        if key in properties:
            value = properties[key]
            if isinstance(value, dict) and "@value" in value:
                return value["@value"]
            return value
    return None


def configured_budget(rt: Runtime, asset: AssetRow | None) -> float:
    value = asset_property(asset, "epsilonBudget")
    try:
        budget = float(value) if value is not None else rt.settings.c2d_epsilon_budget
    except (TypeError, ValueError):
        budget = rt.settings.c2d_epsilon_budget
    return budget if budget > 0 else 0.0


def budget_row(session: Session, rt: Runtime, asset: AssetRow, *, lock: bool = False) -> PrivacyBudgetRow:
    """The dataset's ledger row, created on first use; `lock` takes it FOR UPDATE (PostgreSQL)."""
    query = select(PrivacyBudgetRow).where(PrivacyBudgetRow.asset_id == asset.id)
    if lock:
        query = query.with_for_update()
    row = session.scalar(query)
    if row is not None:
        return row
    try:
        with session.begin_nested():
            session.add(PrivacyBudgetRow(asset_id=asset.id, budget=configured_budget(rt, asset), spent=0.0,
                                         updated_at=rt.clock()))
    except IntegrityError:  # another job created it first
        pass
    row = session.scalar(query.execution_options(populate_existing=True))
    assert row is not None  # noqa: S101 - inserted or found just above
    return row


def check(row: PrivacyBudgetRow, epsilon: float) -> None:
    remaining = row.budget - row.spent
    if epsilon > remaining + _TOLERANCE:
        raise BudgetExceeded(row.asset_id, epsilon, remaining, row.budget)


def charge(session: Session, rt: Runtime, asset: AssetRow, *, job_id: str, epsilon: float) -> PrivacyBudgetRow:
    """Spend `epsilon` for `job_id` (locked, re-checked); raises BudgetExceeded and changes nothing then."""
    row = budget_row(session, rt, asset, lock=True)
    check(row, epsilon)
    row.spent = row.spent + epsilon
    row.updated_at = rt.clock()
    session.add(PrivacyChargeRow(asset_id=asset.id, job_id=job_id, epsilon=epsilon, at=rt.clock()))
    session.flush()
    return row


def ledger_json(row: PrivacyBudgetRow) -> dict[str, Any]:
    return {"assetId": row.asset_id, "budget": row.budget, "spent": row.spent,
            "remaining": max(row.budget - row.spent, 0.0), "updatedAt": row.updated_at.isoformat()}

"""Every usage-control decision the connector takes, one function per scope, each asking `rt.policies`.

Where each scope is decided:

- `catalog`: the access policy of a contract definition, per requester (catalog and dataset requests, and again
  when an offer is requested, so a requester cannot negotiate what it may not see);
- `negotiation`: the contract policy of the offer a consumer requests, with the context it declared
  (`requestContext`: purpose, ...);
- `transfer`: the agreement, again, when a transfer is requested; the agreement's use counter (ODRL `count`)
  counts each transfer it permits;
- `monitor`: the agreement of each STARTED transfer, periodically (`connector.workers.monitor`);
- `compute`: a compute-to-data job against its agreement (for the compute-to-data service);
- `compute request`: a Compute-PULL transfer request, before its job exists: the compute action with what the
  request declares (`compute_request_decision`); what only the job can tell (the algorithm's digest and signer,
  the budget, consent) is decided again, in full, by `compute` before anything runs.

Actions: catalog and negotiation ask about the use each rule governs (an offer of `c2d:compute` only is still
offered and agreed). A transfer hands the data over, so transfer and monitor ask for `odrl:use`: an agreement
that grants only a narrower action (compute, read) never starts a transfer. Compute asks for `c2d:compute`.

The PolicyContext built here is the only place that decides what the engine knows: the clock, the requester's
claims (`rt.claims`), the agreement's start and use counter, and what the consumer declared.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connector.persistence.tables import AgreementRow
from connector.services.runtime import Runtime
from contracts import InvalidMessageError
from policies import C2D, ODRL, Decision, PolicyContext, Scope

MAX_CONTEXT_ENTRIES = 32
TRANSFER_ACTION = ODRL + "use"
COMPUTE_ACTION = C2D + "compute"


def context(rt: Runtime, scope: Scope, participant_id: str, *, agreement: AgreementRow | None = None,
            action: str | None = None, parameters: Mapping[str, Any] | None = None,
            state: Mapping[str, Any] | None = None) -> PolicyContext:
    return PolicyContext(
        scope=scope, participant_id=participant_id, now=rt.clock(), claims=rt.claims(participant_id), action=action,
        agreement_start=agreement.signed_at if agreement is not None else None,
        parameters=dict(parameters or {}), state=dict(state or {}),
    )


def catalog_decision(rt: Runtime, access_policy: Mapping[str, Any], participant_id: str) -> Decision:
    return rt.policies.evaluate(access_policy, context(rt, Scope.CATALOG, participant_id))


def negotiation_decision(rt: Runtime, offer: Mapping[str, Any], participant_id: str,
                         request_context: Mapping[str, Any] | None) -> Decision:
    return rt.policies.evaluate(offer, context(rt, Scope.NEGOTIATION, participant_id, parameters=request_context))


def transfer_decision(rt: Runtime, agreement: AgreementRow) -> Decision:
    """The agreement before one more transfer: `count` sees the transfers it already permitted plus this one."""
    return _agreement_decision(rt, agreement, Scope.TRANSFER, uses_before=agreement.use_count)


def count_use(agreement: AgreementRow) -> None:
    """Record one exercise of the agreement (a transfer it permitted), in the caller's transaction."""
    agreement.use_count = (agreement.use_count or 0) + 1


def monitor_decision(rt: Runtime, agreement: AgreementRow) -> Decision:
    """The agreement while a transfer runs: the running transfer is one of the uses already counted."""
    return _agreement_decision(rt, agreement, Scope.MONITOR, uses_before=max((agreement.use_count or 0) - 1, 0))


def compute_decision(rt: Runtime, agreement: AgreementRow, job: Mapping[str, Any], *,
                     state: Mapping[str, Any] | None = None) -> Decision:
    """A compute-to-data job (`job`: algorithm, dpEpsilon, ... by left operand) against its agreement.

    `state` adds what the compute service knows (`dp_epsilon_spent`, `consent_given`, ...)."""
    parameters = {**(agreement.request_context or {}), **job}
    return rt.policies.evaluate(agreement.policy, context(
        rt, Scope.COMPUTE, agreement.consumer_id, agreement=agreement, action=COMPUTE_ACTION, parameters=parameters,
        state={"use_count": agreement.use_count or 0, **(state or {})}))


def compute_request_decision(rt: Runtime, agreement: AgreementRow, job: Mapping[str, Any]) -> Decision:
    """A Compute-PULL request: the `compute` scope with what the request declares.

    Facts only the job learns later (algorithm digest and signer, epsilon spent, consent) are unknown here. The
    request passes when the engine permits it, or when some permission of the compute action applies to this
    consumer, none of its constraints is unsatisfied (only unknown ones remain, for the job's full decision) and no
    prohibition is active. An agreement that does not grant the compute action (or refuses a declared parameter)
    is refused at once.
    """
    decision = compute_decision(rt, agreement, job)
    if decision.permitted or decision.report is None:
        return decision
    rules = decision.report.get("rules", [])
    if any(r.get("kind") == "prohibition" and r.get("applicable") and r.get("activation") == "active"
           for r in rules):
        return decision
    for rule in rules:
        if rule.get("kind") != "permission" or not rule.get("applicable"):
            continue
        if any(c.get("state") == "unsatisfied" for c in rule.get("constraints", [])):
            continue
        if any(d.get("blocks") and d.get("deonticState") == "violated" for d in rule.get("duties", [])):
            continue
        return Decision(permitted=True, reasons=("the compute action is granted; the job's own checks decide the "
                                                 "constraints the request cannot tell",), report=decision.report)
    return decision


def _agreement_decision(rt: Runtime, agreement: AgreementRow, scope: Scope, *, uses_before: int) -> Decision:
    return rt.policies.evaluate(agreement.policy, context(
        rt, scope, agreement.consumer_id, agreement=agreement, action=TRANSFER_ACTION,
        parameters=agreement.request_context,
        state={"use_count": uses_before}))


def checked_request_context(value: Any, *, where: str = "requestContext") -> dict[str, Any] | None:
    """A consumer's declared context: an object of left operand (short name or IRI) -> value, kept small."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise InvalidMessageError(f"{where} must be an object of left operand -> value, e.g. "
                                  '{"purpose": "https://w3id.org/dpv#ResearchAndDevelopment"}')
    if len(value) > MAX_CONTEXT_ENTRIES:
        raise InvalidMessageError(f"{where} has {len(value)} entries; at most {MAX_CONTEXT_ENTRIES} are accepted")
    for key, item in value.items():
        scalars = item if isinstance(item, list) else [item]
        if not all(isinstance(v, str | int | float | bool) for v in scalars):
            raise InvalidMessageError(f"{where}/{key} must be a string, number, boolean or a list of them")
    return dict(value)

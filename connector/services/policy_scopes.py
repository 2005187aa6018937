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
from policies.vocab import action_ancestors

MAX_CONTEXT_ENTRIES = 32
TRANSFER_ACTION = ODRL + "use"
COMPUTE_ACTION = C2D + "compute"
# Left operands whose value exists only once a job runs (verified algorithm, spent budget, consent on record).
JOB_TIME_OPERANDS = frozenset(C2D + name for name in (
    "algorithm", "algorithmSigner", "dpEpsilon", "dpEpsilonBudget", "consentRequired", "minAggregationSize",
    "outputFormat", "maxOutputBytes", "egress"))


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
    decision = rt.policies.evaluate(offer, context(rt, Scope.NEGOTIATION, participant_id, parameters=request_context))
    return with_job_time_facts_deferred(decision)


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

    Facts only the job learns later (algorithm digest and signer as verified, epsilon spent, consent) are unknown
    here; they are decided in full by `compute_decision` before anything runs (see `with_job_time_facts_deferred`).
    """
    return with_job_time_facts_deferred(compute_decision(rt, agreement, job))


def with_job_time_facts_deferred(decision: Decision) -> Decision:
    """Permit what is denied only for want of facts that exist once a job runs, and for no other reason.

    Negotiation and the Compute-PULL request cannot know the verified algorithm, its signer, the epsilon already
    spent or whether consent is on record. An offer that tests them must still be agreeable, so such a decision is
    turned into a permit when some applicable permission has no unsatisfied constraint, every unknown one is on a
    job-time operand (JOB_TIME_OPERANDS), no blocking duty is violated and no prohibition is active. Every other
    unknown (an undeclared purpose, an unknown left operand) still denies. The `compute` scope decides them all.
    """
    if decision.permitted or decision.report is None:
        return decision
    rules = decision.report.get("rules", [])
    asked = (decision.report.get("request") or {}).get("action")
    prohibitions = [r for r in rules if r.get("kind") == "prohibition" and r.get("applicable")
                    and r.get("activation") == "active"]
    for rule in rules:
        if rule.get("kind") != "permission" or not rule.get("applicable"):
            continue
        if any(asked or _takes_away(p.get("action"), rule.get("action")) for p in prohibitions):
            continue
        constraints = list(_leaf_constraints(rule.get("constraints", [])))
        if any(c.get("state") != "satisfied" and c.get("leftOperand") not in JOB_TIME_OPERANDS
               for c in constraints):
            continue
        if any(d.get("blocks") and d.get("deonticState") == "violated" for d in rule.get("duties", [])):
            continue
        if any(c.get("state") == "unsatisfied" for c in constraints):
            continue
        return Decision(permitted=True, reasons=("permitted pending the job's own checks of "
                                                 + ", ".join(sorted({_short(c["leftOperand"]) for c in constraints
                                                                     if c.get("state") == "unknown"}) or {"-"}),),
                        report=decision.report)
    return decision


def _takes_away(prohibited: str | None, permitted: str | None) -> bool:
    """Without an asked action, a prohibition voids a permission only if it forbids that action or a broader one."""
    return not prohibited or not permitted or prohibited in action_ancestors(permitted)


def _leaf_constraints(constraints: list[Mapping[str, Any]]) -> Any:
    for c in constraints:
        members = c.get("constraints") or c.get("members")
        if isinstance(members, list):
            yield from _leaf_constraints(members)
        else:
            yield c


def _short(iri: Any) -> str:
    return str(iri).removeprefix(C2D)


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

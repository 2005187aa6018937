"""Each policy scope's decision, through `rt.policies` (the real ODRL engine), with the context the scope builds."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from connector.persistence.tables import AgreementRow
from connector.services import policy_scopes as scopes
from connector.services.runtime import Runtime
from connector.settings import Settings
from contracts import InvalidMessageError
from policies import C2D, OdrlPolicyEngine, PolicyContext, Scope, template

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
CONSUMER = "did:web:consumer.example"
RESEARCH = "https://w3id.org/dpv#ResearchAndDevelopment"
ACADEMIC = "https://w3id.org/dpv#AcademicResearch"


class Recording(OdrlPolicyEngine):
    """The real engine, remembering the contexts it was asked with (to check what each scope passes)."""

    def __init__(self) -> None:
        super().__init__()
        self.contexts: list[PolicyContext] = []

    def evaluate(self, policy: Any, context: PolicyContext) -> Any:
        self.contexts.append(context)
        return super().evaluate(policy, context)


def runtime(now: datetime = NOW, claims: dict[str, dict[str, Any]] | None = None) -> Runtime:
    table = claims or {}
    return Runtime(settings=Settings(), policies=Recording(), clock=lambda: now,
                   claims=lambda participant: table.get(participant, {}))


def rule(*constraints: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"@type": "Set", "permission": [{"action": "use", "constraint": list(constraints), **extra}]}


def window(start: datetime, end: datetime) -> dict[str, Any]:
    return rule({"leftOperand": "dateTime", "operator": "gteq", "rightOperand": start.isoformat()},
                {"leftOperand": "dateTime", "operator": "lt", "rightOperand": end.isoformat()})


def agreement(policy: dict[str, Any], *, use_count: int = 0, request_context: dict[str, Any] | None = None,
              signed_at: datetime = NOW - timedelta(days=1)) -> AgreementRow:
    return AgreementRow(id="urn:agreement:1", negotiation_id="n", role="PROVIDER", provider_id="did:web:p",
                        consumer_id=CONSUMER, asset_id="a", policy=policy, signed_at=signed_at, finalized=True,
                        use_count=use_count, request_context=request_context)


# -- catalog --------------------------------------------------------------------------------------------------------
MEMBERS_ONLY = rule({"leftOperand": "https://w3id.org/sovra/participant/v1#membership", "operator": "eq",
                     "rightOperand": "active"})


def test_catalog_passes_the_requesters_claims_to_the_engine() -> None:
    rt = runtime(claims={CONSUMER: {"membership": "active"}})
    decision = scopes.catalog_decision(rt, MEMBERS_ONLY, CONSUMER)
    assert decision.permitted, decision.explain()
    context = rt.policies.contexts[-1]  # type: ignore[attr-defined]
    assert context.scope is Scope.CATALOG and context.claims == {"membership": "active"}


def test_catalog_denies_a_requester_without_the_claim() -> None:
    rt = runtime(claims={CONSUMER: {"membership": "lapsed"}})
    assert not scopes.catalog_decision(rt, MEMBERS_ONLY, CONSUMER).permitted
    assert not scopes.catalog_decision(rt, MEMBERS_ONLY, "did:web:stranger").permitted


# -- negotiation ----------------------------------------------------------------------------------------------------
PURPOSE = rule({"leftOperand": "purpose", "operator": "isA", "rightOperand": RESEARCH})


def test_negotiation_permits_inside_the_window_and_denies_outside() -> None:
    policy = window(NOW - timedelta(hours=1), NOW + timedelta(hours=1))
    assert scopes.negotiation_decision(runtime(), policy, CONSUMER, None).permitted
    late = scopes.negotiation_decision(runtime(NOW + timedelta(hours=2)), policy, CONSUMER, None)
    assert not late.permitted and "dateTime" in late.explain()


def test_negotiation_purpose_comes_from_the_consumers_request_context() -> None:
    assert scopes.negotiation_decision(runtime(), PURPOSE, CONSUMER, {"purpose": ACADEMIC}).permitted
    refused = scopes.negotiation_decision(runtime(), PURPOSE, CONSUMER, {"purpose": "https://w3id.org/dpv#Marketing"})
    assert not refused.permitted
    undeclared = scopes.negotiation_decision(runtime(), PURPOSE, CONSUMER, None)
    assert not undeclared.permitted and "purpose" in undeclared.explain()


def test_request_context_is_checked() -> None:
    assert scopes.checked_request_context({"purpose": ACADEMIC}) == {"purpose": ACADEMIC}
    assert scopes.checked_request_context(None) is None
    with pytest.raises(InvalidMessageError, match="requestContext must be an object"):
        scopes.checked_request_context(["purpose"])
    with pytest.raises(InvalidMessageError, match="requestContext/purpose"):
        scopes.checked_request_context({"purpose": {"nested": 1}})


# -- transfer and count ---------------------------------------------------------------------------------------------
def test_transfer_denies_once_the_window_has_closed() -> None:
    row = agreement(window(NOW - timedelta(days=2), NOW - timedelta(hours=1)))
    decision = scopes.transfer_decision(runtime(), row)
    assert not decision.permitted and "dateTime" in decision.explain()


def test_transfer_evaluates_with_the_agreed_purpose() -> None:
    assert scopes.transfer_decision(runtime(), agreement(PURPOSE, request_context={"purpose": ACADEMIC})).permitted
    assert not scopes.transfer_decision(runtime(), agreement(PURPOSE)).permitted


AT_MOST_TWO = rule({"leftOperand": "count", "operator": "lteq", "rightOperand": 2})


def test_count_permits_until_the_use_counter_reaches_the_limit() -> None:
    row = agreement(AT_MOST_TWO)
    rt = runtime()
    for _ in range(2):
        assert scopes.transfer_decision(rt, row).permitted
        scopes.count_use(row)
    assert row.use_count == 2
    third = scopes.transfer_decision(rt, row)
    assert not third.permitted and "count" in third.explain()


def test_elapsed_time_counts_from_the_agreement() -> None:
    thirty_days = rule({"leftOperand": "elapsedTime", "operator": "lteq", "rightOperand": "P30D"})
    assert scopes.transfer_decision(runtime(), agreement(thirty_days)).permitted
    old = agreement(thirty_days, signed_at=NOW - timedelta(days=31))
    assert not scopes.transfer_decision(runtime(), old).permitted


# -- monitor ----------------------------------------------------------------------------------------------------------
def test_monitor_counts_the_running_transfer_as_already_used() -> None:
    row = agreement(AT_MOST_TWO, use_count=2)  # the second transfer is the one running
    assert scopes.monitor_decision(runtime(), row).permitted
    assert not scopes.transfer_decision(runtime(), row).permitted  # but a third may not start


def test_monitor_denies_when_the_window_closes_while_running() -> None:
    row = agreement(window(NOW - timedelta(hours=1), NOW + timedelta(minutes=5)))
    assert scopes.monitor_decision(runtime(), row).permitted
    rt = runtime(NOW + timedelta(minutes=6))
    assert not scopes.monitor_decision(rt, row).permitted
    assert rt.policies.contexts[-1].scope is Scope.MONITOR  # type: ignore[attr-defined]


# -- compute --------------------------------------------------------------------------------------------------------
COMPUTE = template("compute-only", id="urn:policy:c2d", algorithms=["sha256:" + "a" * 64], k=10, epsilon=1.0,
                   budget=3.0)


def _job(**changes: Any) -> dict[str, Any]:
    job = {C2D + "algorithm": "sha256:" + "a" * 64, C2D + "minAggregationSize": 25, C2D + "dpEpsilon": 0.5}
    return {**job, **changes}


def test_compute_scope_evaluates_a_compute_profile_policy_through_rt_policies() -> None:
    rt = runtime()
    decision = scopes.compute_decision(rt, agreement(COMPUTE), _job(), state={"dp_epsilon_spent": 1.0})
    assert decision.permitted, decision.explain()
    assert rt.policies.contexts[-1].scope is Scope.COMPUTE  # type: ignore[attr-defined]


def test_compute_scope_denies_an_unapproved_algorithm_or_an_exhausted_budget() -> None:
    rt = runtime()
    other = scopes.compute_decision(rt, agreement(COMPUTE), _job(**{C2D + "algorithm": "sha256:" + "b" * 64}),
                                    state={"dp_epsilon_spent": 0.0})
    assert not other.permitted
    spent = scopes.compute_decision(rt, agreement(COMPUTE), _job(), state={"dp_epsilon_spent": 2.9})
    assert not spent.permitted and "dpEpsilonBudget" in json.dumps(spent.report)
    unknown = scopes.compute_decision(rt, agreement(COMPUTE), _job())  # budget spent so far unknown: fail closed
    assert not unknown.permitted


def test_a_compute_only_agreement_never_starts_a_transfer() -> None:
    assert not scopes.transfer_decision(runtime(), agreement(COMPUTE)).permitted
    assert scopes.compute_decision(runtime(), agreement(COMPUTE), _job(), state={"dp_epsilon_spent": 0}).permitted


def test_transfer_asks_for_use_so_a_prohibition_of_a_narrower_action_does_not_void_it() -> None:
    policy = {"@type": "Set", "permission": [{"action": "use"}], "prohibition": [{"action": "distribute"}]}
    assert scopes.transfer_decision(runtime(), agreement(policy)).permitted


def test_negotiation_defers_job_time_facts_to_the_job() -> None:
    """Signer, budget spent and consent exist only once a job runs: the offer is agreeable, the job decides."""
    declared = {"purpose": RESEARCH, "dpEpsilon": 0.5, "minAggregationSize": 25}
    decision = scopes.negotiation_decision(runtime(), COMPUTE, CONSUMER, declared)
    assert decision.permitted, decision.explain()
    assert "pending the job's own checks" in decision.reasons[0]


def test_negotiation_still_denies_a_declared_value_that_breaks_the_offer() -> None:
    declared = {"purpose": RESEARCH, "dpEpsilon": 5.0, "minAggregationSize": 25}  # epsilon above the offer's
    assert not scopes.negotiation_decision(runtime(), COMPUTE, CONSUMER, declared).permitted


def test_deferral_never_covers_an_undeclared_purpose_or_an_unknown_term() -> None:
    purpose = rule({"leftOperand": "purpose", "operator": "eq", "rightOperand": RESEARCH}, action=C2D + "compute")
    assert not scopes.negotiation_decision(runtime(), purpose, CONSUMER, None).permitted
    unknown = rule({"leftOperand": "https://example.com/madeUp", "operator": "eq", "rightOperand": "x"},
                   action=C2D + "compute")
    assert not scopes.negotiation_decision(runtime(), unknown, CONSUMER, None).permitted
    assert not scopes.compute_request_decision(runtime(), agreement(unknown), {}).permitted

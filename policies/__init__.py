"""ODRL 2.2 usage policies: typed model, JSON-LD parsing, validation, compilation and explained evaluation.

Public API (everything the shell needs; no connector imports here):

Reading and checking
- `read_json(text) -> Any`: JSON with errors naming line, column and the fix (e.g. concatenated documents).
- `parse(doc, *, document_loader=None, policy_id=None) -> Policy`: JSON-LD in any context (expanded by pyld with
  the injected document loader; the domain never fetches) or the DSP compact shape (fast path, no pyld). Raises
  `PolicyError(pointer, problem)`.
- `validate(doc, *, document_loader=None, registry=DEFAULT_REGISTRY) -> list[Issue]`: every problem with its JSON
  pointer, what is wrong and the fix (`Issue.to_json()` is JSON-serialisable). `Issue.layer` is `structure`
  (DSP 2025-1 policy shape), `jsonld` (terms no context defines, the old `neq`->`odrl:neg` context) or `profile`
  (unknown left operand, misspelled operator, wrong value type); `Issue.severity` is `error` or `warning`.
- `describe(policy) -> dict`: the policy in words (rules, constraints, duties), e.g. for a consumer's preview.
- `TEMPLATES`, `template(name, **params) -> dict`: ready-made policies (time window, purpose, membership,
  compute-only with k and epsilon) as DSP compact JSON-LD.

Evaluating
- `compile_policy(policy, options=Options()) -> CompiledPolicy`; then `CompiledPolicy.decide(request, state) ->
  bool` (fast) or `CompiledPolicy.evaluate(request, state) -> Decision` (with `Decision.report`, a JSON-serialisable
  compliance report per rule and per constraint: satisfied / unsatisfied / unknown, the value used and why).
- `evaluate(policy_doc, request, state, *, options=None, document_loader=None) -> Decision`: parse, compile and
  evaluate in one call.
- `Request(action, target, assignee, context)` and `State(now, agreement_start, use_count, dp_epsilon_spent,
  consent_given, claims, part_of, duty_states, facts)`: the evaluation request and the state of the world.
- `Options(duty_mode=DutyMode.AUTO|PRECONDITION|EVENTUAL, behaviour=Behaviour.CLOSED|OPEN, registry=...)`.
- Left operands are pluggable: `DEFAULT_REGISTRY.with_operand(LeftOperand(...))` or `fact_operand(iri, kind)`.

The connector seam
- `PolicyEngine` protocol, `PolicyContext`, `Decision`, `Scope` (policies.engine); `OdrlPolicyEngine` implements
  it with a compile cache.

Vocabulary: ODRL 2.2 (`http://www.w3.org/ns/odrl/2/`), Sovra's compute-to-data profile
`https://w3id.org/sovra/c2d/v1` (terms in `https://w3id.org/sovra/c2d/v1#`, participant claims in
`https://w3id.org/sovra/participant/v1#`), JSON-LD context `C2D_CONTEXT` bundled as
`policies/resources/sovra-c2d-v1.jsonld`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from policies.describe import describe
from policies.engine import Decision, PolicyContext, PolicyEngine, Scope
from policies.evaluator import Behaviour, CompiledPolicy, DutyMode, Options, compile_policy
from policies.model import (
    Action,
    Asset,
    ConflictStrategy,
    Constraint,
    Duty,
    LogicalConstraint,
    Obligation,
    Party,
    Permission,
    Policy,
    PolicyType,
    Prohibition,
    RuleKind,
)
from policies.odrl_engine import OdrlPolicyEngine
from policies.operands import DEFAULT_REGISTRY, LeftOperand, OperandRegistry, Request, State, fact_operand
from policies.parse import DocumentLoader, PolicyError, parse, read_json
from policies.templates import TEMPLATES, template
from policies.validate import Issue, validate
from policies.values import Kind
from policies.vocab import C2D, C2D_CONTEXT, C2D_PROFILE, ODRL, PARTICIPANT


def evaluate(policy_doc: Mapping[str, Any], request: Request, state: State, *, options: Options | None = None,
             document_loader: DocumentLoader | None = None) -> Decision:
    """Parse, compile and evaluate in one call (use `compile_policy` to evaluate one policy many times)."""
    return compile_policy(parse(policy_doc, document_loader=document_loader), options).evaluate(request, state)


__all__ = [
    "C2D", "C2D_CONTEXT", "C2D_PROFILE", "DEFAULT_REGISTRY", "ODRL", "PARTICIPANT", "TEMPLATES", "Action", "Asset",
    "Behaviour", "CompiledPolicy", "ConflictStrategy", "Constraint", "Decision", "DocumentLoader", "Duty",
    "DutyMode", "Issue", "Kind", "LeftOperand", "LogicalConstraint", "Obligation",
    "OdrlPolicyEngine", "OperandRegistry", "Options", "Party", "Permission", "Policy", "PolicyContext",
    "PolicyEngine", "PolicyError", "PolicyType", "Prohibition", "Request", "RuleKind", "Scope", "State",
    "compile_policy", "describe", "evaluate", "fact_operand", "parse", "read_json", "template", "validate",
]

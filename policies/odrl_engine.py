"""`OdrlPolicyEngine`: the full ODRL 2.2 engine behind the connector's `PolicyEngine` seam.

Policies arrive as the connector stores them (DSP compact JSON-LD) or in any JSON-LD context; each distinct
policy document is parsed and compiled once and kept in a bounded cache keyed by its canonical JSON. A policy that
cannot be read denies, with the reason (fail closed).
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from policies.engine import Decision, PolicyContext
from policies.evaluator import CompiledPolicy, Options, compile_policy
from policies.operands import Request, State
from policies.parse import DocumentLoader, PolicyError, parse, vocab_iri


class OdrlPolicyEngine:
    def __init__(self, *, options: Options | None = None, document_loader: DocumentLoader | None = None,
                 cache_size: int = 1024) -> None:
        self.options = options or Options()
        self.document_loader = document_loader
        self._cache: OrderedDict[str, CompiledPolicy | PolicyError] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    def compiled(self, policy: Mapping[str, Any]) -> CompiledPolicy:
        """The compiled form of `policy` (cached); raises PolicyError when it cannot be read."""
        key = json.dumps(policy, sort_keys=True, separators=(",", ":"), default=str)
        with self._lock:
            found = self._cache.get(key)
            if found is not None:
                self._cache.move_to_end(key)
        if found is None:
            try:
                found = compile_policy(parse(policy, document_loader=self.document_loader), self.options)
            except PolicyError as exc:
                found = exc
            with self._lock:
                self._cache[key] = found
                if len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
        if isinstance(found, PolicyError):
            raise found
        return found

    def evaluate(self, policy: Mapping[str, Any], context: PolicyContext) -> Decision:
        try:
            compiled = self.compiled(policy)
        except PolicyError as exc:
            return Decision(permitted=False, reasons=(f"the policy cannot be read: {exc}",))
        return compiled.evaluate(request_of(context), state_of(context))


def request_of(context: PolicyContext) -> Request:
    action = vocab_iri(context.action) if context.action else None
    return Request(action=action, target=context.target, assignee=context.participant_id,
                   context=dict(context.parameters))


def state_of(context: PolicyContext) -> State:
    extra = dict(context.state)
    part_of = {k: tuple(v) for k, v in extra.pop("part_of", {}).items()}
    return State(now=context.now, agreement_start=context.agreement_start, claims=context.claims,
                 part_of=part_of, **extra)

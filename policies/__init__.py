"""Usage-policy evaluation behind one hook (`PolicyEngine`); the full ODRL 2.2 engine drops in here."""

from policies.engine import Decision, PolicyContext, PolicyEngine, Scope
from policies.minimal import MinimalPolicyEngine

__all__ = ["Decision", "MinimalPolicyEngine", "PolicyContext", "PolicyEngine", "Scope"]

"""Assets, contract definitions and the DCAT catalog built per requester."""

from catalog.models import Asset, ContractDefinition, Criterion
from catalog.selection import matches

__all__ = ["Asset", "ContractDefinition", "Criterion", "matches"]

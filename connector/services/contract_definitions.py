"""Contract definitions: which assets are offered, to whom (access policy) and on what terms (contract policy).

The rule kept here: a definition only refers to policies that exist when it is stored, and its asset selector
uses operators the catalog understands (an unknown operator would select nothing, silently). `auto_agree` is
Sovra's extension: when true the provider agrees as soon as a consumer requests the advertised offer unchanged and
the policies permit it; when false the negotiation waits for an operator's approve or decline.

    ContractDefinitionError
    ├── ContractDefinitionNotFoundError   no definition with that id
    ├── ContractDefinitionExistsError     create with an id already taken
    ├── MissingPolicyError                accessPolicyId or contractPolicyId names no policy definition
    └── InvalidContractDefinitionError    the asset selector is malformed (`pointer` names where)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy.orm import Session

from catalog.selection import SUPPORTED_OPERATORS
from connector.persistence.tables import ContractDefinitionRow, PolicyDefinitionRow
from connector.services.runtime import Runtime


class ContractDefinitionError(Exception):
    """Base class of the errors this module raises."""


class ContractDefinitionNotFoundError(ContractDefinitionError):
    def __init__(self, definition_id: str) -> None:
        self.definition_id = definition_id
        super().__init__(f"contract definition {definition_id} does not exist")


class ContractDefinitionExistsError(ContractDefinitionError):
    def __init__(self, definition_id: str) -> None:
        self.definition_id = definition_id
        super().__init__(f"contract definition {definition_id} already exists; update it with PUT or choose "
                         "another @id")


class MissingPolicyError(ContractDefinitionError):
    """`field` is accessPolicyId or contractPolicyId."""

    def __init__(self, field: str, policy_id: str) -> None:
        self.field = field
        self.policy_id = policy_id
        self.pointer = f"/{field}"
        super().__init__(f"{field} {policy_id} names no policy definition; create the policy definition first")


class InvalidContractDefinitionError(ContractDefinitionError):
    def __init__(self, pointer: str, problem: str) -> None:
        self.pointer = pointer
        self.problem = problem
        super().__init__(f"field {pointer} {problem}")


def check_selector(selector: Sequence[Any]) -> list[dict[str, Any]]:
    """Return the criteria as plain {operandLeft, operator, operandRight} objects, or raise naming the bad one."""
    checked: list[dict[str, Any]] = []
    for index, criterion in enumerate(selector):
        pointer = f"/assetsSelector/{index}"
        if not isinstance(criterion, Mapping):
            raise InvalidContractDefinitionError(pointer, "must be a Criterion object (operandLeft, operator, "
                                                          "operandRight)")
        left, operator = criterion.get("operandLeft"), criterion.get("operator")
        if not isinstance(left, str) or not left:
            raise InvalidContractDefinitionError(f"{pointer}/operandLeft", "must be a property name such as "
                                                                           "https://w3id.org/edc/v0.0.1/ns/id")
        if not isinstance(operator, str) or operator.lower() not in SUPPORTED_OPERATORS:
            raise InvalidContractDefinitionError(
                f"{pointer}/operator", f"is {operator!r}; use one of {', '.join(SUPPORTED_OPERATORS)}")
        checked.append({"operandLeft": left, "operator": operator.lower(),
                        "operandRight": criterion.get("operandRight")})
    return checked


def _check_policies(uow: Session, access_policy_id: str, contract_policy_id: str) -> None:
    for field, policy_id in (("accessPolicyId", access_policy_id), ("contractPolicyId", contract_policy_id)):
        if uow.get(PolicyDefinitionRow, policy_id) is None:
            raise MissingPolicyError(field, policy_id)


def get(uow: Session, definition_id: str) -> ContractDefinitionRow:
    row = uow.get(ContractDefinitionRow, definition_id)
    if row is None:
        raise ContractDefinitionNotFoundError(definition_id)
    return row


def create(uow: Session, rt: Runtime, *, definition_id: str | None, access_policy_id: str,
           contract_policy_id: str, assets_selector: Sequence[Any], auto_agree: bool) -> ContractDefinitionRow:
    selector = check_selector(assets_selector)
    _check_policies(uow, access_policy_id, contract_policy_id)
    definition_id = definition_id or rt.new_id()
    if uow.get(ContractDefinitionRow, definition_id) is not None:
        raise ContractDefinitionExistsError(definition_id)
    row = ContractDefinitionRow(id=definition_id, access_policy_id=access_policy_id,
                                contract_policy_id=contract_policy_id, assets_selector=selector,
                                auto_agree=auto_agree, created_at=rt.clock())
    uow.add(row)
    return row


def update(uow: Session, *, definition_id: str, access_policy_id: str, contract_policy_id: str,
           assets_selector: Sequence[Any], auto_agree: bool) -> ContractDefinitionRow:
    """Replace a definition; negotiations already under way keep the offer they were started with."""
    selector = check_selector(assets_selector)
    row = get(uow, definition_id)
    _check_policies(uow, access_policy_id, contract_policy_id)
    row.access_policy_id = access_policy_id
    row.contract_policy_id = contract_policy_id
    row.assets_selector = selector
    row.auto_agree = auto_agree
    return row


def delete(uow: Session, definition_id: str) -> None:
    uow.delete(get(uow, definition_id))

"""Authoring corpora: DSP 2025-1 policy schema cases, IDS-G policy classes (incl. malformed files), Catena-X."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from connector.protocol.jsonld import load_document
from policies import PolicyError, parse, read_json, validate
from tests.conformance_odrl.solidlab import CASES

DSP = CASES / "dsp-2025-1" / "extracted-policy-schema-tests"
IDS = CASES / "ids-g-usage-control" / "UsageControl" / "Contract" / "Policies"


def _structure_errors(doc: object) -> list[str]:
    return [i.code for i in validate(doc) if i.layer == "structure" and i.severity == "error"]


@pytest.mark.parametrize("path", sorted((DSP / "valid").glob("*.json")), ids=lambda p: p.stem)
def test_dsp_valid_cases_have_no_structure_errors(path: Path) -> None:
    doc = json.loads(path.read_text())
    assert _structure_errors(doc) == []
    parse(doc)  # and the engine reads them


EXPECTED_INVALID = {
    "invalid_logical_content_nesting": ("not-a-constraint", "/permission/0/constraint/0/and/1"),
    "invalid_multiplicity_constraint": ("not-a-constraint", "/permission/0/constraint/0"),
    "invalid_no_action": ("missing-action", "/permission/0/action"),
    "invalid_no_id": ("missing-id", "/@id"),
    "invalid_no_left_operand": ("missing-leftOperand", "/permission/0/constraint/0/leftOperand"),
    "invalid_no_operator": ("missing-operator", "/permission/0/constraint/0/operator"),
    "invalid_no_right_operand": ("missing-rightOperand", "/permission/0/constraint/0/rightOperand"),
    "invalid_no_rules": ("no-rules", "/permission"),
}


@pytest.mark.parametrize("name", sorted(EXPECTED_INVALID))
def test_dsp_invalid_cases_are_rejected_with_pointer(name: str) -> None:
    doc = json.loads((DSP / "invalid" / f"{name}.json").read_text())
    issues = [i for i in validate(doc) if i.layer == "structure"]
    code, pointer = EXPECTED_INVALID[name]
    assert (code, pointer) in [(i.code, i.pointer) for i in issues]
    assert all(i.fix for i in issues)


def test_dsp_case_counts() -> None:
    assert len(list((DSP / "valid").glob("*.json"))) == 9
    assert len(list((DSP / "invalid").glob("*.json"))) == 8


def _ids_files() -> list[Path]:
    return sorted(IDS.glob("*-odrl-*.json")) + sorted(IDS.glob("*odrl-complex*.json"))


@pytest.mark.parametrize("path", _ids_files(), ids=lambda p: p.stem)
def test_ids_policy_classes_parse_or_fail_clearly(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    try:
        doc = read_json(text)
    except PolicyError as exc:
        assert "line" in str(exc) and ("several JSON documents" in str(exc) or "not valid JSON" in str(exc))
        return
    docs = doc if isinstance(doc, list) else [doc]
    for item in docs:
        try:
            parse(item, document_loader=load_document)
        except PolicyError as exc:
            assert exc.pointer is not None and exc.problem  # a clear error, never a crash
        else:
            assert isinstance(validate(item, document_loader=load_document), list)


def test_ids_malformed_files_are_detected() -> None:
    malformed = []
    for path in IDS.glob("*.json"):
        try:
            read_json(path.read_text(encoding="utf-8"))
        except PolicyError as exc:
            malformed.append((path.name, str(exc)))
    assert len(malformed) >= 6, malformed
    assert any("several JSON documents" in message for _, message in malformed)

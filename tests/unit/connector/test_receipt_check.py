"""The on-demand receipt check the console shows: the verdict, who signed, whether the outputs are the signed ones."""

from __future__ import annotations

from typing import Any

from connector.services.receipt_check import check_receipt
from tests.unit.connector.test_compute_release import OTHER, OUTPUTS, A, document, resolve


def test_a_genuine_receipt_verifies_and_is_decoded() -> None:
    answer = check_receipt(document()["receipt"], expected_signer=A, outputs=OUTPUTS, resolve=resolve)
    assert answer["verified"] is True and answer["problem"] is None
    assert answer["signer"] == A and answer["outputsMatch"] is True and answer["keyId"].startswith(A + "#")
    assert answer["statement"]["predicate"]["input"]["recordCount"] == 2


def test_without_outputs_only_the_signature_and_signer_are_checked() -> None:
    answer = check_receipt(document()["receipt"], expected_signer=A, outputs=None, resolve=resolve)
    assert answer["verified"] is True and answer["outputsMatch"] is None


def test_another_signer_or_other_outputs_are_named() -> None:
    other = check_receipt(document(signer=OTHER)["receipt"], expected_signer=A, outputs=OUTPUTS, resolve=resolve)
    assert other["verified"] is False and f"signed by {OTHER}, not by the data provider {A}" in other["problem"]
    changed: dict[str, Any] = {**OUTPUTS, "mean_uxDesign": 0.99}
    answer = check_receipt(document()["receipt"], expected_signer=A, outputs=changed, resolve=resolve)
    assert answer["verified"] is False and answer["outputsMatch"] is False
    assert "not the ones it signs" in answer["problem"]


def test_a_tampered_receipt_is_not_verified_and_says_why() -> None:
    receipt = document()["receipt"]
    receipt["payload"] = receipt["payload"][:-8] + "AAAAAAA="
    answer = check_receipt(receipt, expected_signer=A, outputs=OUTPUTS, resolve=resolve)
    assert answer["verified"] is False and answer["statement"] is None
    assert answer["problem"].startswith("the receipt does not verify")

"""Check a stored run receipt again, on demand, for a reader (the console, a data subject): who signed it, whether
the signature holds against that DID's document, and whether released outputs are the ones it signs.

The requester already verified the receipt before it accepted the release (`compute_release.verify_release`);
this repeats the check so a page can show it rather than assert it, and decodes the statement for display.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from compute_to_data.receipts import output_digest, verify_receipt
from compute_to_data.signing import SignatureCheckError


def check_receipt(receipt: Any, *, expected_signer: str, outputs: Mapping[str, Any] | None,
                  resolve: Callable[[str], Any]) -> dict[str, Any]:
    """`{"verified", "signer", "expectedSigner", "keyId", "outputsMatch", "statement", "problem"}`; never raises
    for a receipt that does not verify (that is the answer), only for a resolver that cannot be reached."""
    try:
        verified = verify_receipt(receipt, resolve)
    except (SignatureCheckError, ValueError) as exc:
        return {"verified": False, "signer": None, "expectedSigner": expected_signer, "keyId": None,
                "outputsMatch": None, "statement": None, "problem": f"the receipt does not verify: {exc}"}
    statement = dict(verified.statement)
    signed = dict((statement.get("predicate") or {}).get("outputs") or {})
    outputs_match = None if outputs is None else (
        set(outputs) == set(signed) and all(output_digest(v) == signed.get(k) for k, v in outputs.items()))
    problems = []
    if verified.signer_did != expected_signer:
        problems.append(f"it is signed by {verified.signer_did}, not by the data provider {expected_signer}")
    if outputs_match is False:
        problems.append("the released outputs are not the ones it signs")
    return {"verified": not problems, "signer": verified.signer_did, "expectedSigner": expected_signer,
            "keyId": verified.key_id, "outputsMatch": outputs_match, "statement": statement,
            "problem": "; ".join(problems) or None}

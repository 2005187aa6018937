from __future__ import annotations

import pytest

from contracts import OfferId, OfferRejectedError
from contracts.offers import same_rules


def test_offer_id_round_trips_through_base64_parts() -> None:
    offer_id = OfferId("def:1", "asset/ä", "0")
    assert OfferId.parse(str(offer_id)) == offer_id


def test_raw_parts_are_accepted_as_the_tck_sends_them() -> None:
    assert OfferId.parse("CD123:ACN0101:456") == OfferId("CD123", "ACN0101", "456")


@pytest.mark.parametrize("bad", ["", "one", "a:b", "a::c", "a:b:c:d"])
def test_malformed_offer_ids_are_rejected_with_the_fix(bad: str) -> None:
    with pytest.raises(OfferRejectedError, match="use an offer @id from our catalog"):
        OfferId.parse(bad)


def test_same_rules_ignores_ids_parties_and_list_wrapping() -> None:
    advertised = {"@id": "o1", "permission": [{"action": "use", "constraint": []}]}
    requested = {"@id": "other", "@type": "Offer", "target": "a", "assigner": "did:web:p",
                 "permission": {"action": "use"}}
    assert same_rules(requested, advertised)


def test_changed_constraint_is_not_the_same_offer() -> None:
    advertised = {"permission": [{"action": "use", "constraint": [
        {"leftOperand": "dateTime", "operator": "lteq", "rightOperand": "2030-01-01T00:00:00Z"}]}]}
    requested = {"permission": [{"action": "use", "constraint": [
        {"leftOperand": "dateTime", "operator": "lteq", "rightOperand": "2099-01-01T00:00:00Z"}]}]}
    assert not same_rules(requested, advertised)

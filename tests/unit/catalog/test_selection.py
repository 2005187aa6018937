from __future__ import annotations

from catalog import Asset, Criterion, matches
from catalog.selection import selected_ids

ASSET = Asset(id="a-1", properties={"name": "Skills", "https://w3id.org/edc/v0.0.1/ns/kind": "portfolio"})


def test_empty_selector_selects_everything() -> None:
    assert matches((), ASSET)
    assert selected_ids(()) is None


def test_id_and_property_criteria() -> None:
    assert matches((Criterion("https://w3id.org/edc/v0.0.1/ns/id", "=", "a-1"),), ASSET)
    assert matches((Criterion("kind", "in", ["portfolio", "cv"]),), ASSET)
    assert not matches((Criterion("name", "=", "Other"),), ASSET)
    assert matches((Criterion("name", "like", "Ski%"),), ASSET)


def test_unknown_operator_selects_nothing() -> None:
    assert not matches((Criterion("name", "~=", "Skills"),), ASSET)


def test_id_only_selectors_are_answered_by_index() -> None:
    selector = (Criterion("id", "in", ["a-1", "a-2"]), Criterion("edc:id", "=", "a-2"))
    assert selected_ids(selector) == frozenset({"a-2"})
    assert selected_ids((Criterion("name", "=", "x"),)) is None

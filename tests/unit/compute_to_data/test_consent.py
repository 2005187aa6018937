"""Which subjects consent: newest event wins, expiry, provider, and the DPV purpose hierarchy."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from compute_to_data.consent import ConsentEvent, consenting_subjects, expand_purpose

DPV = "https://w3id.org/dpv#"
B, C = "did:web:b.example", "did:web:c.example"
NARROW = DPV + "ServicePersonalisation"
BROAD = DPV + "ServiceProvision"
T0 = datetime(2026, 11, 1, tzinfo=UTC)


def at(days: float) -> datetime:
    return T0 + timedelta(days=days)


def grant(subject: str, day: float, purpose: str = NARROW, provider: str = B,
          expires: datetime | None = None) -> ConsentEvent:
    return ConsentEvent(subject, provider, purpose, "grant", at(day), expires)


def revoke(subject: str, day: float, purpose: str = NARROW, provider: str = B) -> ConsentEvent:
    return ConsentEvent(subject, provider, purpose, "revoke", at(day))


def who(events: list[ConsentEvent], day: float = 10, purpose: str = NARROW, provider: str = B) -> frozenset[str]:
    return consenting_subjects(events, provider, purpose, at(day))


def test_grant_and_revoke_newest_wins() -> None:
    assert who([grant("s1", 1), grant("s2", 1), revoke("s2", 2)]) == {"s1"}
    assert who([revoke("s1", 1), grant("s1", 2)]) == {"s1"}
    assert who([grant("s1", 2), revoke("s1", 1)]) == {"s1"}  # order of the input does not matter
    assert who([grant("s1", 1), revoke("s1", 1)]) == frozenset()  # a tie goes to the revocation


def test_no_event_means_no_consent() -> None:
    assert who([]) == frozenset()


def test_provider_must_match() -> None:
    assert who([grant("s1", 1, provider=C)]) == frozenset()
    assert who([grant("s1", 1, provider=C)], provider=C) == {"s1"}


def test_expiry() -> None:
    events = [grant("s1", 1, expires=at(5))]
    assert who(events, day=4) == {"s1"}
    assert who(events, day=5) == frozenset()
    assert who(events, day=6) == frozenset()


def test_events_after_the_moment_are_not_known_yet() -> None:
    assert who([grant("s1", 5)], day=4) == frozenset()
    assert who([grant("s1", 1), revoke("s1", 5)], day=4) == {"s1"}


def test_a_broad_purpose_covers_a_narrow_one_not_the_reverse() -> None:
    assert who([grant("s1", 1, purpose=BROAD)], purpose=NARROW) == {"s1"}
    assert who([grant("s1", 1, purpose=NARROW)], purpose=BROAD) == frozenset()
    assert who([grant("s1", 1, purpose=DPV + "AcademicResearch")], purpose=NARROW) == frozenset()


def test_revoking_a_broad_purpose_revokes_the_narrow_grant() -> None:
    assert who([grant("s1", 1, purpose=NARROW), revoke("s1", 2, purpose=BROAD)]) == frozenset()
    assert who([revoke("s1", 1, purpose=BROAD), grant("s1", 2, purpose=NARROW)]) == {"s1"}
    assert who([grant("s1", 1, purpose=BROAD), revoke("s1", 2, purpose=NARROW)]) == frozenset()


def test_an_expired_regrant_replaces_the_earlier_grant_of_that_purpose() -> None:
    events = [grant("s1", 1), grant("s1", 2, expires=at(3))]
    assert who(events, day=4) == frozenset()
    # ... but does not undo a live grant of another covering purpose
    assert who([*events, grant("s1", 1, purpose=BROAD)], day=4) == {"s1"}


def test_compact_purposes_and_naive_times() -> None:
    assert expand_purpose("dpv:ServiceProvision") == BROAD
    assert expand_purpose("https://example.com/p") == "https://example.com/p"
    naive = ConsentEvent("s1", B, "dpv:ServiceProvision", "grant", datetime(2026, 11, 2))
    assert consenting_subjects([naive], B, "dpv:ServicePersonalisation", at(10)) == {"s1"}

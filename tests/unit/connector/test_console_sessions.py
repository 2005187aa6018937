"""Console sessions: a cookie names a live session only while it is signed, open and unexpired."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from connector.http.console.sessions import Principal, SessionStore
from connector.http.console.signin import ApiKeySignIn, SignInError

OPERATOR = Principal(subject="operator", method="api-key")


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def test_a_session_ends_when_it_expires() -> None:
    clock = Clock()
    store = SessionStore(clock, lifetime=timedelta(hours=1))
    session, cookie = store.open(OPERATOR)
    assert store.lookup(cookie) == session
    clock.now += timedelta(minutes=59)
    assert store.lookup(cookie) == session
    clock.now += timedelta(minutes=1)
    assert store.lookup(cookie) is None


def test_a_cookie_from_another_process_or_tampered_is_refused() -> None:
    clock = Clock()
    ours, theirs = SessionStore(clock), SessionStore(clock)
    _, cookie = theirs.open(OPERATOR)
    assert ours.lookup(cookie) is None
    session, cookie = ours.open(OPERATOR)
    assert ours.lookup(cookie[:-1] + ("0" if cookie[-1] != "0" else "1")) is None
    assert ours.lookup(session.id) is None and ours.lookup("") is None and ours.lookup(None) is None


def test_csrf_token_must_match_exactly() -> None:
    session, _ = SessionStore(Clock()).open(OPERATOR)
    assert session.csrf_matches(session.csrf_token)
    assert not session.csrf_matches(None) and not session.csrf_matches("") and not session.csrf_matches(
        session.csrf_token[:-1])


def test_api_key_sign_in_says_what_is_wrong() -> None:
    sign_in = ApiKeySignIn("right-key-123")
    assert sign_in.authenticate({"apiKey": "right-key-123"}) == OPERATOR
    with pytest.raises(SignInError, match="enter the management API key"):
        sign_in.authenticate({})
    with pytest.raises(SignInError, match="not this connector's"):
        sign_in.authenticate({"apiKey": "nope"})

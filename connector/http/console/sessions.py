"""Console sessions: a signed cookie naming a server-side session, and the CSRF token bound to that session.

The cookie holds `<session id>.<HMAC>` and nothing else; the session itself (who signed in, its CSRF token, when it
ends) stays in this process. Signing out deletes it, so a copied cookie stops working at once, and a restart signs
everyone out (the signing key is drawn per process). Every unsafe request made with the cookie must repeat the
session's CSRF token in the `X-CSRF-Token` header: a page on another site can make the browser send the cookie
(SameSite=Strict already stops that in current browsers) but can never read the token.
"""

from __future__ import annotations

import hmac
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from hashlib import sha256
from urllib.parse import urlsplit

from starlette.requests import Request

COOKIE_NAME = "sovra_console"
CSRF_HEADER = "X-CSRF-Token"
SESSION_LIFETIME = timedelta(hours=8)
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass(frozen=True, slots=True)
class Principal:
    """Who signed in and how; `method` leaves room for other sign-ins (OIDC) next to the API key."""

    subject: str
    method: str


@dataclass(frozen=True, slots=True)
class ConsoleSession:
    id: str
    principal: Principal
    csrf_token: str
    expires_at: datetime

    def csrf_matches(self, presented: str | None) -> bool:
        return presented is not None and hmac.compare_digest(presented.encode(), self.csrf_token.encode())


class SessionStore:
    """The signed-in console sessions of this process; thread-safe (sync routes run in a thread pool)."""

    def __init__(self, clock: Callable[[], datetime], *, lifetime: timedelta = SESSION_LIFETIME) -> None:
        self._clock = clock
        self._lifetime = lifetime
        self._key = secrets.token_bytes(32)
        self._sessions: dict[str, ConsoleSession] = {}
        self._lock = threading.Lock()

    def open(self, principal: Principal) -> tuple[ConsoleSession, str]:
        """A new session and the cookie value that names it."""
        now = self._clock()
        session = ConsoleSession(id=secrets.token_urlsafe(32), principal=principal,
                                 csrf_token=secrets.token_urlsafe(32), expires_at=now + self._lifetime)
        with self._lock:
            self._sessions = {k: s for k, s in self._sessions.items() if s.expires_at > now}
            self._sessions[session.id] = session
        return session, f"{session.id}.{self._sign(session.id)}"

    def lookup(self, cookie: str | None) -> ConsoleSession | None:
        """The live session a cookie names; None for a forged, signed-out or expired one."""
        if not cookie or "." not in cookie:
            return None
        session_id, _, signature = cookie.rpartition(".")
        if not hmac.compare_digest(signature.encode(), self._sign(session_id).encode()):
            return None
        with self._lock:
            session = self._sessions.get(session_id)
            if session is not None and session.expires_at <= self._clock():
                del self._sessions[session_id]
                return None
        return session

    def close(self, session: ConsoleSession) -> None:
        with self._lock:
            self._sessions.pop(session.id, None)

    def _sign(self, session_id: str) -> str:
        return hmac.new(self._key, session_id.encode(), sha256).hexdigest()


def same_origin(request: Request, public_url: str) -> bool:
    """A sign-in posted by another site's page would log the browser into our console (login CSRF). The page's
    origin is the host it was loaded from, or our public URL when a proxy rewrites Host."""
    origin = request.headers.get("origin")
    if origin is None:  # not a browser's cross-site post: browsers always send Origin on POST
        return True
    return urlsplit(origin).netloc in (request.headers.get("host", ""), urlsplit(public_url).netloc)

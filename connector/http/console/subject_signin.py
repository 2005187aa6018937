"""A data subject's own sign-in to her page at /console/me, with her personal token.

    GET    /console/me           her page (plain ES modules from connector/resources/console/me)
    GET    /console/me/session   who is signed in, with the CSRF token (401 when nobody is)
    POST   /console/me/session   {"token": "..."}: sets the `sovra_subject` cookie
    DELETE /console/me/session   sign out (needs X-CSRF-Token)

This session is a different kind from the operator's: its own cookie, its own store and signing key, so it can
never pass the management API's guard (that one only knows the operator's store). The token stays in this
process's memory, never in the cookie, and every request re-checks it: a token the operator revokes ends the
session at once. The page calls /api/subject/v1 with the cookie; a change needs the CSRF header there too.
"""

from __future__ import annotations

import threading

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, JSONResponse, Response

from connector.container import Connector
from connector.http.console.sessions import CSRF_HEADER, ConsoleSession, Principal, SessionStore, same_origin
from connector.services import subject_tokens

SUBJECT_COOKIE = "sovra_subject"
METHOD = "personal-token"


class SubjectSessions:
    """The signed-in data subjects of this process: a `SessionStore` plus each session's personal token."""

    def __init__(self, store: SessionStore) -> None:
        self.store = store
        self._tokens: dict[str, str] = {}
        self._lock = threading.Lock()

    def open(self, subject: str, token: str) -> tuple[ConsoleSession, str]:
        session, cookie = self.store.open(Principal(subject=subject, method=METHOD))
        with self._lock:
            self._tokens[session.id] = token
        return session, cookie

    def lookup(self, cookie: str | None) -> tuple[ConsoleSession, str] | None:
        """The live session a cookie names and the token it was opened with; None otherwise."""
        session = self.store.lookup(cookie)
        if session is None:
            return None
        with self._lock:
            token = self._tokens.get(session.id)
        return (session, token) if token is not None else None

    def close(self, session: ConsoleSession) -> None:
        self.store.close(session)
        with self._lock:
            self._tokens.pop(session.id, None)


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": "unauthorized" if status == 401 else "invalid.request", "message": message},
                        status_code=status)


def build_router(connector: Connector, sessions: SubjectSessions, static_dir: object) -> APIRouter:
    router = APIRouter(prefix="/console/me", include_in_schema=False)
    secure = connector.settings.public_url.startswith("https://")

    def described(session: ConsoleSession) -> dict[str, object]:
        return {"signedIn": True, "subject": session.principal.subject, "csrfToken": session.csrf_token,
                "csrfHeader": CSRF_HEADER, "participantId": connector.settings.participant_id,
                "expiresAt": int(session.expires_at.timestamp() * 1000)}

    def subject_for(token: str) -> str | None:
        with connector.db.read_only() as uow:
            return subject_tokens.authenticate(uow, token)

    @router.get("")
    def page() -> FileResponse:
        return FileResponse(f"{static_dir}/me/index.html", media_type="text/html")

    @router.get("/session")
    def who_am_i(request: Request) -> JSONResponse:
        found = sessions.lookup(request.cookies.get(SUBJECT_COOKIE))
        if found is None or subject_for(found[1]) != found[0].principal.subject:
            return _error(401, "nobody is signed in; sign in with the personal token your data provider gave you")
        return JSONResponse(described(found[0]))

    @router.post("/session")
    async def sign_in(request: Request) -> Response:
        if not same_origin(request, connector.settings.public_url):
            return _error(403, "sign-in must come from this page")
        try:
            body = await request.json()
        except ValueError:
            body = None
        token = body.get("token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token.strip() or len(token) > 512:
            return _error(400, 'send {"token": "..."}: the personal token your data provider gave you')
        subject = subject_for(token.strip())
        if subject is None:
            return _error(401, "that personal token is unknown or was revoked; ask the data provider for a new one")
        session, cookie = sessions.open(subject, token.strip())
        answer = JSONResponse(described(session))
        answer.set_cookie(SUBJECT_COOKIE, cookie, httponly=True, samesite="strict", secure=secure, path="/",
                          max_age=int((session.expires_at - connector.rt.clock()).total_seconds()))
        return answer

    @router.delete("/session", status_code=204)
    def sign_out(request: Request) -> Response:
        found = sessions.lookup(request.cookies.get(SUBJECT_COOKIE))
        if found is not None:
            if not found[0].csrf_matches(request.headers.get(CSRF_HEADER)):
                return _error(403, f"the {CSRF_HEADER} header is missing or does not match the session")
            sessions.close(found[0])
        answer = Response(status_code=204)
        answer.delete_cookie(SUBJECT_COOKIE, path="/", httponly=True, samesite="strict", secure=secure)
        return answer

    return router

"""Console routes: the app shell, its static files, and the session resource (sign in, who am I, sign out)."""

from __future__ import annotations

import json
from importlib.resources import files
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from connector.container import Connector
from connector.http.console.sessions import COOKIE_NAME, CSRF_HEADER, ConsoleSession, SessionStore, same_origin
from connector.http.console.signin import ApiKeySignIn, SignIn, SignInError
from connector.http.console.subject_signin import SubjectSessions
from connector.http.console.subject_signin import build_router as subject_router

PREFIX = "/console"
STATIC_DIR = Path(str(files("connector") / "resources" / "console"))
_SIGN_IN_LIMIT = 16 * 1024
# Everything the console loads comes from this origin; nothing may frame it.
_SECURITY_HEADERS = [
    (b"content-security-policy", b"default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
                                 b"frame-ancestors 'none'; form-action 'self'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
]


def _error(status: int, code: str, message: str) -> JSONResponse:
    """The management API's error shape, so the pages read one kind of error."""
    return JSONResponse([{"message": message, "type": code, "path": None, "invalidValue": None}],
                        status_code=status)


class ConsoleHeaders:
    """Security headers on every console response (the shell, its files, the session answers)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not str(scope["path"]).startswith(PREFIX):
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *_SECURITY_HEADERS,
                                      (b"cache-control", b"no-cache")]
            await send(message)

        await self.app(scope, receive, with_headers)


def build_router(connector: Connector, sessions: SessionStore, sign_in: SignIn) -> APIRouter:
    router = APIRouter(prefix=PREFIX, include_in_schema=False)
    secure = connector.settings.public_url.startswith("https://")

    def described(session: ConsoleSession) -> dict[str, Any]:
        return {"signedIn": True, "participantId": connector.settings.participant_id,
                "publicUrl": connector.settings.public_url, "csrfToken": session.csrf_token,
                "csrfHeader": CSRF_HEADER, "method": session.principal.method,
                "expiresAt": int(session.expires_at.timestamp() * 1000)}

    @router.get("")
    def shell() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html")

    @router.get("/session")
    def who_am_i(request: Request) -> JSONResponse:
        session = sessions.lookup(request.cookies.get(COOKIE_NAME))
        if session is None:
            return _error(401, "unauthorized", "nobody is signed in to the console; sign in with the API key")
        return JSONResponse(described(session))

    @router.post("/session")
    async def sign_in_route(request: Request) -> Response:
        if not same_origin(request, connector.settings.public_url):
            return _error(403, "forbidden", "sign-in must come from the console's own page")
        is_form = request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded")
        raw = await request.body()
        if len(raw) > _SIGN_IN_LIMIT:
            return _error(413, "invalid.request", "the sign-in body is too large")
        credentials = _credentials(raw, is_form)
        if credentials is None:
            return _error(400, "invalid.request", 'send {"apiKey": "..."} as JSON or a form field apiKey')
        try:
            principal = sign_in.authenticate(credentials)
        except SignInError as exc:
            if is_form:
                return RedirectResponse(f"{PREFIX}?signin=refused", status_code=303)
            return _error(401, "unauthorized", str(exc))
        session, cookie = sessions.open(principal)
        answer: Response = (RedirectResponse(PREFIX, status_code=303) if is_form
                            else JSONResponse(described(session)))
        answer.set_cookie(COOKIE_NAME, cookie, httponly=True, samesite="strict", secure=secure, path="/",
                          max_age=int((session.expires_at - connector.rt.clock()).total_seconds()))
        return answer

    @router.delete("/session", status_code=204)
    def sign_out(request: Request) -> Response:
        session = sessions.lookup(request.cookies.get(COOKIE_NAME))
        if session is None:
            answer: Response = Response(status_code=204)
        elif not session.csrf_matches(request.headers.get(CSRF_HEADER)):
            return _error(403, "forbidden", f"the {CSRF_HEADER} header is missing or does not match the session")
        else:
            sessions.close(session)
            answer = Response(status_code=204)
        answer.delete_cookie(COOKIE_NAME, path="/", httponly=True, samesite="strict", secure=secure)
        return answer

    return router


def _credentials(raw: bytes, is_form: bool) -> dict[str, str] | None:
    try:
        if is_form:
            return {k: v[0] for k, v in parse_qs(raw.decode("utf-8")).items() if v}
        value = json.loads(raw or b"null")
    except (UnicodeDecodeError, ValueError):
        return None
    if not isinstance(value, dict):
        return None
    return {k: v for k, v in value.items() if isinstance(v, str)}


def install(app: FastAPI, connector: Connector, sessions: SessionStore, subjects: SubjectSessions) -> None:
    """Mount the console on `app`: routes, the data subject's page, static files, and its security headers."""
    app.include_router(subject_router(connector, subjects, STATIC_DIR))
    app.include_router(build_router(connector, sessions, ApiKeySignIn(connector.settings.api_key)))
    app.mount(PREFIX + "/static", StaticFiles(directory=STATIC_DIR), name="console-static")
    app.add_middleware(ConsoleHeaders)

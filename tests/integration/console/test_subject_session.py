"""The data subject's sign-in at /console/me: her personal token opens her own API through a cookie session, with
CSRF on changes, and never the management API; revoking her token ends the session at once."""

from __future__ import annotations

from fastapi.testclient import TestClient

from connector.http.console.sessions import CSRF_HEADER
from connector.http.console.subject_signin import SUBJECT_COOKIE
from tests.integration.console.conftest import API_KEY, BASE_URL

OPERATOR = {"X-Api-Key": API_KEY}
CONSENT = {"provider": "did:web:ai.example", "purpose": "https://w3id.org/dpv#ServicePersonalisation"}


def issue(browser: TestClient, subject: str) -> str:
    response = browser.post(f"/api/management/v3/subjects/{subject}/tokens", headers=OPERATOR)
    assert response.status_code == 201, response.text
    return str(response.json()["token"])


def sign_in(browser: TestClient, token: str) -> dict[str, str]:
    response = browser.post("/console/me/session", json={"token": token}, headers={"Origin": BASE_URL})
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_her_token_signs_her_in_with_a_strict_http_only_cookie(browser: TestClient) -> None:
    answer = sign_in(browser, issue(browser, "S-1024"))
    assert answer["subject"] == "S-1024" and len(answer["csrfToken"]) > 30
    cookie = next(c for c in browser.cookies.jar if c.name == SUBJECT_COOKIE)
    assert cookie.has_nonstandard_attr("HttpOnly") and cookie.path == "/"
    assert browser.get("/console/me/session").json()["subject"] == "S-1024"
    assert browser.get("/console/me").headers["content-type"].startswith("text/html")


def test_a_wrong_token_is_refused_and_sets_no_cookie(browser: TestClient) -> None:
    response = browser.post("/console/me/session", json={"token": "sovra_st_not-a-token"})
    assert response.status_code == 401 and "unknown or was revoked" in response.json()["message"]
    assert "set-cookie" not in response.headers
    assert browser.post("/console/me/session", json={}).status_code == 400


def test_her_session_opens_her_api_but_never_the_management_api(browser: TestClient) -> None:
    sign_in(browser, issue(browser, "S-1024"))
    assert browser.get("/api/subject/v1/consents").json()["subject"] == "S-1024"
    assert browser.get("/api/management/v3/consents").status_code == 401
    assert browser.post("/api/management/v3/consents/grant", json={"subject": "S-2048", **CONSENT}).status_code == 401
    assert browser.get("/console/session").status_code == 401  # not an operator session either


def test_a_change_needs_the_csrf_header(browser: TestClient) -> None:
    csrf = sign_in(browser, issue(browser, "S-1024"))["csrfToken"]
    refused = browser.post("/api/subject/v1/consents", json={**CONSENT, "action": "grant"})
    assert refused.status_code == 403 and CSRF_HEADER in refused.json()["message"]
    granted = browser.post("/api/subject/v1/consents", json={**CONSENT, "action": "grant"},
                           headers={CSRF_HEADER: csrf})
    assert granted.status_code == 201, granted.text
    status = browser.get("/api/management/v3/consents?subject=S-1024", headers=OPERATOR).json()
    assert [c["granted"] for c in status] == [True]


def test_revoking_her_token_ends_her_session_and_sign_out_ends_it_for_good(browser: TestClient) -> None:
    sign_in(browser, issue(browser, "S-1024"))
    assert browser.delete("/api/management/v3/subjects/S-1024/tokens", headers=OPERATOR).status_code == 200
    assert browser.get("/api/subject/v1/consents").status_code == 401
    assert browser.get("/console/me/session").status_code == 401

    csrf = sign_in(browser, issue(browser, "S-1024"))["csrfToken"]
    cookie = browser.cookies.get(SUBJECT_COOKIE)
    assert browser.delete("/console/me/session", headers={CSRF_HEADER: csrf}).status_code == 204
    browser.cookies.set(SUBJECT_COOKIE, cookie or "")
    assert browser.get("/api/subject/v1/consents").status_code == 401

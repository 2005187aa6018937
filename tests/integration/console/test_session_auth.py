"""Console sign-in: the session cookie opens the management API, unsafe calls need the CSRF header, and signing
out ends the session for good."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from connector.container import Connector
from connector.http.app import create_app
from connector.http.console.sessions import COOKIE_NAME, CSRF_HEADER
from connector.settings import Settings
from tests.integration.console.conftest import API_KEY, BASE_URL

ASSET = {"@id": "a-1", "properties": {"name": "a"}, "dataAddress": {"type": "HttpData", "baseUrl": "https://x.org"}}


def sign_in(browser: TestClient) -> dict[str, Any]:
    response = browser.post("/console/session", json={"apiKey": API_KEY}, headers={"Origin": BASE_URL})
    assert response.status_code == 200, response.text
    return response.json()


def test_sign_in_sets_a_strict_http_only_cookie_and_answers_the_csrf_token(browser: TestClient) -> None:
    response = browser.post("/console/session", json={"apiKey": API_KEY})
    assert response.status_code == 200
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE_NAME}=")
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # the public URL is plain http (--dev)
    body = response.json()
    assert body["signedIn"] is True and body["csrfHeader"] == CSRF_HEADER and len(body["csrfToken"]) > 30
    assert body["participantId"] == "did:web:localhost%3A18182"
    assert browser.get("/console/session").json()["csrfToken"] == body["csrfToken"]


def test_wrong_key_is_refused_with_a_clear_reason_and_no_cookie(browser: TestClient) -> None:
    response = browser.post("/console/session", json={"apiKey": "not-the-key"})
    assert response.status_code == 401
    assert "not this connector's management API key" in response.json()[0]["message"]
    assert "set-cookie" not in response.headers
    empty = browser.post("/console/session", json={"apiKey": ""})
    assert "enter the management API key" in empty.json()[0]["message"]
    assert browser.get("/console/session").status_code == 401


def test_form_sign_in_redirects_to_the_console(browser: TestClient) -> None:
    response = browser.post("/console/session", data={"apiKey": API_KEY}, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/console"
    assert browser.get("/console/session").status_code == 200
    refused = browser.post("/console/session", data={"apiKey": "wrong"}, follow_redirects=False)
    assert refused.headers["location"] == "/console?signin=refused"


def test_sign_in_from_another_origin_is_refused(browser: TestClient) -> None:
    response = browser.post("/console/session", json={"apiKey": API_KEY}, headers={"Origin": "https://evil.example"})
    assert response.status_code == 403
    assert "set-cookie" not in response.headers


def test_session_reads_the_management_api_without_an_api_key(browser: TestClient) -> None:
    assert browser.post("/api/management/v3/assets/request", json={}).status_code == 401
    session = sign_in(browser)
    response = browser.get("/api/management/v3/policies/templates")
    assert response.status_code == 200
    created = browser.post("/api/management/v3/assets", json=ASSET, headers={CSRF_HEADER: session["csrfToken"]})
    assert created.status_code == 200, created.text
    assert browser.get("/api/management/v3/assets/a-1").json()["@id"] == "a-1"


def test_unsafe_request_without_csrf_header_is_forbidden_and_changes_nothing(browser: TestClient) -> None:
    sign_in(browser)
    response = browser.post("/api/management/v3/assets", json=ASSET)
    assert response.status_code == 403
    [error] = response.json()
    assert error["type"] == "forbidden" and CSRF_HEADER in error["message"]
    wrong = browser.post("/api/management/v3/assets", json=ASSET, headers={CSRF_HEADER: "guessed"})
    assert wrong.status_code == 403
    assert browser.delete("/api/management/v3/assets/a-1").status_code == 403
    assert browser.get("/api/management/v3/assets/a-1").status_code == 404


def test_sign_out_invalidates_the_session_even_for_a_kept_copy_of_the_cookie(browser: TestClient) -> None:
    session = sign_in(browser)
    kept = browser.cookies.get(COOKIE_NAME)
    assert browser.delete("/console/session").status_code == 403  # signing out needs the CSRF header too
    response = browser.delete("/console/session", headers={CSRF_HEADER: session["csrfToken"]})
    assert response.status_code == 204
    assert COOKIE_NAME in response.headers["set-cookie"] and "Max-Age=0" in response.headers["set-cookie"]
    browser.cookies.set(COOKIE_NAME, kept)  # a stolen copy must be dead too
    refused = browser.get("/api/management/v3/policies/templates")
    assert refused.status_code == 401
    assert "sign in again" in refused.json()[0]["message"]
    assert browser.get("/console/session").status_code == 401


def test_forged_cookie_is_refused(browser: TestClient) -> None:
    sign_in(browser)
    session_id = browser.cookies.get(COOKIE_NAME).rpartition(".")[0]
    browser.cookies.set(COOKIE_NAME, f"{session_id}.{'0' * 64}")
    assert browser.get("/api/management/v3/policies/templates").status_code == 401


def test_api_key_still_works_and_a_wrong_key_is_not_rescued_by_a_cookie(browser: TestClient) -> None:
    sign_in(browser)
    assert browser.post("/api/management/v3/assets/request", json={}, headers={"X-Api-Key": API_KEY}).status_code == 200
    wrong = browser.post("/api/management/v3/assets/request", json={}, headers={"X-Api-Key": "wrong-key"})
    assert wrong.status_code == 401


def test_console_shell_and_static_files_are_served_locally_with_a_strict_policy(browser: TestClient) -> None:
    shell = browser.get("/console")
    assert shell.status_code == 200 and "text/html" in shell.headers["content-type"]
    assert "default-src 'self'" in shell.headers["content-security-policy"]
    assert shell.headers["x-frame-options"] == "DENY"
    assert "http://" not in shell.text.replace(BASE_URL, "") and "https://" not in shell.text
    script = browser.get("/console/static/app.js")
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    assert browser.get("/console/").status_code == 200


def test_cookie_is_secure_when_the_public_url_is_https(tmp_path: Path) -> None:
    settings = Settings(public_url="https://connector.example.org", api_key=API_KEY, data_dir=tmp_path / "data",
                        database_url=f"sqlite:///{tmp_path / 'db.sqlite'}").with_defaults().validate()
    client = TestClient(create_app(Connector(settings), manage_lifecycle=False),
                        base_url="https://connector.example.org")
    response = client.post("/console/session", json={"apiKey": API_KEY},
                           headers={"Origin": "https://connector.example.org"})
    assert response.status_code == 200
    assert "Secure" in response.headers["set-cookie"]

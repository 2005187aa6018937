"""Compute-to-data through the consoles of two real `sovra serve` processes: B (an AI provider) publishes its
signed algorithm and submits jobs against A (a school) from its console, follows them live and reads the verified
receipt; A's operator sees the job, the consent registry and the audit chain; a student signs in to her own page
with her personal token, reads her result, revokes her consent, and the next job runs without her record.

A's dataset, policy and B's negotiation are set up through the APIs with the demo's own steps (connector.demo);
everything the issue asks the console to do is done in the browser. Jobs run in bubblewrap."""

from __future__ import annotations

import re
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from connector import demo
from connector import demo_student as S
from connector.localnet import ConnectorProcess
from tests.e2e.console.conftest import shot
from tests.e2e.console.test_console_journeys import nav, open_console, sign_in

pytestmark = [pytest.mark.e2e, pytest.mark.browser,
              pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed "
                                                                        "(scripts/sandbox-setup.sh)")]
JOB_TIMEOUT = 150_000
GRACE, LENA = "S-2048", "S-4096"


@pytest.fixture(scope="module")
def school_and_ai(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A (school) with the students' dataset, its compute-only offer and two students' consent; B (AI provider)
    with a signed bundle on disk (not yet published) and a FINALIZED compute-only agreement is made later."""
    root = tmp_path_factory.mktemp("c2d-console")
    school = ConnectorProcess("school", root / "school", api_key="school-console-key").start()
    ai = ConnectorProcess("ai-provider", root / "ai", api_key="ai-console-key").start()
    a, b = school.management(), ai.management()
    signed = S.build_signed_bundle(root / "build", ai.file_root / "algorithms-src", data_dir=ai.data_dir,
                                   public_url=ai.url)
    demo.publish_dataset(school, ai, a, number=1)
    tokens = demo.consent(school, ai, a, number=2)
    yield {"school": school, "ai": ai, "a": a, "b": b, "signed": signed, "tokens": tokens}
    a.close()
    b.close()
    school.kill()
    ai.kill()


def submit_job(page: Page, school: ConnectorProcess, *, min_size: str = "2", screenshot: str | None = None) -> str:
    nav(page, "Compute jobs")
    page.get_by_role("link", name="Submit a job").first.click()
    expect(page.get_by_label("Agreement")).to_contain_text("student-skills")
    page.get_by_label("Counter-party address").fill(school.dsp_url)
    expect(page.get_by_label("Algorithm asset id")).to_have_value("career-match")
    page.get_by_label("dpEpsilon").fill("0.5")
    page.get_by_label("minAggregationSize").fill(min_size)
    page.get_by_label("Purpose").fill(demo.PURPOSE)
    if screenshot:
        shot(page, screenshot)
    page.get_by_role("button", name="Submit job").click()
    expect(page.get_by_role("heading", name=re.compile("^Compute job "))).to_be_visible()
    return page.get_by_role("heading", name=re.compile("^Compute job ")).inner_text().removeprefix("Compute job ")


def ensure_published_and_negotiated(state: dict[str, Any]) -> None:
    """What the journey above does in the browser, through the API, for a test run on its own."""
    school, ai, b = state["school"], state["ai"], state["b"]
    if b.get("/v3/assets/career-match").status_code == 404:
        signed = state["signed"]
        b.ok(b.post("/v3/algorithms", {"@id": "career-match", "archive": signed["bundle"],
                                       "envelope": signed["envelope"]}))
        b.ok(b.post("/v3/policydefinitions", {"@id": "algorithm-use", "policy": {
            "@type": "Set", "permission": [{"action": "use"}], "prohibition": [{"action": "distribute"}]}}))
        b.ok(b.post("/v3/contractdefinitions", {
            "@id": "career-match-offer", "accessPolicyId": "algorithm-use", "contractPolicyId": "algorithm-use",
            "assetsSelector": [{"operandLeft": "https://w3id.org/edc/v0.0.1/ns/id", "operator": "=",
                                "operandRight": "career-match"}]}))
    agreements: Any = b.ok(b.post("/v3/contractagreements/request", {}))
    if not any(a.get("consumerId") == ai.did for a in agreements):
        demo.negotiate(school, ai, b, number=3)


def subject_jobs(school: ConnectorProcess, token: str) -> list[dict[str, Any]]:
    answer = httpx.get(school.url + "/api/subject/v1/jobs", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert answer.status_code == 200, answer.text
    return list(answer.json())


def test_b_publishes_and_runs_a_job_a_sees_it_and_a_student_revokes_her_consent(
        chromium: Browser, school_and_ai: dict[str, Any]) -> None:
    school, ai = school_and_ai["school"], school_and_ai["ai"]
    signed = school_and_ai["signed"]

    # -- B publishes its signed algorithm and offers it ----------------------------------------------------------
    bpage = open_console(chromium, ai)
    sign_in(bpage, ai)
    nav(bpage, "Algorithms")
    expect(bpage.get_by_text("No signed algorithm published yet.")).to_be_visible()
    bpage.get_by_label("Algorithm asset id").fill("career-match")
    bpage.get_by_label("Bundle path").fill(str(signed["bundle"]))
    bpage.get_by_label("Envelope path").fill(str(signed["envelope"]) + ".missing")
    bpage.get_by_role("button", name="Publish algorithm").click()
    expect(bpage.get_by_role("alert")).to_contain_text("/envelope")  # the API's reason, naming the field
    bpage.get_by_label("Envelope path").fill(str(signed["envelope"]))
    bpage.get_by_role("button", name="Publish algorithm").click()
    expect(bpage.locator("#algorithm-published")).to_contain_text(signed["digest"])
    expect(bpage.locator("#algorithm-published")).to_contain_text(ai.did)
    expect(bpage.get_by_role("cell", name=signed["digest"], exact=True)).to_be_visible()
    shot(bpage, "algorithms")

    # -- A's operator: the consent registry, one more student's consent, a personal token ----------------------
    apage = open_console(chromium, school)
    sign_in(apage, school)
    nav(apage, "Consent")
    expect(apage.locator("#consents").get_by_text("granted", exact=True)).to_have_count(2)
    apage.get_by_label("Subject", exact=True).fill(LENA)
    apage.get_by_label("AI provider (DID)").fill(ai.did)
    apage.get_by_role("button", name="Grant consent").click()
    expect(apage.locator("#consents").get_by_text("granted", exact=True)).to_have_count(3)
    apage.get_by_label("Token for subject").fill(GRACE)
    apage.get_by_role("button", name="Issue personal token").click()
    grace_token = apage.locator("#issued-token").input_value()
    assert grace_token.startswith("sovra_")
    shot(apage, "consent")
    apage.get_by_label("View").select_option("events")
    expect(apage.locator("#consents").get_by_role("cell", name="operator", exact=True)).to_be_visible()
    shot(apage, "consent-events")

    # -- B negotiates (API, with its declared purpose), then submits a job from its console ---------------------
    demo.negotiate(school, ai, school_and_ai["b"], number=3)
    first = submit_job(bpage, school, screenshot="compute-submit")
    expect(bpage.locator("#job-state")).to_contain_text("RELEASED", timeout=JOB_TIMEOUT)  # followed by polling
    expect(bpage.locator("#job-records")).to_have_text("3")
    expect(bpage.locator("#job-events")).to_contain_text("RELEASED")
    expect(bpage.locator("#receipt-verdict")).to_contain_text("verified")
    expect(bpage.locator("#receipt-verdict")).to_contain_text(school.did)
    expect(bpage.locator("#receipt-verdict")).to_contain_text("released outputs are exactly the ones it signs")
    expect(bpage.locator("#receipt-facts")).to_contain_text(ai.did)  # the algorithm's signer
    expect(bpage.locator("#receipt-records")).to_have_text("3")
    expect(bpage.get_by_role("cell", name="mean_dataScience", exact=True).first).to_be_visible()
    shot(bpage, "compute-job")
    nav(bpage, "Compute jobs")
    expect(bpage.get_by_role("cell", name="RELEASED", exact=True)).to_have_count(1)
    shot(bpage, "compute-jobs")

    # -- A's operator sees the job that ran on its data, and the audit chain ------------------------------------
    nav(apage, "Compute jobs")
    apage.get_by_label("Role").select_option("provider")
    expect(apage.get_by_role("cell", name="RELEASED", exact=True)).to_have_count(1)
    apage.locator("tbody a").first.click()
    expect(apage.locator("#job-state")).to_contain_text("RELEASED")
    expect(apage.locator("#job-records")).to_have_text("3")
    expect(apage.locator("#receipt-verdict")).to_contain_text("verified")
    shot(apage, "compute-job-provider")
    nav(apage, "Audit log")
    expect(apage.locator("#audit-chain")).to_contain_text("chain intact")
    expect(apage.get_by_role("cell", name="consent.grant", exact=True).first).to_be_visible()
    shot(apage, "audit-compute")

    # -- Grace signs in with her personal token, reads her result and the receipt, revokes her consent ----------
    context = chromium.new_context(viewport={"width": 1100, "height": 860})
    context.set_default_timeout(20_000)
    me = context.new_page()
    me.goto(school.url + "/console/me")
    me.get_by_label("Personal token").fill("sovra_st_wrong")
    me.get_by_role("button", name="Sign in").click()
    expect(me.get_by_role("alert")).to_contain_text("unknown or was revoked")
    shot(me, "me-sign-in")
    me.get_by_label("Personal token").fill(grace_token)
    me.get_by_role("button", name="Sign in").click()
    expect(me.get_by_role("heading", name=f"Your data, {GRACE}")).to_be_visible()
    cookie = next(c for c in context.cookies() if c["name"] == "sovra_subject")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    management = me.request.get(school.url + "/api/management/v3/consents")
    assert management.status == 401  # her session opens nothing of the management API
    expect(me.locator("#my-jobs").get_by_role("row")).to_have_count(2)  # the header and the one job
    me.get_by_role("button", name=re.compile("^Open job ")).click()
    expect(me.locator("#my-job")).to_contain_text("Your result")
    expect(me.locator("#my-job").get_by_role("cell", name="dataScience", exact=True)).to_be_visible()
    expect(me.locator("#receipt-verdict")).to_contain_text("verified")
    shot(me, "me")
    me.get_by_role("button", name=f"Revoke consent for {ai.did}").click()
    expect(me.locator("#my-consents")).to_contain_text("not granted")
    shot(me, "me-revoked")
    provider_jobs_before = {j["@id"] for j in subject_jobs(school, grace_token)}

    # -- the next job, from B's console, runs without her record --------------------------------------------------
    second = submit_job(bpage, school)
    assert second != first
    expect(bpage.locator("#job-state")).to_contain_text("RELEASED", timeout=JOB_TIMEOUT)
    expect(bpage.locator("#job-records")).to_have_text("2")
    expect(bpage.locator("#receipt-records")).to_have_text("2")
    assert {j["@id"] for j in subject_jobs(school, grace_token)} == provider_jobs_before  # no new job on her record
    me.reload()
    expect(me.get_by_role("heading", name=f"Your data, {GRACE}")).to_be_visible()
    expect(me.locator("#my-jobs").get_by_role("row")).to_have_count(2)  # still only the first job
    me.set_viewport_size({"width": 390, "height": 844})
    expect(me.get_by_role("heading", name=f"Your data, {GRACE}")).to_be_focused()
    assert me.evaluate("document.documentElement.scrollWidth") <= 390
    shot(me, "me-phone")
    lena_jobs = subject_jobs(school, school_and_ai["tokens"][LENA])
    assert len(lena_jobs) == 2 and all(j["hasResult"] for j in lena_jobs)  # the consenting student is in both
    context.close()


def test_a_refused_job_shows_the_reason_first(chromium: Browser, school_and_ai: dict[str, Any]) -> None:
    school, ai = school_and_ai["school"], school_and_ai["ai"]
    ensure_published_and_negotiated(school_and_ai)
    bpage = open_console(chromium, ai)
    sign_in(bpage, ai)
    submit_job(bpage, school, min_size="9")
    expect(bpage.locator("#job-state")).to_contain_text(re.compile("REJECTED|FAILED"), timeout=JOB_TIMEOUT)
    expect(bpage.locator("#job-reason")).to_be_visible()
    expect(bpage.locator("#job-reason")).to_contain_text("Refused")
    expect(bpage.get_by_text("Nothing was released.")).to_be_visible()
    shot(bpage, "compute-job-rejected")


def test_the_submit_form_explains_what_is_missing(chromium: Browser, tmp_path: Path) -> None:
    """A connector with no agreement: the form says to negotiate first instead of offering an empty picker."""
    lone = ConnectorProcess("lone", tmp_path / "lone", api_key="lone-console-key").start()
    try:
        page = open_console(chromium, lone)
        sign_in(page, lone)
        page.goto(lone.url + "/console#/compute/new")
        expect(page.get_by_text("We hold no agreement as a consumer yet.")).to_be_visible()
        nav(page, "Compute jobs")
        expect(page.get_by_text("No compute jobs yet.")).to_be_visible()
    finally:
        lone.kill()


def test_the_audit_page_says_where_the_chain_broke(chromium: Browser, school_and_ai: dict[str, Any]) -> None:
    """Someone edits an audit row in A's database behind the connector's back: the page names the row."""
    school = school_and_ai["school"]
    with sqlite3.connect(school.data_dir / "sovra.db") as db:
        [(row_id,)] = db.execute("SELECT min(id) FROM audit_events WHERE kind = 'consent.grant'").fetchall()
        db.execute("UPDATE audit_events SET actor = 'someone-else' WHERE id = ?", (row_id,))
    page = open_console(chromium, school)
    sign_in(page, school)
    nav(page, "Audit log")
    expect(page.locator("#audit-chain")).to_contain_text(f"chain broken at event {row_id}")
    expect(page.get_by_role("alert").first).to_be_visible()
    shot(page, "audit-chain-broken")

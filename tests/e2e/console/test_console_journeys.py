"""Whole journeys through the console in a real browser against two real `sovra serve` processes: sign in, publish
an asset under a policy (fixing what the editor flags) and a contract definition; from the consumer's console,
browse the provider's catalog, negotiate to FINALIZED, transfer and download the bytes."""

from __future__ import annotations

import json
import re

import pytest
from playwright.sync_api import Browser, Page, Route, expect

from connector.localnet import ConnectorProcess
from tests.e2e.conftest import negotiate, publish
from tests.e2e.console.conftest import shot

pytestmark = [pytest.mark.e2e, pytest.mark.browser]
CONTENT = b"id,value\n1,42\n2,43\n"
TIMEOUT = 20_000


def open_console(browser: Browser, connector: ConnectorProcess, *, width: int = 1280, height: int = 860) -> Page:
    context = browser.new_context(viewport={"width": width, "height": height}, accept_downloads=True)
    context.set_default_timeout(TIMEOUT)
    page = context.new_page()
    page.goto(connector.url + "/console")
    return page


def sign_in(page: Page, connector: ConnectorProcess) -> None:
    page.get_by_label("Management API key").fill(connector.api_key)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()


def nav(page: Page, name: str) -> None:
    page.get_by_role("navigation").get_by_role("link", name=name, exact=True).click()


def test_sign_in_refuses_a_wrong_key_and_sign_out_ends_the_session(
        chromium: Browser, connectors: tuple[ConnectorProcess, ConnectorProcess]) -> None:
    provider, _ = connectors
    page = open_console(chromium, provider)
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    shot(page, "sign-in")
    page.get_by_label("Management API key").fill("not-the-key")
    page.keyboard.press("Enter")
    expect(page.get_by_role("alert")).to_contain_text("not this connector's management API key")
    sign_in(page, provider)
    expect(page.locator("#participant-did")).to_have_text(provider.did)
    cookie = next(c for c in page.context.cookies() if c["name"] == "sovra_console")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.context.add_cookies([cookie])  # the old cookie is dead on the server, not just forgotten
    page.reload()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()


def test_provider_publishes_and_consumer_negotiates_transfers_and_downloads(
        chromium: Browser, connectors: tuple[ConnectorProcess, ConnectorProcess]) -> None:
    provider, consumer = connectors
    data_file = provider.file_root / "weather.csv"
    data_file.parent.mkdir(parents=True, exist_ok=True)
    data_file.write_bytes(CONTENT)

    # -- provider: asset, policy (fixing the editor's complaint), contract definition ---------------------------
    page = open_console(chromium, provider)
    sign_in(page, provider)
    nav(page, "Assets")
    expect(page.get_by_text("No assets yet")).to_be_visible()
    shot(page, "assets-empty")
    page.get_by_role("link", name="Create the first asset").click()
    page.get_by_label("Asset id").fill("weather")
    page.get_by_label("Name").fill("Weather readings")
    page.get_by_label("Content type").fill("text/csv")
    page.get_by_label("Data address type").select_option("File")
    page.get_by_label("File path").fill(str(data_file))
    shot(page, "asset-form")
    page.get_by_role("button", name="Create asset").click()
    expect(page.get_by_role("cell", name="weather", exact=True)).to_be_visible()
    page.get_by_role("link", name="Edit weather").click()
    page.get_by_label("Description").fill("Hourly readings, one station")
    page.get_by_role("button", name="Save asset").click()
    expect(page.get_by_role("cell", name="Weather readings", exact=True)).to_be_visible()
    shot(page, "assets")

    nav(page, "Policies")
    page.get_by_role("link", name="Write the first policy").click()
    page.get_by_label("Policy definition id").fill("until-2099")
    policy = {"@context": ["https://w3id.org/dspace/2025/1/context.jsonld"], "@id": "urn:uuid:policy-until-2099",
              "@type": "Set", "permission": [{"action": "use", "constraint": [
                  {"leftOperand": "dateTime", "operator": "lteq", "rightOperand": "2099"}]}]}
    editor = page.get_by_label("Policy (ODRL JSON-LD)")
    editor.fill(json.dumps(policy, indent=2))
    validation = page.locator("#validation")
    expect(validation).to_contain_text("invalid")
    expect(validation).to_contain_text("/permission/0/constraint/0/rightOperand")
    expect(validation).to_contain_text("Fix:")
    shot(page, "policy-editor-error")
    page.get_by_role("button", name="Create policy").click()  # the API refuses it too, with the pointer
    expect(page.get_by_role("alert").first).to_contain_text("rightOperand")
    policy["permission"][0]["constraint"][0]["rightOperand"] = "2099-12-31T23:59:59Z"
    editor.fill(json.dumps(policy, indent=2))
    expect(page.locator(".error-slot .error")).to_have_count(0)  # the refusal was about the old text: it goes
    expect(validation).to_contain_text("valid")
    expect(validation).not_to_contain_text("invalid")
    page.get_by_label("Requesting participant").fill(consumer.did)
    page.get_by_role("button", name="Evaluate").click()
    expect(page.locator("#evaluation")).to_contain_text("permit")
    page.get_by_label("Evaluate at").fill("2100-01-01T00:00")
    page.get_by_role("button", name="Evaluate").click()
    expect(page.locator("#evaluation")).to_contain_text("deny")
    expect(page.locator("#evaluation")).to_contain_text("Compliance report")
    shot(page, "policy-editor")
    page.get_by_role("button", name="Create policy").click()
    expect(page.get_by_role("cell", name="until-2099", exact=True)).to_be_visible()
    shot(page, "policies")

    nav(page, "Contract definitions")
    page.get_by_role("link", name="Offer assets").click()
    page.get_by_label("Contract definition id").fill("weather-offer")
    page.get_by_label("Access policy").select_option("until-2099")
    page.get_by_label("Contract policy").select_option("until-2099")
    page.get_by_label(re.compile("^weather")).check()
    shot(page, "contract-definition-form")
    page.get_by_role("button", name="Create contract definition").click()
    expect(page.get_by_role("cell", name="weather-offer", exact=True)).to_be_visible()
    shot(page, "contract-definitions")
    nav(page, "Overview")
    expect(page.locator('[data-count="assets"]')).to_have_text("1")
    shot(page, "overview-provider")

    # -- consumer: catalog, negotiation to FINALIZED, transfer, download ---------------------------------------
    cpage = open_console(chromium, consumer)
    sign_in(cpage, consumer)
    nav(cpage, "Remote catalog")
    cpage.get_by_label("Counter-party address").fill(provider.dsp_url)
    cpage.get_by_role("button", name="Browse catalog").click()
    expect(cpage.get_by_role("heading", name="Weather readings")).to_be_visible()
    expect(cpage.locator(".offer").first).to_contain_text("may use if dateTime lteq 2099-12-31T23:59:59Z")
    cpage.get_by_role("button", name="Preview obligations").click()
    expect(cpage.get_by_text("Our own check of what we declare: permit")).to_be_visible()
    shot(cpage, "catalog")
    cpage.get_by_role("button", name=re.compile("^Negotiate offer")).click()
    expect(cpage.get_by_role("heading", name=re.compile("^Negotiation "))).to_be_visible()
    expect(cpage.locator("#negotiation-state")).to_contain_text("FINALIZED")
    expect(cpage.locator(".timeline")).to_contain_text("ContractAgreementMessage")
    expect(cpage.locator(".timeline")).to_contain_text("ContractNegotiationEventMessage")
    shot(cpage, "negotiation")
    cpage.get_by_role("link", name="Start a transfer").click()
    shot(cpage, "transfer-form")
    cpage.get_by_role("button", name="Start transfer").click()
    expect(cpage.locator("#transfer-state")).to_contain_text("STARTED")
    expect(cpage.locator(".timeline")).to_contain_text("TransferStartMessage")
    shot(cpage, "transfer")
    with cpage.expect_download() as download_info:
        cpage.get_by_role("link", name="Download data").click()
    download = download_info.value
    assert download.suggested_filename == "weather"
    with open(download.path(), "rb") as got:
        assert got.read() == CONTENT
    cpage.get_by_role("button", name="Suspend").click()
    expect(cpage.locator("#transfer-state")).to_contain_text("SUSPENDED")
    cpage.get_by_role("button", name="Resume").click()
    expect(cpage.locator("#transfer-state")).to_contain_text("STARTED")
    cpage.get_by_role("button", name="Terminate").click()
    expect(cpage.locator("#transfer-state")).to_contain_text("TERMINATED")
    nav(cpage, "Agreements & transfers")
    expect(cpage.get_by_role("cell", name="TERMINATED", exact=True)).to_be_visible()
    shot(cpage, "agreements-transfers")
    nav(cpage, "Negotiations")
    expect(cpage.get_by_role("cell", name="FINALIZED", exact=True)).to_be_visible()
    shot(cpage, "negotiations")
    nav(cpage, "Audit log")
    expect(cpage.get_by_role("cell", name="TransferTerminationMessage", exact=True)).to_be_visible()
    shot(cpage, "audit")
    nav(cpage, "Compute jobs")
    expect(cpage.get_by_text("No compute jobs yet.")).to_be_visible()

    # -- the provider sees the same negotiation from its side ---------------------------------------------------
    nav(page, "Negotiations")
    page.get_by_label("Our role").select_option("PROVIDER")
    expect(page.get_by_role("cell", name="FINALIZED", exact=True)).to_be_visible()

    # -- and cannot delete the asset while an agreement refers to it: the API's reason shows ---------------------
    page.on("dialog", lambda dialog: dialog.accept())
    page.goto(provider.url + "/console#/assets")
    page.get_by_role("button", name="Delete weather").click()
    expect(page.get_by_role("alert")).to_contain_text("weather")
    shot(page, "asset-delete-refused")


def test_phone_width_is_usable_by_keyboard(chromium: Browser,
                                           connectors: tuple[ConnectorProcess, ConnectorProcess]) -> None:
    provider, _ = connectors
    page = open_console(chromium, provider, width=390, height=844)
    # The overview's version check is held back, so the user reaches the menu while the page still loads:
    # the page's own focus move must not take her place away when it finishes.
    held: list[Route] = []
    page.route("**/.well-known/dspace-version", lambda route: held.append(route))
    page.get_by_label("Management API key").focus()
    page.keyboard.type(provider.api_key)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    menu = page.get_by_role("button", name="Menu")
    expect(page.get_by_role("navigation")).to_be_hidden()
    menu.focus()
    for _ in range(TIMEOUT // 20):
        if held:
            break
        page.wait_for_timeout(20)
    assert held, "the overview never asked for the DSP version"
    held[0].continue_()
    expect(page.locator('.page[aria-busy="false"]')).to_have_count(1)
    expect(menu).to_be_focused()
    shot(page, "overview-phone")
    page.keyboard.press("Enter")
    expect(page.get_by_role("navigation")).to_be_visible()
    assert menu.get_attribute("aria-expanded") == "true"
    shot(page, "menu-phone")
    nav(page, "Negotiations")
    expect(page.get_by_role("heading", name="Negotiations")).to_be_focused()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    shot(page, "negotiations-phone")


def test_provider_approves_and_declines_pending_requests_and_sees_them_move(
        chromium: Browser, connectors: tuple[ConnectorProcess, ConnectorProcess]) -> None:
    provider, consumer = connectors
    publish(provider, asset_id="sensor", auto_agree=False)
    client = consumer.management()
    requests = [negotiate(client, provider, "sensor"), negotiate(client, provider, "sensor")]
    for negotiation_id in requests:
        client.wait_state(f"/v3/contractnegotiations/{negotiation_id}", {"REQUESTED"})

    page = open_console(chromium, provider)
    sign_in(page, provider)
    nav(page, "Negotiations")
    page.get_by_label("State").select_option("pending")
    expect(page.get_by_text("awaiting decision")).to_have_count(2)
    shot(page, "negotiations-pending")
    page.locator("tbody a").first.click()
    expect(page.locator("#negotiation-state")).to_contain_text("awaiting decision")
    shot(page, "negotiation-pending")
    page.get_by_role("button", name="Approve").click()
    expect(page.locator("#negotiation-state")).to_contain_text("FINALIZED")  # followed live, by polling
    nav(page, "Negotiations")
    page.get_by_label("State").select_option("pending")
    expect(page.get_by_text("awaiting decision")).to_have_count(1)
    page.locator("tbody a").first.click()
    page.get_by_label("Reason (sent to the counter-party)").fill("not for this purpose")
    page.get_by_role("button", name="Decline").click()
    expect(page.locator("#negotiation-state")).to_contain_text("TERMINATED")
    expect(page.locator(".timeline")).to_contain_text("ContractNegotiationTerminationMessage")

    finals = {n: client.wait_state(f"/v3/contractnegotiations/{n}", {"FINALIZED", "TERMINATED"}) for n in requests}
    assert sorted(str(f["state"]) for f in finals.values()) == ["FINALIZED", "TERMINATED"]
    [declined] = [f for f in finals.values() if f["state"] == "TERMINATED"]
    assert "not for this purpose" in str(declined.get("errorDetail")), declined  # the consumer got the reason
    client.close()


def test_template_policy_edits_and_deletes(chromium: Browser,
                                           connectors: tuple[ConnectorProcess, ConnectorProcess]) -> None:
    provider, _ = connectors
    management = provider.management()  # a contract definition needs an asset: this test brings its own
    management.ok(management.post("/v3/assets", {"@id": "template-test-data", "properties": {},
                                                 "dataAddress": {"type": "File",
                                                                 "path": str(provider.file_root / "template.csv")}}))
    page = open_console(chromium, provider)
    page.on("dialog", lambda dialog: dialog.accept())
    sign_in(page, provider)
    page.goto(provider.url + "/console#/policies/new")
    page.get_by_text("Start from a template").click()
    page.get_by_label("Template").select_option("purpose")
    page.get_by_label("purposes").fill('["dpv:AcademicResearch"]')
    page.get_by_role("button", name="Fill the editor").click()
    expect(page.get_by_label("Policy (ODRL JSON-LD)")).to_have_value(re.compile("isAnyOf"))
    expect(page.locator("#validation")).to_contain_text("no issues")
    page.get_by_label("Policy definition id").fill("research-only")
    page.get_by_label("Declared purpose").fill("https://w3id.org/dpv#AcademicResearch")
    page.get_by_role("button", name="Evaluate").click()
    expect(page.locator("#evaluation")).to_contain_text("permit")
    page.get_by_label("Declared purpose").fill("https://w3id.org/dpv#Marketing")
    page.get_by_role("button", name="Evaluate").click()
    expect(page.locator("#evaluation")).to_contain_text("deny")
    shot(page, "policy-template")
    page.get_by_role("button", name="Create policy").click()
    expect(page.get_by_role("cell", name="research-only", exact=True)).to_be_visible()

    page.goto(provider.url + "/console#/contractdefinitions/new")
    page.get_by_label("Contract definition id").fill("research-offer")
    page.get_by_label("Access policy").select_option("research-only")
    page.get_by_label("Contract policy").select_option("research-only")
    page.get_by_role("button", name="Create contract definition").click()
    expect(page.get_by_role("cell", name="every asset", exact=True)).to_be_visible()
    page.get_by_role("link", name="Edit research-offer").click()
    page.get_by_label("Agree automatically when a request matches the offer").uncheck()
    page.get_by_role("button", name="Save contract definition").click()
    row = page.get_by_role("row").filter(has_text="research-offer")
    expect(row).to_contain_text("operator approves")
    row.get_by_role("button", name="Delete research-offer").click()
    expect(page.get_by_role("cell", name="research-offer", exact=True)).to_have_count(0)

    page.goto(provider.url + "/console#/policies")
    page.get_by_role("button", name="Delete research-only").click()
    expect(page.get_by_role("cell", name="research-only", exact=True)).to_have_count(0)

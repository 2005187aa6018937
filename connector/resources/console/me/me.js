// A data subject's own page: sign in with her personal token (an HttpOnly session cookie, CSRF on changes), then
// her consents (grant, revoke), the jobs that ran on her record, her result and each job's receipt. It calls only
// /api/subject/v1; the cookie opens nothing of the management API.

import { actionButton, badge, empty, errorSlot, field, h, table, toast } from "../ui.js";
import { receiptView } from "../receipt.js";

const $ = (id) => document.getElementById(id);
const BASE = "/api/subject/v1";
const session = { csrfHeader: "X-CSRF-Token", csrfToken: "", subject: "" };
const DEFAULT_PURPOSE = "https://w3id.org/dpv#ServicePersonalisation";

async function call(url, method = "GET", body) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET") headers[session.csrfHeader] = session.csrfToken;
  let response;
  try {
    response = await fetch(url, { method, headers, credentials: "same-origin", body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (exc) {
    throw new Error(`the data provider could not be reached (${exc.message})`);
  }
  if (!response.ok) {
    let message = `the data provider answered ${response.status}`;
    try { message = (await response.json()).message || message; } catch { /* keep the status */ }
    if (response.status === 401 && url.startsWith(BASE)) showSignIn(message);
    const error = new Error(message);
    error.status = response.status;
    throw error;
  }
  return response.status === 204 ? null : response.json();
}

function stamp(iso) { return iso ? new Date(iso).toLocaleString(undefined, { dateStyle: "short", timeStyle: "medium" }) : ""; }

function showSignIn(message) {
  $("signin").hidden = false;
  $("page").replaceChildren();
  $("sign-out").hidden = true;
  $("who").textContent = "";
  $("signin-error").hidden = !message;
  $("signin-error").textContent = message || "";
  $("personal-token").focus();
}

function consentsSection() {
  const list = h("div", { id: "my-consents" });
  const errors = errorSlot();
  const provider = field("AI provider (DID)", { placeholder: "did:web:ai.example", autocomplete: "off" });
  const purpose = field("Purpose", { value: DEFAULT_PURPOSE });
  const change = (action, row) => actionButton(action === "grant" ? "Grant" : "Revoke", async () => {
    await call(`${BASE}/consents`, "POST", { provider: row.provider, purpose: row.purpose, action });
    toast(action === "grant" ? "Consent granted" : "Consent revoked");
    await load();
  }, errors, { class: action === "grant" ? "small" : "small danger",
               "aria-label": `${action === "grant" ? "Grant" : "Revoke"} consent for ${row.provider}` });
  const load = async () => {
    const answer = await call(`${BASE}/consents`);
    list.replaceChildren(answer.consents.length ? table([
      ["AI provider", (c) => c.provider, "mono"], ["Purpose", (c) => c.purpose, "mono"],
      ["Status", (c) => (c.granted ? badge("granted", "ok") : badge("not granted", "bad"))],
      ["Since", (c) => stamp(c.since)], ["Expires", (c) => stamp(c.expiresAt)],
      ["", (c) => change(c.granted ? "revoke" : "grant", c)],
    ], answer.consents) : empty("You have not decided about any AI provider yet."));
  };
  const grant = actionButton("Grant consent", async () => {
    await call(`${BASE}/consents`, "POST", { provider: provider.input.value.trim(), purpose: purpose.input.value.trim(), action: "grant" });
    toast("Consent granted");
    await load();
  }, errors);
  const el = h("section", { "aria-labelledby": "consents-h" }, h("h2", { id: "consents-h" }, "Your consents"),
    h("p", { class: "hint" }, "A job runs on your record only while you consent; revoking keeps it out of every job that starts running afterwards."),
    errors.el, list,
    h("details", {}, h("summary", {}, "Consent to another AI provider"),
      h("form", { class: "stack", onsubmit: (e) => e.preventDefault() }, provider.el, purpose.el, h("div", { class: "actions" }, grant))));
  return { el, load };
}

async function jobDetail(job, into) {
  const parts = [h("h3", { id: "my-job-h" }, `Job ${job["@id"]}`)];
  if (job.hasResult) {
    const mine = await call(`${BASE}/jobs/${encodeURIComponent(job["@id"])}/result`);
    parts.push(h("h4", {}, "Your result"), table([["Output", ([k]) => k], ["Value", ([, v]) => JSON.stringify(v), "mono"]],
      Object.entries(mine.result && typeof mine.result === "object" ? mine.result : { result: mine.result })));
  } else {
    parts.push(h("p", { class: "notice" }, "No result of yours was kept for this job."));
  }
  try {
    const [envelope, check] = await Promise.all([call(`${BASE}/jobs/${encodeURIComponent(job["@id"])}/receipt`),
      call(`${BASE}/jobs/${encodeURIComponent(job["@id"])}/receipt/verification`)]);
    parts.push(h("h4", {}, "Receipt"), receiptView(check, envelope));
  } catch (error) {
    parts.push(h("p", { class: "hint" }, error.message));
  }
  into.replaceChildren(h("div", { class: "panel", id: "my-job" }, parts));
  into.querySelector("h3").scrollIntoView();
}

function jobsSection() {
  const list = h("div", { id: "my-jobs" });
  const shown = h("div", {});
  const errors = errorSlot();
  const load = async () => {
    const jobs = await call(`${BASE}/jobs`);
    list.replaceChildren(jobs.length ? table([
      ["Job", (j) => j["@id"], "mono"], ["State", (j) => badge(j.state, j.state === "RELEASED" ? "ok" : "info")],
      ["Algorithm", (j) => j.algorithm?.ref || ""], ["For", (j) => j.counterPartyId || "", "mono"],
      ["Records", (j) => j.recordCount ?? ""], ["When", (j) => stamp(j.createdAt)],
      ["Your result", (j) => (j.hasResult ? "yes" : "none")],
      ["", (j) => actionButton("Open", () => jobDetail(j, shown), errors, { class: "small", "aria-label": `Open job ${j["@id"]}` })],
    ], jobs) : empty("No job has run on your record."));
  };
  const el = h("section", { "aria-labelledby": "jobs-h" }, h("h2", { id: "jobs-h" }, "Jobs that ran on your record"),
    errors.el, list, shown);
  return { el, load };
}

async function enter(answer) {
  Object.assign(session, answer);
  $("signin").hidden = true;
  $("sign-out").hidden = false;
  $("who").textContent = `${answer.subject} at ${answer.participantId}`;
  const consents = consentsSection();
  const jobs = jobsSection();
  const page = h("div", { class: "page" }, h("h1", { tabindex: "-1" }, `Your data, ${answer.subject}`), consents.el, jobs.el);
  $("page").replaceChildren(page);
  document.title = "My data · Sovra";
  await Promise.all([consents.load(), jobs.load()]);
  page.querySelector("h1").focus();
}

async function start() {
  $("signin-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const input = $("personal-token");
    try {
      const answer = await call("/console/me/session", "POST", { token: input.value.trim() });
      input.value = "";
      await enter(answer);
    } catch (error) {
      showSignIn(error.message);
    }
  });
  $("sign-out").addEventListener("click", async () => {
    try { await call("/console/me/session", "DELETE"); } finally { showSignIn("Signed out."); }
  });
  const response = await fetch("/console/me/session", { credentials: "same-origin" });
  if (response.ok) await enter(await response.json()); else showSignIn("");
}

start();

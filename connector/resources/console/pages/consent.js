// Consent (data provider): the registry of data subjects' consents (current status or every event), grant and
// revoke on a subject's behalf, and her personal token for /console/me (issued once, revocable).

import { api, enc } from "../api.js";
import { actionButton, badge, empty, errorSlot, field, h, pageHeader, select, table, toast } from "../ui.js";
import { notEnabled, stamp } from "./computejobs.js";

const DEFAULT_PURPOSE = "https://w3id.org/dpv#ServicePersonalisation";

function statusBadge(row) {
  if (row.granted) return badge("granted", "ok");
  return row.expiresAt && new Date(row.expiresAt) <= new Date() ? badge("expired", "warn") : badge("revoked", "bad");
}

function changeForm(reload) {
  const subject = field("Subject", { required: true, autocomplete: "off", placeholder: "S-1024" });
  const provider = field("AI provider (DID)", { required: true, autocomplete: "off", placeholder: "did:web:ai.example" });
  const purpose = field("Purpose", { required: true, value: DEFAULT_PURPOSE });
  const expires = field("Expires (optional, grants only)", { type: "datetime-local" });
  const errors = errorSlot();
  const send = (action) => actionButton(action === "grant" ? "Grant consent" : "Revoke consent", async () => {
    const body = { subject: subject.input.value.trim(), provider: provider.input.value.trim(), purpose: purpose.input.value.trim() };
    if (action === "grant" && expires.input.value) body.expiresAt = new Date(expires.input.value).toISOString();
    await api.post(`/v3/consents/${action}`, body);
    toast(`${body.subject}: consent ${action === "grant" ? "granted" : "revoked"}`);
    await reload();
  }, errors, action === "grant" ? {} : { class: "danger" });
  const form = h("form", { class: "stack panel", "aria-label": "Grant or revoke consent", onsubmit: (e) => e.preventDefault() },
    h("h2", {}, "Grant or revoke on a subject's behalf"), h("div", { class: "row" }, subject.el, provider.el),
    purpose.el, expires.el, errors.el, h("div", { class: "actions" }, send("grant"), send("revoke")));
  return { form, fill: (row) => { subject.input.value = row.subject; provider.input.value = row.provider; purpose.input.value = row.purpose; } };
}

function tokenPanel() {
  const subject = field("Token for subject", { autocomplete: "off", placeholder: "S-1024" }, "Her personal token opens /console/me and /api/subject/v1, nothing else.");
  const errors = errorSlot();
  const shown = h("div", {});
  const issue = actionButton("Issue personal token", async () => {
    const answer = await api.post(`/v3/subjects/${enc(subject.input.value.trim())}/tokens`);
    const value = h("input", { id: "issued-token", readonly: true, value: answer.token, class: "mono", "aria-label": `Personal token of ${answer.subject}` });
    const copy = actionButton("Copy", async () => {
      await navigator.clipboard.writeText(answer.token);
      toast("Token copied");
    }, errors, { class: "secondary" });
    shown.replaceChildren(h("div", { class: "notice", role: "status" },
      h("p", {}, h("strong", {}, `Token for ${answer.subject}, shown this once. `),
        "Hand it to her; only its hash is kept. She signs in at ", h("a", { href: "/console/me" }, "/console/me"), "."),
      h("div", { class: "copyline" }, value, copy)));
  }, errors);
  const revoke = actionButton("Revoke her tokens", async () => {
    const answer = await api.del(`/v3/subjects/${enc(subject.input.value.trim())}/tokens`);
    shown.replaceChildren();
    toast(`${answer.subject}: ${answer.revoked} token(s) revoked`);
  }, errors, { class: "danger" });
  return h("section", { class: "stack panel", "aria-labelledby": "tokens-h" }, h("h2", { id: "tokens-h" }, "Personal tokens"),
    subject.el, errors.el, h("div", { class: "actions" }, issue, revoke), shown);
}

export default {
  path: "consent",
  title: "Consent",
  group: "Compute-to-data",
  requires: "consent",
  async render({ root, features }) {
    if (!features.consent) return notEnabled(root, "Consent");
    const subject = field("Show subject", { placeholder: "any" });
    const provider = field("Show provider", { placeholder: "any" });
    const purpose = field("Show purpose", { placeholder: "any" });
    const view = field("View", {}, "", select([["status", "current status"], ["events", "every event"]], "status"));
    const errors = errorSlot();
    const rows = h("div", { id: "consents" });
    let change;
    const load = async () => {
      const query = new URLSearchParams({ view: view.input.value, limit: "500" });
      for (const [name, f] of [["subject", subject], ["provider", provider], ["purpose", purpose]]) {
        if (f.input.value.trim()) query.set(name, f.input.value.trim());
      }
      try {
        const list = await api.get(`/v3/consents?${query}`);
        errors.clear();
        if (!list.length) {
          rows.replaceChildren(empty("No consent recorded for these filters. Subjects grant with their personal token, or you record it below."));
        } else if (view.input.value === "events") {
          rows.replaceChildren(table([
            ["When", (e) => stamp(e.at)], ["Subject", (e) => e.subject], ["Provider", (e) => e.provider, "mono"],
            ["Purpose", (e) => e.purpose, "mono"], ["Action", (e) => badge(e.action, e.action === "grant" ? "ok" : "bad")],
            ["Expires", (e) => stamp(e.expiresAt)], ["By", (e) => e.source],
          ], list));
        } else {
          rows.replaceChildren(table([
            ["Subject", (c) => c.subject], ["Provider", (c) => c.provider, "mono"], ["Purpose", (c) => c.purpose, "mono"],
            ["Status", statusBadge], ["Since", (c) => stamp(c.since)], ["Expires", (c) => stamp(c.expiresAt)],
            ["By", (c) => c.source],
            ["", (c) => h("button", { type: "button", class: "small secondary", "aria-label": `Change ${c.subject}`,
                                      onclick: () => { change.fill(c); change.form.scrollIntoView(); } }, "Change")],
          ], list));
        }
      } catch (error) {
        errors.show(error);
      }
    };
    change = changeForm(load);
    view.input.addEventListener("change", load);
    root.append(...pageHeader("Consent"),
      h("p", { class: "hint" }, "Which data subjects let which AI provider compute on their record, for which purpose. ",
        "A job runs only on records whose subject consents when it starts running."),
      h("form", { class: "row", "aria-label": "Filter consents", onsubmit: (e) => { e.preventDefault(); load(); } },
        subject.el, provider.el, purpose.el, view.el, h("div", { class: "actions" }, h("button", { type: "submit" }, "Filter"))),
      errors.el, rows, h("div", { class: "split" }, change.form, tokenPanel()));
    await load();
    return undefined;
  },
};

// Policies: definitions list; an ODRL editor with live validation (POST /v3/policies/validate), templates, and a
// "try a request" panel (POST /v3/policies/evaluate) that shows the decision and the compliance report.

import { api, enc } from "../api.js";
import { jsonEditor, syntaxError } from "../editor.js";
import { actionButton, badge, empty, errorSlot, field, h, pageHeader, pretty, select, table, toast, when } from "../ui.js";

const SCOPES = ["catalog", "negotiation", "transfer", "monitor", "compute"];

function uuid() {
  return globalThis.crypto?.randomUUID ? crypto.randomUUID()
    : "10000000-1000-4000-8000-100000000000".replace(/[018]/g, (c) => (c ^ (Math.random() * 16) >> (c / 4)).toString(16));
}

function starter() {
  return { "@context": ["https://w3id.org/dspace/2025/1/context.jsonld"], "@id": `urn:uuid:${uuid()}`, "@type": "Set",
           permission: [{ action: "use" }] };
}

function actionsOf(policy) {
  const rules = [...(policy?.permission || []), ...(policy?.prohibition || [])];
  return rules.map((r) => (typeof r.action === "string" ? r.action : r.action?.["@id"] || "?")).join(", ");
}

function issueItem(issue, editor) {
  const where = h("button", { type: "button", class: "small secondary", "aria-label": `Show ${issue.pointer} in the editor`,
                              onclick: () => editor.reveal(issue.pointer) }, issue.pointer || "/");
  return h("li", { class: issue.severity }, h("strong", {}, `${issue.severity}: `), where, " ", issue.problem,
    issue.fix ? h("div", { class: "hint" }, `Fix: ${issue.fix}`) : null);
}

function templatesPanel(editor, errors) {
  const holder = h("div", { class: "stack" });
  const params = h("div", { class: "stack" });
  let templates = [];
  const chooser = field("Template", {}, "", select([["", "choose a template…"]], ""));
  const fill = actionButton("Fill the editor", async () => {
    const chosen = templates.find((t) => t.name === chooser.input.value);
    if (!chosen) return;
    const values = {};
    for (const input of params.querySelectorAll("input")) {
      const raw = input.value.trim();
      try { values[input.name] = raw.startsWith("[") || raw.startsWith("{") ? JSON.parse(raw) : raw; }
      catch { values[input.name] = raw; }
      if (/^-?\d+(\.\d+)?$/.test(raw)) values[input.name] = Number(raw);
    }
    const answer = await api.post(`/v3/policies/templates/${enc(chosen.name)}`, values);
    editor.value = JSON.stringify(answer.policy, null, 2);
    toast(`Template ${chosen.name} filled`);
  }, errors, { class: "secondary" });
  chooser.input.addEventListener("change", () => {
    const chosen = templates.find((t) => t.name === chooser.input.value);
    params.replaceChildren(...(chosen ? [h("p", { class: "hint" }, chosen.description),
      ...Object.entries(chosen.parameters).map(([name, what]) =>
        field(name, { name, value: name === "id" ? `urn:uuid:${uuid()}` : "" }, what).el)] : []));
  });
  api.get("/v3/policies/templates").then((list) => {
    templates = list;
    chooser.input.replaceChildren(h("option", { value: "" }, "choose a template…"),
      ...list.map((t) => h("option", { value: t.name }, t.name)));
  }, (error) => errors.show(error));
  holder.append(chooser.el, params, h("div", { class: "actions" }, fill));
  return h("details", { class: "panel" }, h("summary", {}, "Start from a template"), holder);
}

/** The compliance report as a table: each rule, whether it applies, and each constraint with its outcome. */
function report(value) {
  const rows = [];
  for (const rule of value?.rules || []) {
    const action = String(rule.action || "").replace("http://www.w3.org/ns/odrl/2/", "");
    rows.push({ what: `${rule.kind} ${rule.pointer} (${action || "any action"})`, state: rule.activation || "",
                reason: rule.applicable === false ? "does not apply to this request" : "" });
    for (const c of rule.constraints || []) {
      rows.push({ what: `  constraint ${c.pointer}`, state: c.state, reason: c.reason || "" });
    }
    for (const d of rule.duties || []) rows.push({ what: `  duty ${d.pointer || ""}`, state: d.state || "", reason: d.reason || "" });
  }
  if (!rows.length) return h("p", { class: "hint" }, "No rule applied.");
  return table([["Rule or constraint", (r) => r.what, "mono"], ["Outcome", (r) => badge(r.state, /^(satisfied|active|fulfilled)$/.test(r.state) ? "ok" : "bad")],
                ["Why", (r) => r.reason]], rows);
}

function tryPanel(editor) {
  const scope = field("Scope", {}, "Which decision point to imitate.", select(SCOPES.map((s) => [s, s]), "negotiation"));
  const action = field("Action", { placeholder: "use (default: each rule's own)" });
  const assignee = field("Requesting participant", { placeholder: "did:web:consumer.example.org", value: "" });
  const purpose = field("Declared purpose", { placeholder: "https://w3id.org/dpv#AcademicResearch" });
  const claims = field("Claims (JSON)", {}, 'e.g. {"membership": "active", "country": "DE"}',
                       h("textarea", { rows: 2, class: "mono" }, "{}"));
  const now = field("Evaluate at", { type: "datetime-local" }, "Leave empty for now.");
  const result = h("div", { id: "evaluation", "aria-live": "polite" });
  const errors = errorSlot();
  const run = actionButton("Evaluate", async () => {
    let policy;
    try { policy = JSON.parse(editor.value); } catch (error) { throw new Error(`The policy is not JSON: ${syntaxError(editor.value, error)}`); }
    let claimValues;
    try { claimValues = JSON.parse(claims.input.value || "{}"); } catch { throw new Error("Claims must be a JSON object"); }
    const request = { context: purpose.input.value ? { purpose: purpose.input.value } : {} };
    if (action.input.value) request.action = action.input.value;
    if (assignee.input.value) request.assignee = assignee.input.value;
    const state = { claims: claimValues };
    if (now.input.value) state.now = new Date(now.input.value).toISOString();
    const answer = await api.post("/v3/policies/evaluate", { policy, scope: scope.input.value, request, state });
    result.replaceChildren(h("div", {},
      h("p", {}, "Decision: ", badge(answer.decision)),
      answer.reasons.length ? h("ul", {}, answer.reasons.map((r) => h("li", {}, r))) : null,
      answer.obligations.length ? [h("h3", {}, "Obligations"), pretty(answer.obligations)] : null,
      h("h3", {}, "Compliance report"), report(answer.report),
      h("details", {}, h("summary", {}, "The whole report (JSON)"), pretty(answer.report))));
  }, errors);
  return h("section", { class: "panel", "aria-labelledby": "try-h" }, h("h2", { id: "try-h" }, "Try a request"),
    h("div", { class: "stack" }, scope.el, action.el, assignee.el, purpose.el, claims.el, now.el),
    h("div", { class: "actions" }, run), errors.el, result);
}

async function editorPage({ root, navigate }, definition) {
  const editing = Boolean(definition);
  const status = h("div", { id: "validation", "aria-live": "polite" });
  const errors = errorSlot();
  let timer = null;
  let latest = 0;
  const validate = async (text) => {
    const mine = ++latest;
    let policy;
    try { policy = JSON.parse(text); } catch (error) {
      status.replaceChildren(h("p", {}, badge("not JSON", "bad"), " ", syntaxError(text, error)));
      return;
    }
    try {
      const answer = await api.post("/v3/policies/validate", policy);
      if (mine !== latest) return;
      const counts = ["error", "warning", "info"].map((s) => [s, answer.issues.filter((i) => i.severity === s).length]);
      status.replaceChildren(h("div", {},
        h("p", {}, answer.valid ? badge("valid", "ok") : badge("invalid", "bad"), " ",
          counts.filter(([, n]) => n).map(([s, n]) => `${n} ${s}${n > 1 ? "s" : ""}`).join(", ") || "no issues"),
        answer.issues.length ? h("ul", { class: "issues" }, answer.issues.map((issue) => issueItem(issue, editor))) : null));
    } catch (error) {
      status.replaceChildren(h("div", { class: "error", role: "alert" }, error.message));
    }
  };
  // A refused save's banner is about the text as it was; once the text changes it is stale, so it goes.
  const editor = jsonEditor({ id: "policy-json", label: "Policy (ODRL JSON-LD)",
    onChange: (text) => { errors.clear(); clearTimeout(timer); timer = setTimeout(() => validate(text), 300); } });
  const id = field("Policy definition id", { required: true, value: definition?.["@id"] || "", readonly: editing,
                                             autocomplete: "off" }, "Contract definitions refer to this id.");
  const save = async (event) => {
    event.preventDefault();
    errors.clear();
    let policy;
    try { policy = JSON.parse(editor.value); } catch (error) { errors.show(new Error(`The policy is not JSON: ${syntaxError(editor.value, error)}`)); return; }
    const body = { "@id": id.input.value.trim(), policy };
    try {
      if (editing) await api.put(`/v3/policydefinitions/${enc(body["@id"])}`, body);
      else await api.post("/v3/policydefinitions", body);
      toast(`Policy ${body["@id"]} saved`);
      navigate("#/policies");
    } catch (error) {
      errors.show(error);
    }
  };
  const form = h("form", { class: "stack", onsubmit: save, "aria-label": "Policy definition" }, id.el,
    h("div", {}, h("label", { for: "policy-json" }, "Policy (ODRL JSON-LD)",
      h("span", { class: "hint" }, " checked as you type")), editor.el),
    status, errors.el,
    h("div", { class: "actions" }, h("button", { type: "submit" }, editing ? "Save policy" : "Create policy"),
      h("a", { class: "button secondary", href: "#/policies" }, "Cancel")));
  root.append(...pageHeader(editing ? `Edit policy ${definition["@id"]}` : "New policy"),
    h("div", { class: "split" }, h("div", {}, templatesPanel(editor, errors), form), tryPanel(editor)));
  editor.value = JSON.stringify(definition ? definition.policy : starter(), null, 2);
}

export default {
  path: "policies",
  title: "Policies",
  group: "Provide",
  async render(ctx) {
    const { root, params } = ctx;
    if (params[0] === "new") return editorPage(ctx, null);
    if (params[0] === "edit" && params[1]) return editorPage(ctx, await api.get(`/v3/policydefinitions/${enc(params[1])}`));
    const errors = errorSlot();
    const list = h("div", {});
    const load = async () => {
      const rows = await api.list("policydefinitions");
      list.replaceChildren(rows.length ? table([
        ["Id", (p) => p["@id"], "mono"],
        ["Actions", (p) => actionsOf(p.policy)],
        ["Constraints", (p) => String((p.policy?.permission || []).reduce((n, r) => n + (r.constraint || []).length, 0))],
        ["Created", (p) => when(p.createdAt)],
        ["", (p) => h("div", { class: "actions" },
          h("a", { class: "button small secondary", href: `#/policies/edit/${enc(p["@id"])}`, "aria-label": `Edit ${p["@id"]}` }, "Edit"),
          actionButton("Delete", async () => {
            if (!window.confirm(`Delete policy ${p["@id"]}?`)) return;
            await api.del(`/v3/policydefinitions/${enc(p["@id"])}`);
            toast(`Policy ${p["@id"]} deleted`);
            await load();
          }, errors, { class: "small danger", "aria-label": `Delete ${p["@id"]}` }))],
      ], rows) : empty("No policies yet. A policy says who may use an asset, for what, and until when.",
                       h("a", { class: "button", href: "#/policies/new" }, "Write the first policy")));
    };
    root.append(...pageHeader("Policies", h("a", { class: "button", href: "#/policies/new" }, "New policy")), errors.el, list);
    await load();
    return undefined;
  },
};

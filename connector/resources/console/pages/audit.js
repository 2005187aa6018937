// Audit log: the compute-to-data audit (jobs, consents, tokens; its hash chain checked on every load) and every DSP
// message in or out, newest first, filterable.

import { api } from "../api.js";
import { badge, empty, errorSlot, field, h, pageHeader, select, table, when } from "../ui.js";

export function processLink(event) {
  if (event.processType === "negotiation") return h("a", { href: `#/negotiations/${encodeURIComponent(event.processId)}` }, event.processId);
  if (event.processType === "transfer") return h("a", { href: `#/transfers/${encodeURIComponent(event.processId)}` }, event.processId);
  return event.processId;
}

export function eventColumns() {
  return [
    ["When", (e) => when(e.at)],
    ["Process", (e) => [e.processType ? `${e.processType} ` : "", processLink(e)], "mono"],
    ["Direction", (e) => (e.direction === "in" ? "← in" : "→ out")],
    ["Message", (e) => e.message],
    ["State after", (e) => e.state],
    ["Detail", (e) => e.detail || ""],
  ];
}

const PAGE_SIZE = 50;

function chainStatus(chain) {
  if (chain.ok) {
    return h("p", { class: "notice", id: "audit-chain" }, badge("chain intact", "ok"),
      ` ${chain.length} events, each hashing the one before; head ${chain.head}`);
  }
  return h("div", { class: "error", role: "alert", id: "audit-chain" }, badge("chain broken", "bad"),
    ` at event ${chain.brokenAt}: ${chain.problem}`);
}

async function computeAudit(section) {
  const job = field("Job id", { placeholder: "any" });
  const subject = field("Subject", { placeholder: "any" });
  const kind = field("Kind", { placeholder: "any, e.g. consent.grant" });
  const errors = errorSlot();
  const list = h("div", {});
  const status = h("div", {});
  const load = async () => {
    const query = new URLSearchParams({ limit: "1000" });
    if (job.input.value.trim()) query.set("jobId", job.input.value.trim());
    if (subject.input.value.trim()) query.set("subjectId", subject.input.value.trim());
    if (kind.input.value.trim()) query.set("kind", kind.input.value.trim());
    try {
      const log = await api.get(`/v3/audit?${query}`);
      errors.clear();
      status.replaceChildren(chainStatus(log.chain));
      const events = log.events.slice().reverse().slice(0, 200);
      list.replaceChildren(events.length ? table([
        ["#", (e) => e["@id"]],
        ["When", (e) => when(Date.parse(e.at))],
        ["Kind", (e) => e.kind],
        ["Job", (e) => (e.jobId ? h("a", { href: `#/compute/${encodeURIComponent(e.jobId)}` }, e.jobId) : ""), "mono"],
        ["Subject", (e) => e.subjectId || ""],
        ["Actor", (e) => e.actor],
        ["Detail", (e) => (e.detail && Object.keys(e.detail).length ? JSON.stringify(e.detail) : ""), "mono"],
      ], events, "Newest first") : empty("No compute-to-data event matches. Jobs, consents and tokens are audited here."));
    } catch (error) {
      errors.show(error);
    }
  };
  section.append(h("h2", { id: "c2d-audit-h" }, "Compute jobs, consents, tokens"), status,
    h("form", { class: "row", "aria-label": "Filter the compute audit", onsubmit: (e) => { e.preventDefault(); load(); } },
      job.el, subject.el, kind.el, h("div", { class: "actions" }, h("button", { type: "submit" }, "Filter"))),
    errors.el, list);
  await load();
}

async function dspAudit(section) {
  const type = field("Process", {}, "", select([["", "all"], ["negotiation", "negotiations"], ["transfer", "transfers"]], ""));
  const direction = field("Direction", {}, "", select([["", "both"], ["in", "received"], ["out", "sent"]], ""));
  const process = field("Process id", { placeholder: "any" });
  const list = h("div", {});
  const errors = errorSlot();
  let offset = 0;
  const older = h("button", { type: "button", class: "secondary" }, "Older");
  const newer = h("button", { type: "button", class: "secondary" }, "Newer");

  const load = async () => {
    errors.clear();
    const filters = [];
    if (type.input.value) filters.push({ operandLeft: "processType", operator: "=", operandRight: type.input.value });
    if (direction.input.value) filters.push({ operandLeft: "direction", operator: "=", operandRight: direction.input.value });
    if (process.input.value.trim()) filters.push({ operandLeft: "processId", operator: "=", operandRight: process.input.value.trim() });
    try {
      const events = await api.post("/v3/events/request", { offset, limit: PAGE_SIZE, sortField: "seq",
                                                            sortOrder: "DESC", filterExpression: filters });
      list.replaceChildren(events.length ? table(eventColumns(), events)
        : empty(offset ? "No older events." : "No DSP messages match. Negotiations and transfers appear here as they run."));
      older.disabled = events.length < PAGE_SIZE;
      newer.disabled = offset === 0;
    } catch (error) {
      errors.show(error);
    }
  };
  const form = h("form", { class: "row", onsubmit: (e) => { e.preventDefault(); offset = 0; load(); } },
    type.el, direction.el, process.el, h("div", { class: "actions" }, h("button", { type: "submit" }, "Filter")));
  older.addEventListener("click", () => { offset += PAGE_SIZE; load(); });
  newer.addEventListener("click", () => { offset = Math.max(0, offset - PAGE_SIZE); load(); });
  section.append(h("h2", { id: "dsp-audit-h" }, "DSP messages"),
    h("p", { class: "hint" }, "Every DSP message this connector sent or received, with the state it led to."),
    form, errors.el, list, h("div", { class: "actions" }, newer, older));
  await load();
}

export default {
  path: "audit",
  title: "Audit log",
  group: "Operate",
  async render({ root, features }) {
    const c2d = h("section", { "aria-labelledby": "c2d-audit-h" });
    const dsp = h("section", { "aria-labelledby": "dsp-audit-h" });
    root.append(...pageHeader("Audit log"), c2d, dsp);
    if (features.consent) await computeAudit(c2d);
    await dspAudit(dsp);
  },
};

// Audit log: every DSP message in or out, newest first, filterable. The compute-to-data audit (jobs, receipts,
// released and refused outputs) joins here when that extension lands.

import { api } from "../api.js";
import { empty, errorSlot, field, h, pageHeader, select, table, when } from "../ui.js";

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

export default {
  path: "audit",
  title: "Audit log",
  group: "Operate",
  async render({ root }) {
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
    root.append(...pageHeader("Audit log"),
      h("p", { class: "hint" }, "Every DSP message this connector sent or received, with the state it led to. ",
        "Compute-to-data jobs will be audited here once that extension is enabled."),
      form, errors.el, list, h("div", { class: "actions" }, newer, older));
    await load();
  },
};

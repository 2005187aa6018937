// Negotiations: list and filter; one negotiation with its DSP message timeline, and the operator's moves
// (approve or decline a pending request, accept an offer, terminate). Pages poll while a negotiation runs.

import { api, enc } from "../api.js";
import { describeOffer } from "../policytext.js";
import { timeline } from "../timeline.js";
import { FINAL_STATES, actionButton, badge, empty, errorSlot, field, h, pageHeader, poll, select, table, toast, when } from "../ui.js";

const STATES = ["REQUESTED", "OFFERED", "ACCEPTED", "AGREED", "VERIFIED", "FINALIZED", "TERMINATED"];

function stateCell(n) {
  return [badge(n.state), n.pending ? [" ", badge("awaiting decision", "warn")] : null];
}

async function detail({ root, onLeave }, id) {
  const facts = h("div", {});
  const moves = h("div", { class: "actions" });
  const events = h("div", {});
  const errors = errorSlot();
  const reason = field("Reason (sent to the counter-party)", { placeholder: "optional" });
  root.append(...pageHeader(`Negotiation ${id}`), errors.el, facts, moves,
    h("section", { "aria-labelledby": "timeline-h" }, h("h2", { id: "timeline-h" }, "DSP messages"), events));
  let shown = "";
  const refresh = async () => {
    const n = await api.get(`/v3/contractnegotiations/${enc(id)}`);
    const key = `${n.state}/${n.pending}`;
    facts.replaceChildren(h("div", { class: "panel" }, h("dl", { class: "facts" },
      h("dt", {}, "State"), h("dd", { id: "negotiation-state" }, stateCell(n)),
      h("dt", {}, "Our role"), h("dd", {}, n.type),
      h("dt", {}, "Counter-party"), h("dd", {}, n.counterPartyId),
      h("dt", {}, "Address"), h("dd", {}, n.counterPartyAddress),
      h("dt", {}, "Asset"), h("dd", {}, n.assetId || ""),
      h("dt", {}, "Offer"), h("dd", {}, describeOffer(n.offer || {}).join("; ")),
      n.contractAgreementId ? [h("dt", {}, "Agreement"), h("dd", {}, n.contractAgreementId)] : null,
      n.errorDetail ? [h("dt", {}, "Reason"), h("dd", {}, n.errorDetail)] : null,
      h("dt", {}, "Last change"), h("dd", {}, when(n.stateTimestamp)))));
    if (key === shown) {
      events.replaceChildren(await timeline("contractnegotiations", id));
      return !FINAL_STATES.has(n.state);
    }
    shown = key;
    const buttons = [];
    const command = (text, path, body, attrs) => actionButton(text, async () => {
      await api.post(`/v3/contractnegotiations/${enc(id)}/${path}`, body?.());
      toast(`${text}: sent`);
      await refresh();
    }, errors, attrs);
    const withReason = () => (reason.input.value ? { reason: reason.input.value } : {});
    if (n.pending && n.type === "PROVIDER") buttons.push(command("Approve", "approve"));
    if (n.pending) buttons.push(command("Decline", "decline", withReason, { class: "danger" }));
    if (n.type === "CONSUMER" && n.state === "OFFERED") buttons.push(command("Accept offer", "accept"));
    if (!FINAL_STATES.has(n.state)) buttons.push(command("Terminate", "terminate", withReason, { class: "danger" }));
    if (n.state === "FINALIZED" && n.type === "CONSUMER" && n.contractAgreementId) {
      buttons.push(h("a", { class: "button", href: `#/transfers/new/${enc(n.contractAgreementId)}` }, "Start a transfer"));
    }
    moves.replaceChildren(...buttons, buttons.some((b) => b.textContent === "Terminate" || b.textContent === "Decline") ? reason.el : "");
    events.replaceChildren(await timeline("contractnegotiations", id));
    return !FINAL_STATES.has(n.state);
  };
  if (await refresh()) onLeave(poll(refresh, 1000));
}

export default {
  path: "negotiations",
  title: "Negotiations",
  group: "Processes",
  async render(ctx) {
    const { root, params, onLeave } = ctx;
    if (params[0]) return detail(ctx, params[0]);
    const state = field("State", {}, "", select([["", "any"], ["pending", "awaiting a decision"], ...STATES.map((s) => [s, s])], ""));
    const role = field("Our role", {}, "", select([["", "either"], ["CONSUMER", "consumer"], ["PROVIDER", "provider"]], ""));
    const party = field("Counter-party contains", { placeholder: "did:web:…" });
    const list = h("div", {});
    const errors = errorSlot();
    const load = async () => {
      const filters = [];
      if (state.input.value === "pending") filters.push({ operandLeft: "pending", operator: "=", operandRight: true });
      else if (state.input.value) filters.push({ operandLeft: "state", operator: "=", operandRight: state.input.value });
      if (role.input.value) filters.push({ operandLeft: "type", operator: "=", operandRight: role.input.value });
      if (party.input.value.trim()) filters.push({ operandLeft: "counterPartyId", operator: "like", operandRight: `%${party.input.value.trim()}%` });
      let rows;
      try { rows = await api.list("contractnegotiations", { filterExpression: filters }); errors.clear(); }
      catch (error) { errors.show(error); return true; }
      list.replaceChildren(rows.length ? table([
        ["Id", (n) => h("a", { href: `#/negotiations/${enc(n["@id"])}` }, n["@id"]), "mono"],
        ["Role", (n) => n.type],
        ["State", stateCell],
        ["Asset", (n) => n.assetId || ""],
        ["Counter-party", (n) => n.counterPartyId, "mono"],
        ["Last change", (n) => when(n.stateTimestamp)],
      ], rows) : empty(filters.length ? "No negotiation matches these filters."
        : "No negotiations yet. Browse a provider's catalog to start one.",
        filters.length ? null : h("a", { class: "button", href: "#/catalog" }, "Browse a catalog")));
      return true;
    };
    const form = h("form", { class: "row", "aria-label": "Filter negotiations", onsubmit: (e) => { e.preventDefault(); load(); } },
      state.el, role.el, party.el, h("div", { class: "actions" }, h("button", { type: "submit" }, "Filter")));
    for (const input of [state.input, role.input]) input.addEventListener("change", load);
    root.append(...pageHeader("Negotiations"), form, errors.el, list);
    await load();
    onLeave(poll(load, 3000));
    return undefined;
  },
};

// Agreements and transfers: the agreements we hold, transfers under them (start, suspend, resume, complete,
// terminate), each transfer's DSP messages, and the download of a pull transfer's data through its EDR.

import { api, currentSession, enc } from "../api.js";
import { describeOffer } from "../policytext.js";
import { timeline } from "../timeline.js";
import { FINAL_STATES, actionButton, badge, empty, errorSlot, field, h, pageHeader, poll, select, table, toast, when } from "../ui.js";

const PROTOCOL = "dataspace-protocol-http:2025-1";
const TYPES = [["HttpData-PULL", "Pull (download through an EDR)"], ["HttpData-PUSH", "Push (the provider sends to a URL)"]];

async function newTransfer({ root, navigate }, agreementId) {
  const agreement = await api.get(`/v3/contractagreements/${enc(agreementId)}`);
  const type = field("Transfer type", {}, "", select(TYPES, "HttpData-PULL"));
  const baseUrl = field("Push destination URL", { type: "url", placeholder: "https://sink.example.org/in" }, "Where the provider sends the data.");
  const auth = field("Authorization header for the destination (optional)", { autocomplete: "off" });
  const show = () => { baseUrl.el.hidden = auth.el.hidden = type.input.value !== "HttpData-PUSH"; };
  type.input.addEventListener("change", show);
  show();
  const errors = errorSlot();
  const submit = async (event) => {
    event.preventDefault();
    errors.clear();
    const body = { contractId: agreementId, transferType: type.input.value, protocol: PROTOCOL };
    if (type.input.value === "HttpData-PUSH") {
      body.dataDestination = { type: "HttpData", baseUrl: baseUrl.input.value };
      if (auth.input.value) Object.assign(body.dataDestination, { authKey: "Authorization", authCode: auth.input.value });
    }
    try {
      const answer = await api.post("/v3/transferprocesses", body);
      navigate(`#/transfers/${enc(answer["@id"])}`);
    } catch (error) {
      errors.show(error);
    }
  };
  root.append(...pageHeader("New transfer"),
    h("div", { class: "panel" }, h("dl", { class: "facts" },
      h("dt", {}, "Agreement"), h("dd", {}, agreement["@id"]),
      h("dt", {}, "Asset"), h("dd", {}, agreement.assetId),
      h("dt", {}, "Provider"), h("dd", {}, agreement.providerId),
      h("dt", {}, "Terms"), h("dd", {}, describeOffer(agreement.policy).join("; ")))),
    h("form", { class: "stack panel", onsubmit: submit, "aria-label": "New transfer" }, type.el, baseUrl.el, auth.el, errors.el,
      h("div", { class: "actions" }, h("button", { type: "submit" }, "Start transfer"),
        h("a", { class: "button secondary", href: "#/transfers" }, "Cancel"))));
}

async function detail({ root, onLeave }, id) {
  const facts = h("div", {});
  const moves = h("div", { class: "actions" });
  const events = h("div", {});
  const errors = errorSlot();
  const reason = field("Reason (sent to the counter-party)", { placeholder: "optional" });
  root.append(...pageHeader(`Transfer ${id}`), errors.el, facts, moves,
    h("section", { "aria-labelledby": "timeline-h" }, h("h2", { id: "timeline-h" }, "DSP messages"), events));
  let last = "";
  const refresh = async () => {
    const t = await api.get(`/v3/transferprocesses/${enc(id)}`);
    facts.replaceChildren(h("div", { class: "panel" }, h("dl", { class: "facts" },
      h("dt", {}, "State"), h("dd", { id: "transfer-state" }, badge(t.state)),
      h("dt", {}, "Our role"), h("dd", {}, t.type),
      h("dt", {}, "Type"), h("dd", {}, t.transferType),
      h("dt", {}, "Asset"), h("dd", {}, t.assetId || ""),
      h("dt", {}, "Agreement"), h("dd", {}, t.contractId),
      h("dt", {}, "Counter-party"), h("dd", {}, t.counterPartyId),
      t.errorDetail ? [h("dt", {}, "Reason"), h("dd", {}, t.errorDetail)] : null,
      h("dt", {}, "Last change"), h("dd", {}, when(t.stateTimestamp)))));
    const key = `${t.state}`;
    if (key !== last) {
      last = key;
      const command = (text, path, body, attrs) => actionButton(text, async () => {
        await api.post(`/v3/transferprocesses/${enc(id)}/${path}`, body?.());
        toast(`${text}: sent`);
        await refresh();
      }, errors, attrs);
      const withReason = () => (reason.input.value ? { reason: reason.input.value } : {});
      const buttons = [];
      if (t.state === "STARTED" && t.type === "CONSUMER" && t.transferType.endsWith("PULL")) {
        buttons.push(h("a", { class: "button", id: "download", href: `/api/management/v3/edrs/${enc(id)}/data`, download: "" }, "Download data"));
      }
      if (t.state === "STARTED") buttons.push(command("Suspend", "suspend", withReason, { class: "secondary" }));
      if (t.state === "SUSPENDED") buttons.push(command("Resume", "resume"));
      if (t.state === "STARTED") buttons.push(command("Complete", "complete", undefined, { class: "secondary" }));
      if (!FINAL_STATES.has(t.state)) buttons.push(command("Terminate", "terminate", withReason, { class: "danger" }), reason.el);
      moves.replaceChildren(...buttons);
    }
    events.replaceChildren(await timeline("transferprocesses", id));
    return !FINAL_STATES.has(t.state);
  };
  if (await refresh()) onLeave(poll(refresh, 1000));
}

export default {
  path: "transfers",
  title: "Agreements & transfers",
  group: "Processes",
  async render(ctx) {
    const { root, params, onLeave } = ctx;
    if (params[0] === "new" && params[1]) return newTransfer(ctx, params[1]);
    if (params[0]) return detail(ctx, params[0]);
    const me = currentSession().participantId;
    const agreements = h("div", {});
    const transfers = h("div", {});
    const errors = errorSlot();
    root.append(...pageHeader("Agreements & transfers"), errors.el,
      h("section", { "aria-labelledby": "agreements-h" }, h("h2", { id: "agreements-h" }, "Agreements"), agreements),
      h("section", { "aria-labelledby": "transfers-h" }, h("h2", { id: "transfers-h" }, "Transfers"), transfers));
    const rows = await api.list("contractagreements", { sortField: "contractSigningDate" });
    agreements.replaceChildren(rows.length ? table([
      ["Id", (a) => a["@id"], "mono"],
      ["Asset", (a) => a.assetId],
      ["We are", (a) => (a.consumerId === me ? "consumer" : "provider")],
      ["Counter-party", (a) => (a.consumerId === me ? a.providerId : a.consumerId), "mono"],
      ["Signed", (a) => when(a.contractSigningDate * 1000)],
      ["", (a) => (a.consumerId === me
        ? h("a", { class: "button small", href: `#/transfers/new/${enc(a["@id"])}`, "aria-label": `Transfer under ${a["@id"]}` }, "Transfer")
        : "")],
    ], rows) : empty("No agreements yet. Negotiate an offer from a provider's catalog first.",
                     h("a", { class: "button", href: "#/catalog" }, "Browse a catalog")));
    const load = async () => {
      try {
        const list = await api.list("transferprocesses");
        errors.clear();
        transfers.replaceChildren(list.length ? table([
          ["Id", (t) => h("a", { href: `#/transfers/${enc(t["@id"])}` }, t["@id"]), "mono"],
          ["Role", (t) => t.type],
          ["State", (t) => badge(t.state)],
          ["Asset", (t) => t.assetId || ""],
          ["Type", (t) => t.transferType],
          ["Last change", (t) => when(t.stateTimestamp)],
        ], list) : empty("No transfers yet. Start one from an agreement above."));
      } catch (error) {
        errors.show(error);
      }
    };
    await load();
    onLeave(poll(load, 3000));
    return undefined;
  },
};

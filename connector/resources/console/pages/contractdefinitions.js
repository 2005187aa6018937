// Contract definitions: which assets are offered under which access and contract policy, and whether requests are
// agreed automatically or wait for an operator's approval.

import { api, enc } from "../api.js";
import { actionButton, badge, empty, errorSlot, field, h, pageHeader, select, table, toast, when } from "../ui.js";

const ID_PROPERTY = "https://w3id.org/edc/v0.0.1/ns/id";

function selectedAssets(selector) {
  if (!selector?.length) return "every asset";
  return selector.map((c) => {
    const left = String(c.operandLeft).replace(ID_PROPERTY, "id");
    const right = Array.isArray(c.operandRight) ? c.operandRight.join(", ") : c.operandRight;
    return `${left} ${c.operator} ${right}`;
  }).join(" and ");
}

/** The asset ids a selector names by id (what the form can show as ticks); null when it selects otherwise. */
function pickedIds(selector) {
  if (!selector?.length) return [];
  if (selector.length !== 1 || selector[0].operandLeft !== ID_PROPERTY) return null;
  const right = selector[0].operandRight;
  return Array.isArray(right) ? right : [right];
}

async function definitionForm({ root, navigate }, definition) {
  const editing = Boolean(definition);
  const [policies, assets] = await Promise.all([api.list("policydefinitions"), api.list("assets")]);
  root.append(...pageHeader(editing ? `Edit contract definition ${definition["@id"]}` : "New contract definition"));
  if (!policies.length || !assets.length) {
    root.append(empty("A contract definition needs at least one policy and one asset.",
      h("div", { class: "actions" }, h("a", { class: "button", href: "#/assets/new" }, "New asset"),
        h("a", { class: "button", href: "#/policies/new" }, "New policy"))));
    return;
  }
  const options = policies.map((p) => [p["@id"], p["@id"]]);
  const id = field("Contract definition id", { required: true, autocomplete: "off", value: definition?.["@id"] || "",
                                               readonly: editing });
  const access = field("Access policy", {}, "Who may see the offer in the catalog.",
                       select(options, definition?.accessPolicyId || options[0][0]));
  const contract = field("Contract policy", {}, "What the agreement allows and requires.",
                         select(options, definition?.contractPolicyId || options[0][0]));
  const ticked = pickedIds(definition?.assetsSelector) || [];
  const keepSelector = editing && pickedIds(definition.assetsSelector) === null;
  const picks = assets.map((a) => {
    const box = h("input", { type: "checkbox", value: a["@id"], id: `asset-${a["@id"]}`, checked: ticked.includes(a["@id"]),
                             disabled: keepSelector });
    return { box, el: h("label", { class: "check", for: box.id }, box, a["@id"], a.properties?.name ? ` (${a.properties.name})` : "") };
  });
  const auto = h("input", { type: "checkbox", id: "auto-agree", checked: definition ? definition.autoAgree : true });
  const errors = errorSlot();
  const submit = async (event) => {
    event.preventDefault();
    errors.clear();
    const chosen = picks.filter((p) => p.box.checked).map((p) => p.box.value);
    const assetsSelector = keepSelector ? definition.assetsSelector.map(({ operandLeft, operator, operandRight }) => ({ operandLeft, operator, operandRight }))
      : chosen.length === 0 ? []
        : [{ operandLeft: ID_PROPERTY, operator: chosen.length === 1 ? "=" : "in", operandRight: chosen.length === 1 ? chosen[0] : chosen }];
    const body = { "@id": id.input.value.trim(), accessPolicyId: access.input.value, contractPolicyId: contract.input.value,
                   assetsSelector, autoAgree: auto.checked };
    try {
      if (editing) await api.put("/v3/contractdefinitions", body); else await api.post("/v3/contractdefinitions", body);
      toast(`Contract definition ${body["@id"]} ${editing ? "saved" : "created"}`);
      navigate("#/contractdefinitions");
    } catch (error) {
      errors.show(error);
    }
  };
  root.append(h("form", { class: "stack panel", onsubmit: submit, "aria-label": editing ? "Edit contract definition" : "New contract definition" },
    id.el, access.el, contract.el,
    h("fieldset", {}, h("legend", {}, "Assets offered"), h("p", { class: "hint" }, keepSelector
      ? `This definition selects assets by ${selectedAssets(definition.assetsSelector)}; the selector is kept as it is.`
      : "None ticked offers every asset."),
      h("div", { class: "stack" }, picks.map((p) => p.el))),
    h("label", { class: "check", for: "auto-agree" }, auto, "Agree automatically when a request matches the offer"),
    errors.el,
    h("div", { class: "actions" }, h("button", { type: "submit" }, editing ? "Save contract definition" : "Create contract definition"),
      h("a", { class: "button secondary", href: "#/contractdefinitions" }, "Cancel"))));
}

export default {
  path: "contractdefinitions",
  title: "Contract definitions",
  group: "Provide",
  async render(ctx) {
    const { root, params } = ctx;
    if (params[0] === "new") return definitionForm(ctx, null);
    if (params[0] === "edit" && params[1]) return definitionForm(ctx, await api.get(`/v3/contractdefinitions/${enc(params[1])}`));
    const errors = errorSlot();
    const list = h("div", {});
    const load = async () => {
      const rows = await api.list("contractdefinitions");
      list.replaceChildren(rows.length ? table([
        ["Id", (d) => d["@id"], "mono"],
        ["Assets", (d) => selectedAssets(d.assetsSelector)],
        ["Access policy", (d) => h("a", { href: `#/policies/edit/${enc(d.accessPolicyId)}` }, d.accessPolicyId)],
        ["Contract policy", (d) => h("a", { href: `#/policies/edit/${enc(d.contractPolicyId)}` }, d.contractPolicyId)],
        ["Agreement", (d) => (d.autoAgree ? badge("automatic", "ok") : badge("operator approves", "warn"))],
        ["Created", (d) => when(d.createdAt)],
        ["", (d) => h("div", { class: "actions" },
          h("a", { class: "button small secondary", href: `#/contractdefinitions/edit/${enc(d["@id"])}`, "aria-label": `Edit ${d["@id"]}` }, "Edit"),
          actionButton("Delete", async () => {
            if (!window.confirm(`Delete contract definition ${d["@id"]}?`)) return;
            await api.del(`/v3/contractdefinitions/${enc(d["@id"])}`);
            toast(`Contract definition ${d["@id"]} deleted`);
            await load();
          }, errors, { class: "small danger", "aria-label": `Delete ${d["@id"]}` }))],
      ], rows) : empty("Nothing is offered yet. A contract definition puts assets in your catalog under a policy.",
                       h("a", { class: "button", href: "#/contractdefinitions/new" }, "Offer assets")));
    };
    root.append(...pageHeader("Contract definitions",
      h("a", { class: "button", href: "#/contractdefinitions/new" }, "New contract definition")), errors.el, list);
    await load();
    return undefined;
  },
};

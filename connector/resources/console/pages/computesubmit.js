// Submit a compute job (we are the requester): an agreement we consume, the provider's address, our signed
// algorithm's asset id, and the job's parameters. The API's reason shows as is when it refuses.

import { api, currentSession, enc } from "../api.js";
import { empty, errorSlot, field, h, pageHeader, select } from "../ui.js";

const C2D = "https://w3id.org/sovra/c2d/v1#";

function isAlgorithm(asset) {
  return Object.keys(asset.properties || {}).some((k) => k === `${C2D}algorithmDigest` || k.endsWith("algorithmDigest"));
}

function parameters(epsilon, minSize, purpose, extra) {
  let more = {};
  if (extra.trim()) {
    try { more = JSON.parse(extra); } catch { throw new Error("Other parameters must be a JSON object, e.g. {\"k\": 1}"); }
    if (!more || typeof more !== "object" || Array.isArray(more)) throw new Error("Other parameters must be a JSON object");
  }
  const chosen = { ...more };
  if (epsilon.trim()) chosen.dpEpsilon = Number(epsilon);
  if (minSize.trim()) chosen.minAggregationSize = Number(minSize);
  if (purpose.trim()) chosen.purpose = purpose.trim();
  return chosen;
}

export async function newJob({ root, navigate, params }) {
  const me = currentSession().participantId;
  const [agreements, assets] = await Promise.all([api.list("contractagreements", { sortField: "contractSigningDate" }),
                                                  api.list("assets")]);
  const ours = agreements.filter((a) => a.consumerId === me);
  root.append(...pageHeader("Submit a compute job"));
  if (!ours.length) {
    root.append(empty("We hold no agreement as a consumer yet. Negotiate a provider's compute offer first.",
                      h("a", { class: "button", href: "#/catalog" }, "Browse a catalog")));
    return;
  }
  const chosen = params[1] && ours.some((a) => a["@id"] === params[1]) ? params[1] : ours[0]["@id"];
  const agreement = field("Agreement", {}, "An agreement we consume: the provider's dataset and its compute terms.",
    select(ours.map((a) => [a["@id"], `${a.assetId} · ${a.providerId} · ${a["@id"]}`]), chosen));
  const address = field("Counter-party address", { type: "url", placeholder: "https://provider.example/api/dsp/2025-1" },
                        "The provider's DSP address; left empty, the negotiation's address is used.");
  const algorithms = assets.filter(isAlgorithm).map((a) => a["@id"]);
  const algorithm = field("Algorithm asset id", { required: true, list: "algorithm-ids", autocomplete: "off",
                                                  value: algorithms[0] || "" },
                          "Our signed algorithm, published under Algorithms; the provider pulls and verifies it.");
  const list = h("datalist", { id: "algorithm-ids" }, algorithms.map((id) => h("option", { value: id })));
  const epsilon = field("dpEpsilon", { inputmode: "decimal", value: "0.5" }, "Differential-privacy epsilon this job may spend.");
  const minSize = field("minAggregationSize", { inputmode: "numeric", value: "2" }, "Smallest group an aggregate may describe.");
  const purpose = field("Purpose", { placeholder: "https://w3id.org/dpv#ServicePersonalisation" },
                        "Left empty, the purpose declared at negotiation applies; consent is checked against it.");
  const extra = field("Other parameters (JSON object)", { placeholder: "{}" });
  const errors = errorSlot();
  const submit = async (event) => {
    event.preventDefault();
    errors.clear();
    try {
      const body = { agreementId: agreement.input.value, algorithm: algorithm.input.value.trim(),
                     parameters: parameters(epsilon.input.value, minSize.input.value, purpose.input.value, extra.input.value) };
      if (address.input.value.trim()) body.counterPartyAddress = address.input.value.trim();
      const job = await api.post("/v3/computejobs", body);
      navigate(`#/compute/${enc(job["@id"])}`);
    } catch (error) {
      errors.show(error);
    }
  };
  root.append(h("form", { class: "stack panel", onsubmit: submit, "aria-label": "Submit a compute job" },
    agreement.el, address.el, algorithm.el, list,
    h("fieldset", {}, h("legend", {}, "Parameters"), h("div", { class: "row" }, epsilon.el, minSize.el), purpose.el, extra.el),
    errors.el, h("div", { class: "actions" }, h("button", { type: "submit" }, "Submit job"),
      h("a", { class: "button secondary", href: "#/compute" }, "Cancel"))));
}

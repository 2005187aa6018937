// Remote catalog browser: ask a counter-party for its catalog over DSP, read its datasets and offers, preview
// what an offer obliges us to, and start a negotiation from it.

import { api } from "../api.js";
import { describeOffer } from "../policytext.js";
import { actionButton, empty, errorSlot, field, h, pageHeader, pretty } from "../ui.js";

const PROTOCOL = "dataspace-protocol-http:2025-1";
const EDC = "https://w3id.org/edc/v0.0.1/ns/";

function prop(dataset, name) { return dataset[EDC + name] ?? dataset[name] ?? dataset[`edc:${name}`]; }

function offerPanel(offer, dataset, catalog, address, purpose, navigate) {
  const errors = errorSlot();
  const preview = h("div", { "aria-live": "polite" });
  const body = () => {
    const request = { counterPartyAddress: address, counterPartyId: catalog.participantId, protocol: PROTOCOL,
                      policy: { ...offer, target: dataset["@id"], assigner: catalog.participantId } };
    if (purpose.value.trim()) request.requestContext = { purpose: purpose.value.trim() };
    return request;
  };
  return h("li", { class: "panel offer" },
    h("div", { class: "mono hint" }, `Offer ${offer["@id"]}`),
    h("ul", {}, describeOffer(offer).map((line) => h("li", {}, line))),
    h("div", { class: "actions" },
      actionButton("Preview obligations", async () => {
        const answer = await api.post("/v3/contractnegotiations/preview", body());
        preview.replaceChildren(h("p", {}, answer.summary),
          h("p", {}, `Our own check of what we declare: ${answer.localCheck.decision}`,
            answer.localCheck.reasons.length ? ` (${answer.localCheck.reasons.join("; ")})` : ""),
          h("details", {}, h("summary", {}, "Details"), pretty({ constraints: answer.constraints, duties: answer.duties,
                                                                   prohibitions: answer.prohibitions })));
      }, errors, { class: "secondary" }),
      actionButton("Negotiate", async () => {
        const answer = await api.post("/v3/contractnegotiations", body());
        navigate(`#/negotiations/${encodeURIComponent(answer["@id"])}`);
      }, errors, { "aria-label": `Negotiate offer ${offer["@id"]} for ${dataset["@id"]}` })),
    errors.el, preview);
}

export default {
  path: "catalog",
  title: "Remote catalog",
  group: "Consume",
  async render({ root, params, navigate }) {
    const address = field("Counter-party address", { required: true, type: "url", value: params[0] || "",
                                                    placeholder: "https://provider.example.org/api/dsp/2025-1" },
                          "The provider's DSP endpoint, or its public URL.");
    const participant = field("Counter-party id (optional)", { value: params[1] || "", placeholder: "did:web:provider.example.org" },
                              "Derived from the address when empty.");
    const purpose = field("Purpose we declare (optional)", { placeholder: "https://w3id.org/dpv#AcademicResearch" },
                          "Sent with the request; the provider's policy may test it.");
    const errors = errorSlot();
    const result = h("div", { "aria-live": "polite" });
    const fetchCatalog = async () => {
      errors.clear();
      result.replaceChildren(h("p", { class: "hint" }, "Asking the counter-party…"));
      const body = { counterPartyAddress: address.input.value.trim(), protocol: PROTOCOL };
      if (participant.input.value.trim()) body.counterPartyId = participant.input.value.trim();
      try {
        const catalog = await api.post("/v3/catalog/request", body);
        const datasets = catalog.dataset || [];
        result.replaceChildren(
          h("p", {}, `Catalog of `, h("code", {}, catalog.participantId || "an unnamed participant"), `: ${datasets.length} dataset${datasets.length === 1 ? "" : "s"}.`),
          datasets.length ? h("ul", { class: "stack datasets" }, datasets.map((d) => h("li", { class: "panel", dataset: { dataset: d["@id"] } },
            h("h2", {}, prop(d, "name") || d["@id"]),
            h("p", { class: "mono hint" }, d["@id"]),
            prop(d, "description") ? h("p", {}, prop(d, "description")) : null,
            h("p", { class: "hint" }, `Formats: ${(d.distribution || []).map((x) => x.format).join(", ") || "none stated"}`),
            h("h3", {}, `Offers (${(d.hasPolicy || []).length})`),
            h("ul", { class: "stack" }, (d.hasPolicy || []).map((offer) => offerPanel(offer, d, catalog, body.counterPartyAddress,
                                                                                          purpose.input, navigate))))))
            : empty("The counter-party offers us nothing (its access policies may hide datasets from us)."));
      } catch (error) {
        result.replaceChildren();
        errors.show(error);
      }
    };
    const form = h("form", { class: "stack panel", "aria-label": "Counter-party",
                             onsubmit: (e) => { e.preventDefault(); fetchCatalog(); } },
      address.el, participant.el, purpose.el, h("div", { class: "actions" }, h("button", { type: "submit" }, "Browse catalog")));
    root.append(...pageHeader("Remote catalog"), form, errors.el, result);
    if (params[0]) await fetchCatalog();
  },
};

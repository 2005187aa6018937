// Algorithms (we are the requester): publish a bundle signed with `sovra algorithm sign` as an asset, and offer
// it to data providers under a policy that permits use (they pull it) and prohibits distribution.

import { ApiError, api } from "../api.js";
import { empty, errorSlot, field, h, pageHeader, table, toast } from "../ui.js";
import { notEnabled } from "./computejobs.js";

const C2D = "https://w3id.org/sovra/c2d/v1#";
const OFFER_POLICY = "algorithm-use";

function digestOf(asset) {
  const props = asset.properties || {};
  const key = Object.keys(props).find((k) => k === `${C2D}algorithmDigest` || k.endsWith("algorithmDigest"));
  return key ? props[key] : null;
}

/** The algorithm's offer: policy `algorithm-use` (created once) and a contract definition for this asset. */
async function offer(assetId) {
  try {
    await api.post("/v3/policydefinitions", { "@id": OFFER_POLICY, policy: {
      "@type": "Set", permission: [{ action: "use" }], prohibition: [{ action: "distribute" }] } });
  } catch (error) {
    if (!(error instanceof ApiError) || error.status !== 409) throw error;
  }
  await api.post("/v3/contractdefinitions", { "@id": `${assetId}-offer`, accessPolicyId: OFFER_POLICY,
    contractPolicyId: OFFER_POLICY, assetsSelector: [{ operandLeft: "https://w3id.org/edc/v0.0.1/ns/id",
                                                       operator: "=", operandRight: assetId }] });
}

export default {
  path: "algorithms",
  title: "Algorithms",
  group: "Compute-to-data",
  requires: "compute",
  async render({ root, features }) {
    if (!features.compute) return notEnabled(root, "Algorithms");
    const id = field("Algorithm asset id", { required: true, autocomplete: "off", placeholder: "career-match" },
                     "Also its dataset id in our catalog; jobs name it.");
    const archive = field("Bundle path", { required: true, placeholder: "/srv/sovra/files/career-match-1.0.0.tar.gz" },
                          "The .tar.gz written by `sovra algorithm sign`, under the connector's --file-root.");
    const envelope = field("Envelope path", { required: true, placeholder: "/srv/sovra/files/career-match-1.0.0.dsse.json" },
                           "Its signed DSSE envelope, under --file-root.");
    const offerIt = h("input", { type: "checkbox", id: "offer-algorithm", checked: true });
    const errors = errorSlot();
    const published = h("div", {});
    const rows = h("div", {});
    const load = async () => {
      const assets = (await api.list("assets")).filter((a) => digestOf(a));
      rows.replaceChildren(assets.length ? table([
        ["Asset", (a) => a["@id"], "mono"],
        ["Name", (a) => a.properties?.name || ""],
        ["Digest", (a) => digestOf(a), "mono"],
      ], assets) : empty("No signed algorithm published yet."));
    };
    const submit = async (event) => {
      event.preventDefault();
      errors.clear();
      published.replaceChildren();
      try {
        const answer = await api.post("/v3/algorithms", { "@id": id.input.value.trim(), archive: archive.input.value.trim(),
                                                          envelope: envelope.input.value.trim() });
        if (offerIt.checked) await offer(answer["@id"]);
        published.replaceChildren(h("div", { class: "notice", role: "status", id: "algorithm-published" },
          `Verified and published ${answer["@id"]}: ${answer.digest}, signed by ${answer.signer}`,
          offerIt.checked ? `; offered as ${answer["@id"]}-offer (use, no distribution).` : "."));
        toast(`Algorithm ${answer["@id"]} published`);
        await load();
      } catch (error) {
        errors.show(error);
      }
    };
    root.append(...pageHeader("Algorithms"),
      h("p", { class: "hint" }, "A data provider runs only algorithms we signed: it pulls the bundle from our catalog ",
        "and checks the signature, signer and digest before anything runs."),
      h("form", { class: "stack panel", onsubmit: submit, "aria-label": "Publish a signed algorithm" },
        id.el, archive.el, envelope.el,
        h("label", { class: "check", for: "offer-algorithm" }, offerIt,
          "Offer it in our catalog (policy algorithm-use: use, no distribution)"),
        errors.el, h("div", { class: "actions" }, h("button", { type: "submit" }, "Publish algorithm"))),
      published, h("section", { "aria-labelledby": "algorithms-h" }, h("h2", { id: "algorithms-h" }, "Published algorithms"), rows));
    await load();
    return undefined;
  },
};

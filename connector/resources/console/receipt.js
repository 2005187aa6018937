// A run receipt as a reader sees it: whether it verifies (signer, signature, outputs) and its decoded statement.
// Shared by the operator's job page and the data subject's page; `check` is a .../receipt/verification answer.

import { badge, h, table } from "./ui.js";

function short(digest) { return digest ? String(digest) : ""; }

function limitsText(limits) {
  return Object.entries(limits || {}).map(([k, v]) => `${k} ${v}`).join(", ");
}

/** The verification verdict, then the statement's facts, then the envelope itself (collapsed). */
export function receiptView(check, envelope, { verifiedBy = "" } = {}) {
  const verdict = check.verified
    ? h("p", { class: "notice", id: "receipt-verdict" }, badge("verified", "ok"), " ",
      `Signed by ${check.signer} (key ${check.keyId}); the signature checks against that DID's document`,
      check.outputsMatch ? ", and the released outputs are exactly the ones it signs." : ".",
      verifiedBy ? h("span", { class: "hint" }, ` ${verifiedBy}`) : null)
    : h("p", { class: "error", role: "alert", id: "receipt-verdict" }, badge("not verified", "bad"), " ", check.problem || "");
  const predicate = check.statement?.predicate || {};
  const algorithm = predicate.algorithm || {};
  const input = predicate.input || {};
  const sandbox = predicate.sandbox || {};
  const facts = check.statement ? h("dl", { class: "facts", id: "receipt-facts" },
    h("dt", {}, "Job"), h("dd", {}, predicate.jobId || ""),
    h("dt", {}, "Outcome"), h("dd", {}, badge(predicate.state || "?")),
    (predicate.reasons || []).length ? [h("dt", {}, "Reasons"), h("dd", {}, predicate.reasons.join("; "))] : null,
    h("dt", {}, "Algorithm"), h("dd", {}, [algorithm.name, algorithm.version].filter(Boolean).join(" ")),
    h("dt", {}, "Algorithm digest"), h("dd", {}, short(algorithm.digest)),
    h("dt", {}, "Algorithm signer"), h("dd", {}, algorithm.signer || ""),
    h("dt", {}, "Input digest"), h("dd", {}, short(input.digest)),
    h("dt", {}, "Record count"), h("dd", { id: "receipt-records" }, String(input.recordCount ?? "")),
    h("dt", {}, "Agreement"), h("dd", {}, predicate.agreementId || ""),
    predicate.policyId ? [h("dt", {}, "Policy"), h("dd", {}, predicate.policyId)] : null,
    h("dt", {}, "Sandbox"), h("dd", {}, [sandbox.backend, limitsText(sandbox.limits)].filter(Boolean).join(": ")),
    h("dt", {}, "Epsilon charged"), h("dd", {}, String(predicate.epsilonCharged ?? "")),
    h("dt", {}, "Ran"), h("dd", {}, `${predicate.startedOn || ""} → ${predicate.finishedOn || ""}`)) : null;
  const outputs = Object.entries(predicate.outputs || {});
  return h("div", { class: "receipt" }, verdict, facts,
    outputs.length ? [h("h3", {}, "Signed output digests"),
      table([["Output", ([name]) => name], ["sha256", ([, digest]) => digest, "mono"]], outputs)] : null,
    h("details", {}, h("summary", {}, "The signed envelope (DSSE, in-toto statement)"),
      h("pre", {}, JSON.stringify(envelope, null, 2))));
}

// Compute jobs (compute-to-data): both roles' jobs, filtered; one job followed live with its events, released
// outputs, receipt (checked again and decoded) and, when refused, the reason first. Submitting is computesubmit.js.

import { api, enc } from "../api.js";
import { badge, empty, errorSlot, field, h, pageHeader, poll, pretty, select, table } from "../ui.js";
import { receiptView } from "../receipt.js";
import { newJob } from "./computesubmit.js";

export const JOB_STATES = ["QUEUED", "FETCHING", "VERIFYING", "RUNNING", "GATING", "RELEASED", "REJECTED", "FAILED"];
export const JOB_FINAL = new Set(["RELEASED", "REJECTED", "FAILED"]);
const TONE = { RELEASED: "ok", REJECTED: "bad", FAILED: "bad" };

export function jobBadge(state) { return badge(state, TONE[state] || "info"); }

export function stamp(iso) {
  return iso ? new Date(iso).toLocaleString(undefined, { dateStyle: "short", timeStyle: "medium" }) : "";
}

/** The page a connector without compute-to-data shows (its OpenAPI has no /v3/computejobs). */
export function notEnabled(root, title) {
  root.append(...pageHeader(title), h("div", { class: "notice", role: "status", id: "compute-disabled" },
    "compute-to-data is not enabled on this connector: its management API has no /v3/computejobs."));
}

function refusal(job) {
  if (!["REJECTED", "FAILED"].includes(job.state)) return null;
  const what = job.state === "REJECTED" ? "Refused: a rule said no" : "Failed: something broke";
  return h("div", { class: "error refusal", role: "alert", id: "job-reason" },
    h("strong", {}, `${what}. `), job.reason || "no reason was given");
}

function factsOf(job) {
  const algorithm = job.algorithm || {};
  return h("dl", { class: "facts" },
    h("dt", {}, "State"), h("dd", { id: "job-state" }, jobBadge(job.state)),
    h("dt", {}, "Our role"), h("dd", {}, job.role === "requester" ? "requester (our algorithm, their data)"
                                                                   : "provider (their algorithm, our data)"),
    h("dt", {}, "Agreement"), h("dd", {}, job.agreementId || ""),
    h("dt", {}, "Dataset"), h("dd", {}, job.assetId || ""),
    h("dt", {}, "Counter-party"), h("dd", {}, job.counterPartyId || ""),
    h("dt", {}, "Algorithm"), h("dd", {}, algorithm.ref || ""),
    algorithm.digest ? [h("dt", {}, "Algorithm digest"), h("dd", {}, algorithm.digest)] : null,
    algorithm.signer ? [h("dt", {}, "Algorithm signer"), h("dd", {}, algorithm.signer)] : null,
    h("dt", {}, "Parameters"), h("dd", {}, JSON.stringify(job.parameters || {})),
    h("dt", {}, "Records"), h("dd", { id: "job-records" }, job.recordCount ?? (JOB_FINAL.has(job.state) ? "none reported" : "not yet known")),
    job.inputDigest ? [h("dt", {}, "Input digest"), h("dd", {}, job.inputDigest)] : null,
    job.epsilonCharged !== null && job.epsilonCharged !== undefined
      ? [h("dt", {}, "Epsilon charged"), h("dd", {}, String(job.epsilonCharged))] : null,
    job.backend ? [h("dt", {}, "Sandbox"), h("dd", {}, job.backend)] : null,
    job.transferProcessId ? [h("dt", {}, "Transfer (Compute-PULL)"),
      h("dd", {}, h("a", { href: `#/transfers/${enc(job.transferProcessId)}` }, job.transferProcessId))] : null,
    h("dt", {}, "Created"), h("dd", {}, stamp(job.createdAt)),
    job.finishedAt ? [h("dt", {}, "Finished"), h("dd", {}, stamp(job.finishedAt))] : null);
}

function eventsOf(job) {
  const events = job.events || [];
  if (!events.length) return empty("No event yet: the job is waiting for its first step.");
  return h("ol", { class: "timeline", id: "job-events", "aria-label": "Job events, oldest first" },
    events.map((e) => h("li", {}, h("div", {}, jobBadge(e.state), " ", e.message), h("div", { class: "when" }, stamp(e.at)))));
}

function outputsOf(job) {
  if (!job.outputs) {
    return empty(JOB_FINAL.has(job.state) ? "Nothing was released." : "Outputs appear here once the job is released.");
  }
  return table([["Output", ([name]) => name], ["Value", ([, value]) => JSON.stringify(value), "mono"]],
               Object.entries(job.outputs));
}

async function receiptOf(job) {
  if (!job.receipt) return empty(JOB_FINAL.has(job.state) ? "No receipt." : "The receipt is signed when the job ends.");
  const check = await api.get(`/v3/computejobs/${enc(job["@id"])}/receipt/verification`);
  const verifiedBy = job.role === "requester" && job.state === "RELEASED"
    ? "We verified it when we took delivery (the job is RELEASED only then); this is the same check, run again now."
    : "";
  return receiptView(check, job.receipt, { verifiedBy });
}

async function detail({ root, onLeave }, id) {
  const errors = errorSlot();
  const reason = h("div", {});
  const facts = h("div", { class: "panel" });
  const events = h("div", {});
  const outputs = h("div", {});
  const receipt = h("div", {});
  const logs = h("div", {});
  const section = (title, body, key) => h("section", { "aria-labelledby": key }, h("h2", { id: key }, title), body);
  root.append(...pageHeader(`Compute job ${id}`), errors.el, reason, facts,
    section("Events", events, "job-events-h"), section("Released outputs", outputs, "job-outputs-h"),
    section("Receipt", receipt, "job-receipt-h"), logs);
  let shown = "";
  const refresh = async () => {
    const job = await api.get(`/v3/computejobs/${enc(id)}`);
    errors.clear();
    reason.replaceChildren(refusal(job) || "");
    facts.replaceChildren(factsOf(job));
    events.replaceChildren(eventsOf(job));
    outputs.replaceChildren(outputsOf(job));
    if (shown !== job.state) {
      shown = job.state;
      receipt.replaceChildren(await receiptOf(job));
      logs.replaceChildren(job.logs && Object.keys(job.logs).length
        ? h("details", {}, h("summary", {}, "Algorithm logs (scrubbed; operator only)"), pretty(job.logs)) : "");
    }
    return !JOB_FINAL.has(job.state);
  };
  try {
    if (await refresh()) onLeave(poll(async () => { try { return await refresh(); } catch (e) { errors.show(e); return true; } }, 1000));
  } catch (error) {
    errors.show(error);
  }
}

async function list({ root, onLeave }) {
  const role = field("Role", {}, "", select([["", "both"], ["requester", "requester (ours ran elsewhere)"],
                                             ["provider", "provider (ran on our data)"]], ""));
  const state = field("State", {}, "", select([["", "any"], ...JOB_STATES.map((s) => [s, s])], ""));
  const errors = errorSlot();
  const rows = h("div", {});
  const load = async () => {
    const query = new URLSearchParams({ limit: "200" });
    if (role.input.value) query.set("role", role.input.value);
    if (state.input.value) query.set("state", state.input.value);
    try {
      const jobs = await api.get(`/v3/computejobs?${query}`);
      errors.clear();
      rows.replaceChildren(jobs.length ? table([
        ["Job", (j) => h("a", { href: `#/compute/${enc(j["@id"])}` }, j["@id"]), "mono"],
        ["Role", (j) => j.role],
        ["State", (j) => jobBadge(j.state)],
        ["Algorithm", (j) => j.algorithm?.ref || ""],
        ["Dataset", (j) => j.assetId || ""],
        ["Counter-party", (j) => j.counterPartyId || "", "mono"],
        ["Records", (j) => j.recordCount ?? ""],
        ["Created", (j) => stamp(j.createdAt)],
      ], jobs) : empty(role.input.value || state.input.value ? "No job matches these filters."
        : "No compute jobs yet. Submit one under an agreement for a provider's dataset.",
        h("a", { class: "button", href: "#/compute/new" }, "Submit a job")));
    } catch (error) {
      errors.show(error);
    }
  };
  for (const input of [role.input, state.input]) input.addEventListener("change", load);
  root.append(...pageHeader("Compute jobs", h("a", { class: "button", href: "#/compute/new" }, "Submit a job")),
    h("p", { class: "hint" }, "Jobs we asked a data provider to run (requester) and jobs that ran on our data (provider). ",
      "Running jobs update by themselves."),
    h("form", { class: "row", "aria-label": "Filter jobs", onsubmit: (e) => { e.preventDefault(); load(); } }, role.el, state.el),
    errors.el, rows);
  await load();
  onLeave(poll(load, 2000));
}

export default {
  path: "compute",
  title: "Compute jobs",
  group: "Compute-to-data",
  requires: "compute",
  async render(ctx) {
    if (!ctx.features.compute) return notEnabled(ctx.root, "Compute jobs");
    if (ctx.params[0] === "new") return newJob(ctx);
    if (ctx.params[0]) return detail(ctx, ctx.params[0]);
    return list(ctx);
  },
};

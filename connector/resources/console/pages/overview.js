// Overview: is the connector up, who it is, how much it holds, and the latest DSP messages.

import { api, currentSession } from "../api.js";
import { badge, empty, errorBox, h, pageHeader, poll, table, when } from "../ui.js";
import { eventColumns } from "./audit.js";

const COUNTED = [
  ["assets", "Assets", "#/assets"],
  ["policydefinitions", "Policies", "#/policies"],
  ["contractdefinitions", "Contract definitions", "#/contractdefinitions"],
  ["contractnegotiations", "Negotiations", "#/negotiations"],
  ["contractagreements", "Agreements", "#/transfers"],
  ["transferprocesses", "Transfers", "#/transfers"],
];
const LIMIT = 1000;

async function health() {
  const started = performance.now();
  try {
    const response = await fetch("/.well-known/dspace-version");
    const took = Math.round(performance.now() - started);
    if (!response.ok) return [badge("unhealthy", "bad"), ` DSP version endpoint answered ${response.status}`];
    const versions = (await response.json()).protocolVersions || [];
    return [badge("healthy", "ok"), ` answered in ${took} ms; DSP ${versions.map((v) => v.version).join(", ")}`];
  } catch (error) {
    return [badge("unreachable", "bad"), ` ${error.message}`];
  }
}

export default {
  path: "overview",
  title: "Overview",
  group: "Operate",
  async render({ root, onLeave }) {
    const session = currentSession();
    const status = h("dd", {}, "checking…");
    const cards = h("div", { class: "cards" });
    const recent = h("div", {});
    root.append(...pageHeader("Overview"),
      h("section", { class: "panel", "aria-labelledby": "who-h" }, h("h2", { id: "who-h" }, "This connector"),
        h("dl", { class: "facts" },
          h("dt", {}, "Health"), status,
          h("dt", {}, "Participant DID"), h("dd", { id: "participant-did" }, session.participantId),
          h("dt", {}, "Public URL"), h("dd", {}, session.publicUrl),
          h("dt", {}, "DSP endpoint"), h("dd", {}, `${session.publicUrl}/api/dsp/2025-1`))),
      h("section", { "aria-labelledby": "counts-h" }, h("h2", { id: "counts-h" }, "What it holds"), cards),
      h("section", { "aria-labelledby": "recent-h" }, h("h2", { id: "recent-h" }, "Recent events"), recent));

    status.replaceChildren(...await health());
    const counts = await Promise.all(COUNTED.map(([resource]) =>
      api.list(resource, { limit: LIMIT, sortField: undefined, sortOrder: undefined }).then((rows) => rows.length, () => "?")));
    cards.replaceChildren(...COUNTED.map(([resource, title, link], i) => h("div", { class: "card" },
      h("a", { href: link }, h("div", { class: "n", dataset: { count: resource } },
        counts[i] === LIMIT ? `${LIMIT}+` : counts[i]), h("div", {}, title)))));

    const refresh = async () => {
      try {
        const events = await api.post("/v3/events/request", { limit: 10, sortField: "seq", sortOrder: "DESC" });
        recent.replaceChildren(events.length ? table(eventColumns(), events)
          : empty("No DSP messages yet. Publish an asset, or browse a provider's catalog to negotiate."));
      } catch (error) {
        recent.replaceChildren(errorBox(error));
      }
    };
    await refresh();
    onLeave(poll(refresh, 5000));
  },
};


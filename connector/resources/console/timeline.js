// The DSP messages of one process as a timeline (GET .../{id}/events), shared by negotiations and transfers.

import { api, enc } from "./api.js";
import { badge, empty, h, when } from "./ui.js";

export async function timeline(resource, id) {
  const events = await api.get(`/v3/${resource}/${enc(id)}/events`);
  if (!events.length) return empty("No DSP message yet: the first one is on its way.");
  return h("ol", { class: "timeline", "aria-label": "DSP messages, oldest first" }, events.map((e) => h("li", { class: e.direction },
    h("div", {}, h("strong", {}, e.direction === "in" ? "← received " : "→ sent "), h("code", {}, e.message), " ", badge(e.state)),
    e.detail ? h("div", {}, e.detail) : null,
    h("div", { class: "when" }, when(e.at)))));
}

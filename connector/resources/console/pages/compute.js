// Compute-to-data pages: placeholders until that extension lands. Each probes the management API (its OpenAPI
// paths) and says plainly whether the connector serves compute jobs; the real pages replace `render` here.

import { h, pageHeader } from "../ui.js";

function placeholder(title, what) {
  return ({ root, features }) => {
    root.append(...pageHeader(title));
    if (!features.compute) {
      root.append(h("div", { class: "notice", role: "status", id: "compute-disabled" },
        "compute-to-data is not enabled on this connector: its management API has no /v3/computejobs."),
        h("p", { class: "hint" }, what));
    } else {
      root.append(h("div", { class: "notice", role: "status" },
        "This connector serves compute jobs, but this console version has no page for them yet; ",
        "use the management API (/api/management/v3/computejobs)."));
    }
  };
}

export const computeJobs = {
  path: "compute",
  title: "Compute jobs",
  group: "Compute-to-data",
  requires: "compute",
  render: placeholder("Compute jobs", "Here an operator will submit jobs, follow their states, read receipts and "
    + "released outputs, and see why an output was refused."),
};

export const consent = {
  path: "consent",
  title: "Consent",
  group: "Compute-to-data",
  requires: "compute",
  render: placeholder("Consent", "Here an operator will see the consent registry; data subjects get a personal page "
    + "reached with their own token."),
};

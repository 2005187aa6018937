// Every page of the console, in navigation order. To add one write a module
// exporting {path, title, group, render(ctx)} and list it here; `requires` names a feature the connector must
// serve (api.features(): read from its OpenAPI), otherwise the page explains that it is not enabled.

import overview from "./overview.js";
import assets from "./assets.js";
import policies from "./policies.js";
import contractDefinitions from "./contractdefinitions.js";
import catalog from "./catalog.js";
import negotiations from "./negotiations.js";
import transfers from "./transfers.js";
import audit from "./audit.js";
import computeJobs from "./computejobs.js";
import algorithms from "./algorithms.js";
import consent from "./consent.js";

export const PAGES = [overview, assets, policies, contractDefinitions, catalog, negotiations, transfers,
                      computeJobs, algorithms, consent, audit];

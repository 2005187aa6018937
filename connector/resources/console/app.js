// The console shell: sign-in, navigation and a hash router over the page modules in pages/.
// A page module exports {path, title, group, render(ctx)}; see pages/index.js for how to add one.

import { features, loadSession, signIn, signOut, whenSignedOut } from "./api.js";
import { h } from "./ui.js";
import { PAGES } from "./pages/index.js";

const $ = (id) => document.getElementById(id);
let leaving = [];
let available = { compute: false, consent: false };

function showSignIn(message) {
  for (const stop of leaving) stop();
  leaving = [];
  $("signin").hidden = false;
  $("page").replaceChildren();
  $("nav").hidden = true;
  $("sign-out").hidden = true;
  $("menu-toggle").hidden = true;
  $("who").textContent = "";
  const error = $("signin-error");
  error.hidden = !message;
  error.textContent = message || "";
  document.title = "Sign in · Sovra console";
  $("api-key").focus();
}

function buildNav() {
  const groups = new Map();
  for (const page of PAGES) {
    if (!groups.has(page.group)) groups.set(page.group, []);
    groups.get(page.group).push(page);
  }
  $("nav").replaceChildren(...[...groups].map(([group, pages]) => h("div", {},
    h("div", { class: "group", id: `group-${group.replace(/\W+/g, "-")}` }, group),
    h("ul", { "aria-labelledby": `group-${group.replace(/\W+/g, "-")}` }, pages.map((page) => h("li", {},
      h("a", { href: `#/${page.path}`, dataset: { page: page.path } }, page.title,
        page.requires && !available[page.requires] ? h("span", { class: "tag" }, " (not enabled)") : null)))))));
}

async function route() {
  if ($("nav").hidden) return;
  for (const stop of leaving) stop();
  leaving = [];
  const [path = "overview", ...params] = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  const page = PAGES.find((p) => p.path === path) || PAGES[0];
  for (const link of $("nav").querySelectorAll("a")) {
    if (link.dataset.page === page.path) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  if (window.matchMedia("(max-width: 760px)").matches) collapseNav(true);
  document.title = `${page.title} · Sovra console`;
  // Focus moves to the new page's heading only if the user has not moved it while the page loaded:
  // a keyboard user who tabbed to the menu meanwhile keeps her place.
  const focusBefore = document.activeElement;
  const root = h("div", { class: "page", dataset: { page: page.path }, "aria-busy": "true" });
  $("page").replaceChildren(root);
  const ctx = {
    root, params, features: available,
    navigate: (hash) => { location.hash = hash; },
    onLeave: (stop) => leaving.push(stop),
  };
  try {
    await page.render(ctx);
  } catch (error) {
    root.append(h("div", { class: "error", role: "alert" }, error.message || String(error)));
  }
  root.setAttribute("aria-busy", "false");
  const heading = root.querySelector("h1");
  const untouched = document.activeElement === focusBefore || document.activeElement === document.body;
  if (heading && untouched) { heading.tabIndex = -1; heading.focus({ preventScroll: true }); }
}

function collapseNav(collapsed) {
  $("nav").classList.toggle("collapsed", collapsed);
  $("menu-toggle").setAttribute("aria-expanded", String(!collapsed));
}

async function enter(session) {
  $("signin").hidden = true;
  $("nav").hidden = false;
  $("sign-out").hidden = false;
  $("menu-toggle").hidden = false;
  $("who").textContent = session.participantId;
  $("who").title = `Signed in to ${session.participantId}`;
  available = await features();
  buildNav();
  await route();
}

async function start() {
  whenSignedOut((message) => showSignIn(message));
  $("signin-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const input = $("api-key");
    try {
      const session = await signIn(input.value);
      input.value = "";
      await enter(session);
    } catch (error) {
      showSignIn(error.message);
    }
  });
  $("sign-out").addEventListener("click", async () => {
    try { await signOut(); } finally { showSignIn("Signed out."); }
  });
  $("menu-toggle").addEventListener("click", () => collapseNav(!$("nav").classList.contains("collapsed")));
  window.addEventListener("hashchange", route);
  if (new URLSearchParams(location.search).get("signin") === "refused") {
    showSignIn("That is not this connector's management API key.");
    return;
  }
  const session = await loadSession();
  if (!$("nav").hidden) return;  // signed in through the form while the session check was under way
  if (session) await enter(session); else showSignIn("");
}

start();

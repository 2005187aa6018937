// Small DOM helpers: elements are built with textContent, never innerHTML, so data cannot inject markup.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (key === "class") el.className = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (value === true) el.setAttribute(key, "");
    else el.setAttribute(key, String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

let fieldCount = 0;

/** A labelled input; `control` may be given (a select, a textarea), otherwise an <input> is made. */
export function field(label, attrs = {}, hint = "", control = null) {
  const id = attrs.id || `f${++fieldCount}`;
  const input = control || h("input", { ...attrs, id });
  input.id = id;
  const hintEl = hint ? h("span", { class: "hint", id: `${id}-hint` }, hint) : null;
  if (hintEl) input.setAttribute("aria-describedby", hintEl.id);
  return { el: h("div", {}, h("label", { for: id }, label), input, hintEl), input };
}

export function select(options, value, attrs = {}) {
  return h("select", attrs, options.map(([v, text]) => h("option", { value: v, selected: v === value }, text)));
}

export function empty(text, ...extra) { return h("div", { class: "empty" }, h("p", {}, text), ...extra); }

export function errorBox(error) {
  const box = h("div", { class: "error", role: "alert" }, error.message || String(error));
  if (error.errors && error.errors.length > 1) {
    box.replaceChildren(h("ul", {}, error.errors.map((e) => h("li", {}, e.message))));
  }
  return box;
}

/** A place for one error at a time: show(error) replaces it, clear() removes it. */
export function errorSlot() {
  const slot = h("div", { class: "error-slot" });
  return { el: slot, show: (error) => slot.replaceChildren(errorBox(error)), clear: () => slot.replaceChildren() };
}

export function toast(text) {
  const el = document.getElementById("toast");
  el.textContent = text;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { el.textContent = ""; }, 4000);
}

const STATE_TONE = { FINALIZED: "ok", COMPLETED: "ok", STARTED: "ok", VERIFIED: "info", AGREED: "info",
                     TERMINATED: "bad", SUSPENDED: "warn", permit: "ok", deny: "bad" };

export function badge(text, tone = STATE_TONE[text] || "info") { return h("span", { class: `badge ${tone}` }, text); }

export const FINAL_STATES = new Set(["FINALIZED", "TERMINATED", "COMPLETED"]);

export function when(millis) {
  if (millis === undefined || millis === null) return "";
  return new Date(millis).toLocaleString(undefined, { dateStyle: "short", timeStyle: "medium" });
}

/** A table that reads as cards at phone width; `columns` are [header, row => cell]. */
export function table(columns, rows, caption) {
  return h("div", { class: "table-wrap" }, h("table", { class: "responsive" },
    caption ? h("caption", { class: "hint" }, caption) : null,
    h("thead", {}, h("tr", {}, columns.map(([title]) => h("th", { scope: "col" }, title)))),
    h("tbody", {}, rows.map((row) => h("tr", {}, columns.map(([title, cell, cls]) =>
      h("td", { "data-label": title, class: cls }, cell(row))))))));
}

/** Calls `tick` every `ms` until it returns false or the page is left; returns the stop function. */
export function poll(tick, ms = 1000) {
  let stopped = false;
  let timer = null;
  const loop = async () => {
    if (stopped) return;
    let again = true;
    try { again = (await tick()) !== false; } catch { again = true; }
    if (!stopped && again) timer = setTimeout(loop, ms);
  };
  timer = setTimeout(loop, ms);
  return () => { stopped = true; clearTimeout(timer); };
}

export function pretty(value) { return h("pre", {}, JSON.stringify(value, null, 2)); }

/** A button that runs `action` once at a time and shows its failure in `slot`. */
export function actionButton(text, action, slot, attrs = {}) {
  const button = h("button", { type: "button", ...attrs }, text);
  button.addEventListener("click", async () => {
    button.disabled = true;
    slot?.clear();
    try { await action(); } catch (error) { if (slot) slot.show(error); else toast(error.message); }
    finally { button.disabled = false; }
  });
  return button;
}

export function pageHeader(title, ...actions) {
  return actions.length ? [h("h1", {}, title), h("div", { class: "actions" }, actions)] : [h("h1", {}, title)];
}

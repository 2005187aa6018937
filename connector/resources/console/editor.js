// A JSON editor: a plain <textarea> (so typing, selection, undo and screen readers behave natively) over a <pre>
// that repeats its text with syntax colours. No library, no build step. Tab keeps moving focus (keyboard users
// must be able to leave the editor); indent with spaces.

import { h } from "./ui.js";

const TOKEN = /("(?:\\.|[^"\\])*"(?:\s*:)?)|(-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)|\b(true|false|null)\b|([{}[\],])/g;

function highlight(text) {
  const parts = [];
  let last = 0;
  for (const match of text.matchAll(TOKEN)) {
    if (match.index > last) parts.push(text.slice(last, match.index));
    const [token, str, num, lit] = match;
    const cls = str ? (str.trimEnd().endsWith(":") ? "tok-key" : "tok-str") : num ? "tok-num" : lit ? "tok-lit" : "tok-punct";
    parts.push(h("span", { class: cls }, token));
    last = match.index + token.length;
  }
  parts.push(text.slice(last) + "\n");
  return parts;
}

/** Where (line, column) a JSON.parse error points, when the browser says at which position. */
export function syntaxError(text, error) {
  const at = /position (\d+)/.exec(error.message);
  if (!at) return error.message;
  const before = text.slice(0, Number(at[1]));
  const line = before.split("\n").length;
  const column = Number(at[1]) - before.lastIndexOf("\n");
  return `${error.message.replace(/ in JSON at position \d+.*/, "")} at line ${line}, column ${column}`;
}

export function jsonEditor({ id, label, value = "", onChange = () => {} }) {
  const pre = h("pre", { "aria-hidden": "true" });
  const area = h("textarea", { id, spellcheck: "false", autocapitalize: "off", autocomplete: "off", "aria-label": label,
                               class: "code" });
  const render = () => {
    pre.replaceChildren(...highlight(area.value));
    area.style.height = "auto";
    area.style.height = `${Math.max(area.scrollHeight, 256)}px`;
  };
  area.addEventListener("input", () => { render(); onChange(area.value); });
  area.value = value;
  const wrapper = h("div", { class: "editor" }, pre, area);
  queueMicrotask(render);
  return {
    el: wrapper,
    textarea: area,
    get value() { return area.value; },
    set value(text) { area.value = text; render(); onChange(text); },
    /** Select the text of a JSON pointer's member, if it can be found, so the author sees where an issue is. */
    reveal(pointer) {
      const key = String(pointer || "").split("/").filter(Boolean).pop();
      if (!key || /^\d+$/.test(key)) { area.focus(); return; }
      const at = area.value.indexOf(`"${key.replace(/~1/g, "/").replace(/~0/g, "~")}"`);
      area.focus();
      if (at >= 0) area.setSelectionRange(at, at + key.length + 2);
    },
  };
}

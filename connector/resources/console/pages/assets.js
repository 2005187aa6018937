// Assets: list, create, edit and delete, with the data address that says where the bytes come from.

import { api, enc } from "../api.js";
import { actionButton, empty, errorSlot, field, h, pageHeader, select, table, toast, when } from "../ui.js";

const ADDRESS_TYPES = [["HttpData", "HTTP source (HttpData)"], ["File", "File under --file-root"]];

function form(asset, { navigate }) {
  const editing = Boolean(asset);
  const props = asset?.properties || {};
  const address = asset?.dataAddress || { type: "HttpData" };
  const id = field("Asset id", { required: true, value: asset?.["@id"] || "", readonly: editing, autocomplete: "off" },
                   editing ? "The id cannot change." : "Unique; peers see it as the dataset id.");
  const name = field("Name", { value: props.name || "" });
  const description = field("Description", { value: props.description || "" });
  const contentType = field("Content type", { value: props.contenttype || props.contentType || "", placeholder: "text/csv" });
  const type = field("Data address type", {}, "", select(ADDRESS_TYPES, address.type));
  const baseUrl = field("Base URL", { value: address.baseUrl || "", placeholder: "https://data.example.org/file.csv" },
                        "Must be allowed by --http-source-allow.");
  const path = field("File path", { value: address.path || "", placeholder: "/srv/data/file.csv" },
                     "An absolute path inside --file-root.");
  const showAddress = () => {
    baseUrl.el.hidden = type.input.value !== "HttpData";
    path.el.hidden = type.input.value !== "File";
  };
  type.input.addEventListener("change", showAddress);
  showAddress();
  const errors = errorSlot();
  const submit = async (event) => {
    event.preventDefault();
    errors.clear();
    const properties = { ...props, name: name.input.value };
    delete properties.id;
    if (description.input.value) properties.description = description.input.value; else delete properties.description;
    if (contentType.input.value) properties.contenttype = contentType.input.value; else delete properties.contenttype;
    const dataAddress = type.input.value === "HttpData"
      ? { type: "HttpData", baseUrl: baseUrl.input.value } : { type: "File", path: path.input.value };
    const body = { "@id": id.input.value.trim(), properties, privateProperties: asset?.privateProperties || {}, dataAddress };
    try {
      if (editing) await api.put("/v3/assets", body); else await api.post("/v3/assets", body);
      toast(editing ? `Asset ${body["@id"]} saved` : `Asset ${body["@id"]} created`);
      navigate("#/assets");
    } catch (error) {
      errors.show(error);
    }
  };
  return h("form", { class: "stack panel", onsubmit: submit, "aria-label": editing ? "Edit asset" : "New asset" },
    id.el, name.el, description.el, contentType.el,
    h("fieldset", {}, h("legend", {}, "Data address"), h("div", { class: "stack" }, type.el, baseUrl.el, path.el)),
    errors.el,
    h("div", { class: "actions" }, h("button", { type: "submit" }, editing ? "Save asset" : "Create asset"),
      h("a", { class: "button secondary", href: "#/assets" }, "Cancel")));
}

function addressText(address) {
  if (!address) return "";
  if (address.type === "File") return `File ${address.path || ""}`;
  if (address.type === "HttpData") return `HttpData ${address.baseUrl || ""}`;
  return address.type || "";
}

export default {
  path: "assets",
  title: "Assets",
  group: "Provide",
  async render(ctx) {
    const { root, params, navigate } = ctx;
    if (params[0] === "new") {
      root.append(...pageHeader("New asset"), form(null, ctx));
      return;
    }
    if (params[0] === "edit" && params[1]) {
      const asset = await api.get(`/v3/assets/${enc(params[1])}`);
      root.append(...pageHeader(`Edit asset ${asset["@id"]}`), form(asset, ctx));
      return;
    }
    const errors = errorSlot();
    const list = h("div", {});
    const load = async () => {
      const rows = await api.list("assets");
      list.replaceChildren(rows.length ? table([
        ["Id", (a) => a["@id"], "mono"],
        ["Name", (a) => a.properties?.name || ""],
        ["Data address", (a) => addressText(a.dataAddress), "mono"],
        ["Created", (a) => when(a.createdAt)],
        ["", (a) => h("div", { class: "actions" },
          h("a", { class: "button small secondary", href: `#/assets/edit/${enc(a["@id"])}`, "aria-label": `Edit ${a["@id"]}` }, "Edit"),
          actionButton("Delete", async () => {
            if (!window.confirm(`Delete asset ${a["@id"]}?`)) return;
            await api.del(`/v3/assets/${enc(a["@id"])}`);
            toast(`Asset ${a["@id"]} deleted`);
            await load();
          }, errors, { class: "small danger", "aria-label": `Delete ${a["@id"]}` }))],
      ], rows) : empty("No assets yet. An asset names data you can offer: an HTTP source or a file.",
                       h("a", { class: "button", href: "#/assets/new" }, "Create the first asset")));
    };
    root.append(...pageHeader("Assets", h("a", { class: "button", href: "#/assets/new" }, "New asset")), errors.el, list);
    await load();
  },
};

// A list of any resource, live from a watch, with the namespace filter and a search.
import { watchList, resourcePath } from "./api.js";
import { h, replace, age } from "./dom.js";
import { columns } from "./columns.js";

export function list(view, state, r) {
  const search = h("input", { type: "search", placeholder: "Search by name or label", "aria-label": "search", value: state.search || "" });
  const body = h("tbody");
  const count = h("span", { class: "count" });
  const errors = h("p", { class: "error", role: "alert" });
  const cols = columns[r.kind] || [];
  const showNs = r.namespaced && !state.ns;
  replace(view,
    h("div", { class: "toolbar" }, h("h2", {}, r.kind + (r.group ? ` (${r.group})` : "")), count, search),
    h("table", { class: "list", dataset: { kind: r.kind } },
      h("thead", {}, h("tr", {}, h("th", {}, "Name"), showNs && h("th", {}, "Namespace"), cols.map(([c]) => h("th", {}, c)), h("th", {}, "Age"))),
      body),
    errors);
  let items = new Map();
  // Rows are kept by object and rebuilt only when the object changed (its resourceVersion) or
  // its age's text did: with a thousand pods, a change redraws one row, not a thousand.
  const rows = new Map();
  const row = o => {
    const key = (o.metadata.namespace || "") + "/" + o.metadata.name;
    const shownAge = age(o.metadata.creationTimestamp);
    const old = rows.get(key);
    if (old && old.rv === o.metadata.resourceVersion && old.age === shownAge) return old.tr;
    const tr = h("tr", { dataset: { name: o.metadata.name, namespace: o.metadata.namespace || "" } },
      h("td", {}, h("a", { href: objectHash(r, o.metadata.namespace, o.metadata.name) }, o.metadata.name)),
      showNs && h("td", {}, o.metadata.namespace || ""),
      cols.map(([, f]) => { let v; try { v = f(o); } catch (e) { v = ""; } return h("td", {}, v); }),
      h("td", {}, shownAge));
    rows.set(key, { tr, rv: o.metadata.resourceVersion, age: shownAge });
    return tr;
  };
  const draw = () => {
    const q = search.value.trim().toLowerCase();
    state.search = search.value;
    const shown = [...items.values()].filter(o => !q || o.metadata.name.toLowerCase().includes(q) ||
      Object.entries(o.metadata.labels || {}).some(([k, v]) => `${k}=${v}`.toLowerCase().includes(q)))
      .sort((a, b) => (a.metadata.namespace || "").localeCompare(b.metadata.namespace || "") || a.metadata.name.localeCompare(b.metadata.name));
    count.textContent = `${shown.length} of ${items.size}`;
    for (const key of rows.keys()) if (!items.has(key)) rows.delete(key);
    const want = shown.map(row);
    // Move only what is out of place: appending every row again would lay the table out anew.
    let cur = body.firstChild;
    for (const tr of want) {
      if (cur === tr) { cur = cur.nextSibling; continue; }
      body.insertBefore(tr, cur);
    }
    while (cur) { const next = cur.nextSibling; body.removeChild(cur); cur = next; }
  };
  search.addEventListener("input", draw);
  const stop = watchList(resourcePath(r, state.ns), "", got => { items = got; errors.textContent = ""; draw(); },
    e => { errors.textContent = e.message; });
  const tick = setInterval(draw, 30000); // ages
  return () => { stop(); clearInterval(tick); };
}

export function resourceKey(r) { return `${r.group || "core"}/${r.name}`; }

export function objectHash(r, namespace, name) {
  return `#/obj/${resourceKey(r)}/${namespace ? encodeURIComponent(namespace) : "_"}/${encodeURIComponent(name)}`;
}

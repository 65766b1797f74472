// Create objects from pasted YAML, one or many documents. Every document is first checked by
// the API (a server-side dry run); only when all pass is any applied, so a paste is never half
// applied. The page says, per document, what happened.
import YAML from "yaml";
import { call, resourcePath } from "./api.js";
import { h, replace } from "./dom.js";
import { yamlEditor, editorText } from "./editor.js";

export function create(view, state) {
  const box = h("div", { class: "editor" });
  const button = h("button", { class: "primary", dataset: { action: "create" } }, "Create");
  const results = h("ul", { class: "results", "aria-label": "results" });
  replace(view, h("h2", {}, "Create from YAML"), h("p", {}, "Paste one or more documents, separated by ---. Objects without a namespace go to " + (state.ns || "default") + "."),
    box, h("div", { class: "toolbar" }, button), results);
  const editor = yamlEditor(box, "", false);
  button.addEventListener("click", async () => {
    replace(results);
    const report = (text, ok) => results.appendChild(h("li", { class: ok ? "ok" : "error" }, text));
    let docs;
    try {
      docs = YAML.parseAllDocuments(editorText(editor)).map((d, i) => {
        if (d.errors.length) throw new Error(`document ${i + 1} does not parse: ${d.errors[0].message}`);
        return d.toJS();
      }).filter(d => d);
    } catch (e) {
      return report(e.message + ". Nothing was created.", false);
    }
    if (!docs.length) return report("There is no document to create.", false);
    const plan = [];
    for (const [i, d] of docs.entries()) {
      const label = `document ${i + 1} (${d.kind || "?"} ${(d.metadata || {}).name || "?"})`;
      const r = typeof d === "object" && d.apiVersion && d.kind && resourceFor(state.resources, d.apiVersion, d.kind);
      if (!r) {
        plan.push({ label, error: `the API serves no kind ${d.kind} in ${d.apiVersion}` });
        continue;
      }
      const ns = r.namespaced ? ((d.metadata || {}).namespace || state.ns || "default") : "";
      plan.push({ label, path: resourcePath(r, ns), doc: d });
    }
    for (const p of plan.filter(p => !p.error)) {
      try { await call(p.path + "?dryRun=All", { method: "POST", body: p.doc }); } catch (e) { p.error = e.message; }
    }
    if (plan.some(p => p.error)) {
      for (const p of plan) report(p.error ? `${p.label}: refused: ${p.error}` : `${p.label}: would be created, but was not`, !p.error);
      return report("Nothing was created: fix the refused documents and create again.", false);
    }
    for (const p of plan) {
      try {
        const o = await call(p.path, { method: "POST", body: p.doc });
        report(`${p.label}: created${o.metadata.namespace ? " in " + o.metadata.namespace : ""}`, true);
      } catch (e) {
        report(`${p.label}: refused: ${e.message}`, false);
      }
    }
  });
  return () => editor.destroy();
}

export function resourceFor(resources, apiVersion, kind) {
  const [group, version] = apiVersion.includes("/") ? apiVersion.split("/") : ["", apiVersion];
  const r = resources.find(r => r.group === group && r.kind === kind);
  return r && Object.assign({}, r, { version });
}

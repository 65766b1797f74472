// One object: its YAML (view, edit and apply), its actions, and for a pod its logs and a
// terminal. Actions the user may not take are not shown (SelfSubjectAccessReview).
import YAML from "yaml";
import { call, can, resourcePath, streamText, APIError } from "./api.js";
import { h, replace } from "./dom.js";
import { yamlEditor, editorText, setEditorText } from "./editor.js";
import { openTerminal } from "./terminal.js";
import { podStatus } from "./columns.js";

// toYAML shows an object as kubectl edit does: without managedFields, which the API keeps when
// an update leaves them out.
export function toYAML(o) {
  const c = structuredClone(o);
  if (c.metadata) delete c.metadata.managedFields;
  return YAML.stringify(c, { lineWidth: 0 });
}

export function detail(view, state, r, namespace, name, go) {
  const path = resourcePath(r, namespace, name);
  const title = h("h2", {}, `${r.kind} ${namespace ? namespace + "/" : ""}${name}`);
  const actions = h("div", { class: "actions" });
  const message = h("p", { class: "message", role: "status" });
  const tabs = h("div", { class: "tabs", role: "tablist" });
  const pane = h("div", { class: "pane" });
  replace(view, title, actions, message, tabs, pane);
  const say = (text, isError) => { message.textContent = text; message.className = isError ? "message error" : "message"; };
  let obj = null;
  let stopPane = () => {};

  const showTab = name => {
    stopPane();
    stopPane = () => {};
    for (const b of tabs.children) b.setAttribute("aria-selected", String(b.dataset.tab === name));
    if (name === "yaml") stopPane = yamlTab();
    if (name === "logs") stopPane = logsTab();
    if (name === "terminal") stopPane = terminalTab();
    if (name === "data") stopPane = secretTab();
  };
  const tab = (id, label) => h("button", { role: "tab", dataset: { tab: id }, onclick: () => showTab(id) }, label);

  const load = async () => {
    obj = await call(path);
    return obj;
  };

  // The YAML tab: read-only unless the user may update the object.
  const yamlTab = () => {
    const box = h("div", { class: "editor" });
    const apply = h("button", { class: "primary", hidden: true }, "Apply");
    const reload = h("button", {}, "Reload");
    replace(pane, h("div", { class: "toolbar" }, apply, reload), box);
    let editor = null;
    const fill = async () => {
      const o = await load();
      const mayUpdate = r.verbs.includes("update") && await can("update", r.group, r.name, namespace, "", name);
      const text = r.kind === "Secret" ? toYAML(hideSecret(o)) : toYAML(o);
      if (editor) editor.destroy();
      editor = yamlEditor(box, text, !mayUpdate || r.kind === "Secret");
      apply.hidden = !mayUpdate || r.kind === "Secret";
    };
    apply.addEventListener("click", async () => {
      let edited;
      try {
        edited = YAML.parse(editorText(editor));
      } catch (e) {
        return say("The YAML does not parse: " + e.message, true);
      }
      if (!edited || typeof edited !== "object") return say("The YAML is not an object", true);
      try {
        const saved = await call(path, { method: "PUT", body: edited });
        obj = saved;
        setEditorText(editor, toYAML(saved));
        say(`Applied: ${r.kind} ${name} is at resourceVersion ${saved.metadata.resourceVersion}.`);
      } catch (e) {
        if (e.status === 409) say("Conflict: someone changed this object after you opened it, and your edit was not applied. Reload to see their change, then edit again. (" + e.message + ")", true);
        else say("The API refused the edit: " + e.message, true);
      }
    });
    reload.addEventListener("click", () => fill().then(() => say("Reloaded.")).catch(e => say(e.message, true)));
    fill().catch(e => say(e.message, true));
    return () => { if (editor) editor.destroy(); };
  };

  // hideSecret is a Secret as the YAML tab shows it: no values, not even in kubectl apply's
  // record of the last applied object.
  const hideSecret = s => {
    const c = structuredClone(s);
    for (const k of Object.keys(c.data || {})) c.data[k] = "(hidden: open the Data tab)";
    const ann = c.metadata.annotations || {};
    if (ann["kubectl.kubernetes.io/last-applied-configuration"]) ann["kubectl.kubernetes.io/last-applied-configuration"] = "(hidden: it holds the values)";
    return c;
  };

  // The Data tab of a Secret: keys only, values on request.
  const secretTab = () => {
    const rows = h("tbody");
    replace(pane, h("table", { class: "secret" }, h("thead", {}, h("tr", {}, h("th", {}, "Key"), h("th", {}, "Value"))), rows));
    const data = (obj && obj.data) || {};
    replace(rows, Object.keys(data).sort().map(k => {
      const cell = h("td", {}, h("button", { onclick: () => {
        let v;
        try { v = new TextDecoder().decode(Uint8Array.from(atob(data[k]), c => c.charCodeAt(0))); } catch (e) { v = data[k]; }
        replace(cell, h("pre", {}, v));
      } }, "Show"));
      return h("tr", {}, h("td", {}, k), cell);
    }));
    return () => {};
  };

  // The Logs tab of a pod: container, previous, timestamps, follow, download.
  const logsTab = () => {
    const containers = [...(obj.spec.initContainers || []), ...(obj.spec.containers || [])].map(c => c.name);
    const pick = h("select", { "aria-label": "container" }, containers.map(c => h("option", { value: c }, c)));
    pick.value = (obj.spec.containers[0] || {}).name || containers[0];
    const previous = h("input", { type: "checkbox", id: "logs-previous" });
    const stamps = h("input", { type: "checkbox", id: "logs-timestamps" });
    const follow = h("input", { type: "checkbox", id: "logs-follow", checked: true });
    const download = h("button", {}, "Download");
    const out = h("pre", { class: "logs", "aria-label": "logs" });
    replace(pane, h("div", { class: "toolbar" }, pick,
      h("label", {}, previous, " previous"), h("label", {}, stamps, " timestamps"), h("label", {}, follow, " follow"), download), out);
    let ctl = null;
    const start = () => {
      if (ctl) ctl.abort();
      ctl = new AbortController();
      out.textContent = "";
      const q = new URLSearchParams({ container: pick.value, tailLines: "2000" });
      if (previous.checked) q.set("previous", "true");
      if (stamps.checked) q.set("timestamps", "true");
      if (follow.checked && !previous.checked) q.set("follow", "true");
      const signal = ctl.signal;
      streamText(resourcePath(r, namespace, name, "log") + "?" + q, line => {
        out.appendChild(document.createTextNode(line + "\n"));
        if (out.childNodes.length > 5000) out.removeChild(out.firstChild);
        out.scrollTop = out.scrollHeight;
      }, signal).catch(e => { if (!signal.aborted) say(e.message, true); });
    };
    for (const el of [pick, previous, stamps, follow]) el.addEventListener("change", start);
    download.addEventListener("click", () => {
      const a = h("a", { href: URL.createObjectURL(new Blob([out.textContent], { type: "text/plain" })), download: `${name}-${pick.value}.log` });
      a.click();
      setTimeout(() => URL.revokeObjectURL(a.href), 1000);
    });
    start();
    return () => { if (ctl) ctl.abort(); };
  };

  // The Terminal tab of a pod.
  const terminalTab = () => {
    const pick = h("select", { "aria-label": "container" }, obj.spec.containers.map(c => h("option", { value: c.name }, c.name)));
    const status = h("span", { class: "term-status" });
    const box = h("div", { class: "terminal" });
    replace(pane, h("div", { class: "toolbar" }, pick, status), box);
    let close = openTerminal(box, namespace, name, pick.value, s => { status.textContent = s; });
    pick.addEventListener("change", () => { close(); close = openTerminal(box, namespace, name, pick.value, s => { status.textContent = s; }); });
    return () => close();
  };

  const act = async (label, fn) => {
    try { say(await fn()); } catch (e) { say(`${label}: ${e instanceof APIError ? "the API refused: " : ""}${e.message}`, true); }
  };
  const patch = (body, p = path) => call(p, { method: "PATCH", body, headers: { "Content-Type": "application/merge-patch+json" } });

  const addActions = async () => {
    const buttons = [];
    const allowed = (verb, sub = "", res = r.name, grp = r.group, ns = namespace) => can(verb, grp, res, ns, sub, name);
    if (await allowed("delete")) {
      // Asked in the page, not with confirm(), which blocks the page and cannot be styled.
      const sure = h("span", { class: "confirm", hidden: true }, `Delete ${r.kind} ${name}? `,
        h("button", { class: "danger", dataset: { action: "delete-confirm" }, onclick: () => act("Delete", async () => {
          await call(path, { method: "DELETE" });
          go(`#/list/${r.group || "core"}/${r.name}`);
          return "Deleted.";
        }) }, "Delete"),
        h("button", { onclick: () => { sure.hidden = true; } }, "Cancel"));
      buttons.push(h("button", { class: "danger", dataset: { action: "delete" }, onclick: () => { sure.hidden = false; } }, "Delete"), sure);
    }
    if (r.subresources.includes("scale") && await allowed("patch", "scale")) {
      const replicas = h("input", { type: "number", min: "0", value: (obj.spec || {}).replicas ?? 1, "aria-label": "replicas", class: "replicas" });
      buttons.push(h("span", { class: "scale" }, replicas, h("button", { dataset: { action: "scale" }, onclick: () => act("Scale", async () => {
        await patch({ spec: { replicas: parseInt(replicas.value, 10) } }, resourcePath(r, namespace, name, "scale"));
        return `Scaled to ${replicas.value}.`;
      }) }, "Scale")));
    }
    if (["Deployment", "StatefulSet", "DaemonSet"].includes(r.kind) && await allowed("patch")) {
      buttons.push(h("button", { dataset: { action: "restart" }, onclick: () => act("Restart", async () => {
        await patch({ spec: { template: { metadata: { annotations: { "kubectl.kubernetes.io/restartedAt": new Date().toISOString() } } } } });
        return "Rollout restarted.";
      }) }, "Restart"));
    }
    if (r.kind === "Node" && await allowed("patch")) {
      buttons.push(h("button", { dataset: { action: "cordon" }, onclick: () => act("Cordon", async () => { await patch({ spec: { unschedulable: true } }); return "Cordoned."; }) }, "Cordon"));
      buttons.push(h("button", { dataset: { action: "uncordon" }, onclick: () => act("Uncordon", async () => { await patch({ spec: { unschedulable: null } }); return "Uncordoned."; }) }, "Uncordon"));
      buttons.push(h("button", { dataset: { action: "drain" }, onclick: () => act("Drain", () => drain(name, patch)) }, "Drain"));
    }
    if (r.kind === "CronJob" && await allowed("patch")) {
      buttons.push(h("button", { dataset: { action: "suspend" }, onclick: () => act("Suspend", async () => { await patch({ spec: { suspend: true } }); return "Suspended."; }) }, "Suspend"));
      buttons.push(h("button", { dataset: { action: "resume" }, onclick: () => act("Resume", async () => { await patch({ spec: { suspend: false } }); return "Resumed."; }) }, "Resume"));
    }
    if (r.kind === "CronJob" && await can("create", "batch", "jobs", namespace)) {
      buttons.push(h("button", { dataset: { action: "trigger" }, onclick: () => act("Trigger", () => trigger(obj)) }, "Trigger a Job"));
    }
    replace(actions, buttons);
  };

  load().then(async o => {
    const list = [tab("yaml", "YAML")];
    if (r.kind === "Secret" && await can("get", "", "secrets", namespace, "", name)) list.push(tab("data", "Data"));
    if (r.kind === "Pod") {
      if (await can("get", "", "pods", namespace, "log", name)) list.push(tab("logs", "Logs"));
      if (await can("create", "", "pods", namespace, "exec", name)) list.push(tab("terminal", "Terminal"));
      title.textContent += ` (${podStatus(o)})`;
    }
    replace(tabs, list);
    showTab(state.tab && list.some(b => b.dataset.tab === state.tab) ? state.tab : "yaml");
    state.tab = "";
    addActions();
  }).catch(e => say(e.message, true));
  return () => stopPane();
}

// drain cordons a node and evicts its pods, as kubectl drain does: not the DaemonSets' pods
// (their controller puts them back) nor static pods.
async function drain(node, patch) {
  await patch({ spec: { unschedulable: true } });
  const pods = await call(`k8s/api/v1/pods?fieldSelector=spec.nodeName%3D${encodeURIComponent(node)}`);
  const evict = pods.items.filter(p => !(p.metadata.ownerReferences || []).some(o => o.kind === "DaemonSet") &&
    !(p.metadata.annotations || {})["kubernetes.io/config.mirror"] && !["Succeeded", "Failed"].includes(p.status.phase));
  const failed = [];
  for (const p of evict) {
    try {
      await call(`k8s/api/v1/namespaces/${encodeURIComponent(p.metadata.namespace)}/pods/${encodeURIComponent(p.metadata.name)}/eviction`, {
        method: "POST", body: { apiVersion: "policy/v1", kind: "Eviction", metadata: { name: p.metadata.name, namespace: p.metadata.namespace } },
      });
    } catch (e) { failed.push(`${p.metadata.namespace}/${p.metadata.name}: ${e.message}`); }
  }
  if (failed.length) throw new Error(`cordoned; ${evict.length - failed.length} of ${evict.length} pods evicted; not evicted: ${failed.join("; ")}`);
  return `Cordoned, and ${evict.length} pods evicted.`;
}

// trigger makes a Job from a CronJob's template, as kubectl create job --from=cronjob/NAME.
async function trigger(cj) {
  const ns = cj.metadata.namespace;
  const name = `${cj.metadata.name}-manual-${Math.floor(Date.now() / 1000)}`.slice(0, 63);
  const tmpl = cj.spec.jobTemplate;
  await call(`k8s/apis/batch/v1/namespaces/${encodeURIComponent(ns)}/jobs`, {
    method: "POST",
    body: {
      apiVersion: "batch/v1", kind: "Job",
      metadata: {
        name, namespace: ns, labels: (tmpl.metadata || {}).labels,
        annotations: Object.assign({}, (tmpl.metadata || {}).annotations, { "cronjob.kubernetes.io/instantiate": "manual" }),
        ownerReferences: [{ apiVersion: "batch/v1", kind: "CronJob", name: cj.metadata.name, uid: cj.metadata.uid, controller: true }],
      },
      spec: tmpl.spec,
    },
  });
  return `Job ${name} created.`;
}

// The overview: nodes with their use of CPU and memory, pods by phase, recent warnings and
// the bundled addons' health.
import { call, watchList } from "./api.js";
import { h, replace, age, quantity, bytes, cores } from "./dom.js";
import { columns } from "./columns.js";

const addons = ["coredns", "metrics-server", "servicelb", "local-path-provisioner", "ketch-dashboard"];

export function overview(view, state) {
  const nodesBody = h("tbody");
  const phases = h("ul", { class: "phases" });
  const warnings = h("tbody");
  const addonBody = h("tbody");
  const errors = h("p", { class: "error", role: "alert" });
  replace(view,
    h("h2", {}, "Nodes"),
    h("table", { id: "overview-nodes" }, h("thead", {}, h("tr", {}, ["Name", "Status", "Roles", "Internal IP", "CPU", "Memory"].map(c => h("th", {}, c)))), nodesBody),
    h("div", { class: "row" },
      h("section", {}, h("h2", {}, "Pods by phase"), phases),
      h("section", {}, h("h2", {}, "Addons"), h("table", { id: "overview-addons" }, h("thead", {}, h("tr", {}, h("th", {}, "Addon"), h("th", {}, "Ready"))), addonBody))),
    h("h2", {}, "Recent warnings"),
    h("table", { id: "overview-warnings" }, h("thead", {}, h("tr", {}, ["Age", "Object", "Reason", "Message"].map(c => h("th", {}, c)))), warnings),
    errors);

  let nodes = new Map();
  let usage = {};
  const drawNodes = () => {
    replace(nodesBody, [...nodes.values()].map(n => {
      const cap = n.status.allocatable || n.status.capacity || {};
      const u = usage[n.metadata.name];
      const cpu = u ? `${cores(quantity(u.cpu))} / ${cores(quantity(cap.cpu))}` : "n/a";
      const mem = u ? `${bytes(quantity(u.memory))} / ${bytes(quantity(cap.memory))}` : "n/a";
      const [status, roles, ip] = columns.Node.slice(0, 3).map(([, f]) => f(n));
      return h("tr", { dataset: { node: n.metadata.name } },
        h("td", {}, h("a", { href: `#/obj/core/nodes/_/${encodeURIComponent(n.metadata.name)}` }, n.metadata.name)),
        h("td", { class: status.startsWith("Ready") ? "ok" : "bad" }, status), h("td", {}, roles), h("td", {}, ip),
        h("td", { class: "cpu" }, cpu), h("td", { class: "memory" }, mem));
    }));
  };
  const stops = [];
  const fail = e => { errors.textContent = e.message; };
  if (state.clusterWide) {
    stops.push(watchList("k8s/api/v1/nodes", "", items => { nodes = items; drawNodes(); }, fail));
  }
  const pollMetrics = async () => {
    try {
      const m = await call("k8s/apis/metrics.k8s.io/v1beta1/nodes");
      usage = Object.fromEntries(m.items.map(i => [i.metadata.name, i.usage]));
      drawNodes();
    } catch (e) { /* metrics-server not ready yet, or not allowed: the columns say n/a */ }
  };
  pollMetrics();
  const timer = setInterval(pollMetrics, 10000);

  const nsPath = state.ns ? `/namespaces/${encodeURIComponent(state.ns)}` : "";
  stops.push(watchList(`k8s/api/v1${nsPath}/pods`, "", items => {
    const count = {};
    for (const p of items.values()) count[p.status.phase] = (count[p.status.phase] || 0) + 1;
    replace(phases, Object.entries(count).sort().map(([p, n]) => h("li", { dataset: { phase: p } }, `${p}: ${n}`)));
  }, fail));
  stops.push(watchList(`k8s/api/v1${nsPath}/events`, "fieldSelector=type%3DWarning", items => {
    const recent = [...items.values()].sort((a, b) => new Date(b.lastTimestamp || b.eventTime || b.metadata.creationTimestamp) - new Date(a.lastTimestamp || a.eventTime || a.metadata.creationTimestamp)).slice(0, 15);
    replace(warnings, recent.map(e => h("tr", {},
      h("td", {}, age(e.lastTimestamp || e.eventTime || e.metadata.creationTimestamp)),
      h("td", {}, `${e.involvedObject.kind}/${e.involvedObject.namespace ? e.involvedObject.namespace + "/" : ""}${e.involvedObject.name}`),
      h("td", {}, e.reason), h("td", {}, e.message))));
  }, fail));
  if (state.canListKubeSystem) {
    stops.push(watchList("k8s/apis/apps/v1/namespaces/kube-system/deployments", "", items => {
      replace(addonBody, addons.filter(a => items.has("kube-system/" + a)).map(a => {
        const d = items.get("kube-system/" + a);
        const ok = (d.status.readyReplicas || 0) >= (d.spec.replicas ?? 1) && (d.spec.replicas ?? 1) > 0;
        return h("tr", {}, h("td", {}, a), h("td", { class: ok ? "ok" : "bad" }, `${d.status.readyReplicas || 0}/${d.spec.replicas ?? 1}`));
      }));
    }, fail));
  }
  return () => { clearInterval(timer); stops.forEach(s => s()); };
}

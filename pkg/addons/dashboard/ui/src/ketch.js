// What only a ketch cluster has: the LoadBalancer ports servicelb hands out, local-path
// volumes, the manifests dir's addons, the images on each node, and the join command.
import { call, can, watchList } from "./api.js";
import { h, replace, bytes, age } from "./dom.js";

const table = (headers, body, attrs = {}) => h("table", attrs, h("thead", {}, h("tr", {}, headers.map(c => h("th", {}, c)))), body);

// The LoadBalancer port map: each port a LoadBalancer Service holds on which node IPs, and the
// clashes servicelb reported (Warning PortConflict on the Service that did not get its port).
export function loadBalancers(view) {
  const body = h("tbody");
  const clashes = h("tbody");
  const errors = h("p", { class: "error", role: "alert" });
  replace(view, h("h2", {}, "LoadBalancer ports"),
    h("p", {}, "servicelb serves each LoadBalancer Service at its ports on the node IPs in its status; a port one Service holds on a node is not given to another."),
    table(["Port", "Service", "Node IPs", "Target"], body, { id: "lb-ports" }),
    h("h2", {}, "Clashes"), table(["Service", "Age", "Message"], clashes, { id: "lb-clashes" }), errors);
  let services = new Map();
  let events = new Map();
  const draw = () => {
    const rows = [];
    for (const s of services.values()) {
      if (s.spec.type !== "LoadBalancer") continue;
      const ips = ((s.status.loadBalancer || {}).ingress || []).map(i => i.ip || i.hostname);
      for (const p of s.spec.ports || []) {
        rows.push({ port: `${p.port}/${p.protocol || "TCP"}`, svc: `${s.metadata.namespace}/${s.metadata.name}`, ips: ips.length ? ips.join(", ") : "none (pending)", target: String(p.targetPort ?? p.port), pending: !ips.length });
      }
    }
    rows.sort((a, b) => parseInt(a.port, 10) - parseInt(b.port, 10) || a.svc.localeCompare(b.svc));
    replace(body, rows.map(r => h("tr", { class: r.pending ? "bad" : "" }, h("td", {}, r.port), h("td", {}, r.svc), h("td", {}, r.ips), h("td", {}, r.target))));
    const latest = new Map();
    for (const e of events.values()) {
      if (e.reason !== "PortConflict" || e.involvedObject.kind !== "Service") continue;
      const key = `${e.involvedObject.namespace}/${e.involvedObject.name}`;
      const s = services.get(key);
      if (!s || ((s.status.loadBalancer || {}).ingress || []).length) continue; // resolved since
      const t = e.lastTimestamp || e.eventTime || e.metadata.creationTimestamp;
      if (!latest.has(key) || new Date(t) > new Date(latest.get(key).t)) latest.set(key, { t, msg: e.message });
    }
    replace(clashes, [...latest.entries()].map(([k, v]) => h("tr", { class: "bad" }, h("td", {}, k), h("td", {}, age(v.t)), h("td", {}, v.msg))));
  };
  const fail = e => { errors.textContent = e.message; };
  const stops = [
    watchList("k8s/api/v1/services", "", got => { services = got; draw(); }, fail),
    watchList("k8s/api/v1/events", "fieldSelector=reason%3DPortConflict", got => { events = got; draw(); }, fail),
  ];
  return () => stops.forEach(s => s());
}

// Local-path volumes: claim, node, directory and the space the kubelet measured.
export function volumes(view) {
  const body = h("tbody");
  const errors = h("p", { class: "error", role: "alert" });
  replace(view, h("h2", {}, "Local-path volumes"), table(["Volume", "Claim", "Node", "Directory", "Capacity", "Used"], body, { id: "volumes" }), errors);
  (async () => {
    const pvs = (await call("k8s/api/v1/persistentvolumes")).items.filter(v => (v.metadata.annotations || {})["pv.kubernetes.io/provisioned-by"] === "ketch.io/local-path" || (v.spec.storageClassName === "local-path" && v.spec.hostPath));
    const used = {};
    const nodes = new Set(pvs.map(nodeOf).filter(n => n));
    for (const n of nodes) {
      try {
        const s = await call(`k8s/api/v1/nodes/${encodeURIComponent(n)}/proxy/stats/summary`);
        for (const p of s.pods || []) for (const v of p.volume || []) if (v.pvcRef) used[`${v.pvcRef.namespace}/${v.pvcRef.name}`] = v.usedBytes;
      } catch (e) { /* no right to the node's stats: the column says n/a */ }
    }
    replace(body, pvs.map(v => {
      const claim = v.spec.claimRef ? `${v.spec.claimRef.namespace}/${v.spec.claimRef.name}` : "";
      return h("tr", {}, h("td", {}, v.metadata.name), h("td", {}, claim), h("td", {}, nodeOf(v) || ""),
        h("td", {}, (v.spec.hostPath || {}).path || ""), h("td", {}, (v.spec.capacity || {}).storage || ""),
        h("td", {}, used[claim] !== undefined ? bytes(used[claim]) : "n/a"));
    }));
  })().catch(e => { errors.textContent = e.message; });
  return () => {};
}

function nodeOf(pv) {
  const terms = (((pv.spec.nodeAffinity || {}).required || {}).nodeSelectorTerms || []);
  for (const t of terms) for (const e of t.matchExpressions || []) if (e.key === "kubernetes.io/hostname") return (e.values || [])[0];
  return "";
}

// The images each node holds (the kubelet reports them in the Node's status).
export function images(view) {
  const body = h("tbody");
  const errors = h("p", { class: "error", role: "alert" });
  replace(view, h("h2", {}, "Images on the nodes"), table(["Node", "Image", "Size"], body, { id: "images" }), errors);
  const stop = watchList("k8s/api/v1/nodes", "", nodes => {
    const rows = [];
    for (const n of nodes.values()) {
      for (const i of n.status.images || []) {
        const name = (i.names || []).find(x => !x.includes("@sha256:")) || (i.names || [])[0] || "";
        rows.push(h("tr", {}, h("td", {}, n.metadata.name), h("td", {}, name), h("td", {}, bytes(i.sizeBytes || 0))));
      }
    }
    replace(body, rows);
  }, e => { errors.textContent = e.message; });
  return stop;
}

// The manifests dir: each file the server applies, whether its content applied, and the last
// failure the deployer reported for it.
export function manifests(view) {
  const body = h("tbody");
  const errors = h("p", { class: "error", role: "alert" });
  replace(view, h("h2", {}, "Manifests"), h("p", {}, "Files in the server's manifests dir (<data-dir>/server/manifests), applied by the server as they change."),
    table(["File", "State", "Objects", "Last problem"], body, { id: "manifests" }), errors);
  let records = new Map();
  let events = new Map();
  const draw = () => {
    replace(body, [...records.values()].sort((a, b) => fileOf(a).localeCompare(fileOf(b))).map(cm => {
      const problems = [...events.values()].filter(e => e.involvedObject.kind === "ConfigMap" && e.involvedObject.name === cm.metadata.name && e.type === "Warning")
        .sort((a, b) => new Date(b.lastTimestamp || b.metadata.creationTimestamp) - new Date(a.lastTimestamp || a.metadata.creationTimestamp));
      const applied = !!(cm.metadata.annotations || {})["ketch.io/manifest-sha256"];
      const last = problems[0];
      const failing = last && (!applied || new Date(last.lastTimestamp || last.metadata.creationTimestamp) > new Date(cm.metadata.creationTimestamp));
      let objects = 0;
      try { objects = JSON.parse((cm.data || {}).objects || "[]").length; } catch (e) { /* left at 0 */ }
      return h("tr", { class: failing ? "bad" : "" }, h("td", {}, fileOf(cm)), h("td", {}, failing ? `failed (${last.reason})` : applied ? "applied" : "pending"),
        h("td", {}, objects), h("td", {}, last ? `${age(last.lastTimestamp || last.metadata.creationTimestamp)} ago: ${last.message}` : ""));
    }));
  };
  const fail = e => { errors.textContent = e.message; };
  const stops = [
    watchList("k8s/api/v1/namespaces/kube-system/configmaps", "labelSelector=ketch.io%2Fmanifest%3Dtrue", got => { records = got; draw(); }, fail),
    watchList("k8s/api/v1/namespaces/kube-system/events", "fieldSelector=involvedObject.kind%3DConfigMap", got => { events = got; draw(); }, fail),
  ];
  return () => stops.forEach(s => s());
}

function fileOf(cm) { return (cm.metadata.annotations || {})["ketch.io/manifest-file"] || cm.metadata.name; }

// The join command for a new agent: a fresh agent token (a bootstrap-token Secret, as
// `ketch token create` makes) and the hash of the server CA that this page was served under.
export function join(view) {
  const out = h("pre", { class: "join", "aria-label": "join command" });
  const ttl = h("select", { "aria-label": "expires" }, [["1h", 3600], ["24h", 86400], ["7d", 604800], ["never", 0]].map(([l, s]) => h("option", { value: s }, l)));
  ttl.value = "86400";
  const button = h("button", { class: "primary", dataset: { action: "join-token" } }, "Make a join token");
  const errors = h("p", { class: "error", role: "alert" });
  replace(view, h("h2", {}, "Add a node"), h("p", {}, "Run the command on the new machine, after installing ketch there."),
    h("div", { class: "toolbar" }, h("label", {}, "Token expires after ", ttl), button), out, errors);
  can("create", "", "secrets", "kube-system").then(ok => { if (!ok) { button.hidden = true; errors.textContent = "You may not make join tokens (create Secrets in kube-system)."; } });
  button.addEventListener("click", async () => {
    errors.textContent = "";
    try {
      const id = random(6), secret = random(16);
      const data = { "token-id": id, "token-secret": secret, description: "made in the dashboard" };
      if (ttl.value !== "0") data.expiration = new Date(Date.now() + parseInt(ttl.value, 10) * 1000).toISOString().replace(/\.\d+Z$/, "Z");
      await call("k8s/api/v1/namespaces/kube-system/secrets", { method: "POST", body: {
        apiVersion: "v1", kind: "Secret", type: "bootstrap.kubernetes.io/token",
        metadata: { name: "bootstrap-token-" + id, namespace: "kube-system" },
        stringData: data,
      } });
      // The server CA as agents fetch it; the same connection as the page's other requests.
      const ca = await (await call("../cacerts", { raw: true, headers: { Accept: "*/*" } })).arrayBuffer();
      const hash = [...new Uint8Array(await crypto.subtle.digest("SHA-256", ca))].map(b => b.toString(16).padStart(2, "0")).join("");
      out.textContent = `ketch agent --server https://${location.host} --token K10${hash}::${id}.${secret}`;
    } catch (e) { errors.textContent = e.message; }
  });
  return () => {};
}

function random(n) {
  const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789";
  const b = crypto.getRandomValues(new Uint8Array(n));
  return [...b].map(x => alphabet[x % alphabet.length]).join("");
}

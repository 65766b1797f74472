// CPU and memory of the nodes and pods from metrics-server, with the last hour kept in the
// page's memory (polled every 10 s while the dashboard is open) and drawn as charts.
import { Chart, LineController, LineElement, PointElement, LinearScale, CategoryScale, Legend, Tooltip } from "chart.js";
import { call } from "./api.js";
import { h, replace, quantity, bytes, cores } from "./dom.js";

Chart.register(LineController, LineElement, PointElement, LinearScale, CategoryScale, Legend, Tooltip);

const keep = 360; // an hour of 10-second samples
const history = { times: [], nodes: {}, pods: {} };
let poller = null;

async function sample() {
  const t = new Date().toLocaleTimeString();
  const [n, p] = await Promise.all([
    call("k8s/apis/metrics.k8s.io/v1beta1/nodes").catch(() => ({ items: [] })),
    call("k8s/apis/metrics.k8s.io/v1beta1/pods").catch(() => ({ items: [] })),
  ]);
  history.times.push(t);
  const add = (map, key, usage) => {
    const s = map[key] || (map[key] = { cpu: [], memory: [] });
    s.cpu.push(quantity(usage.cpu));
    s.memory.push(quantity(usage.memory));
  };
  for (const i of n.items) add(history.nodes, i.metadata.name, i.usage);
  for (const i of p.items) {
    const usage = (i.containers || []).reduce((u, c) => ({ cpu: u.cpu + quantity(c.usage.cpu), memory: u.memory + quantity(c.usage.memory) }), { cpu: 0, memory: 0 });
    add(history.pods, `${i.metadata.namespace}/${i.metadata.name}`, { cpu: String(usage.cpu), memory: String(usage.memory) });
  }
  // Pad series that missed samples so every series lines up with the times, and keep an hour.
  for (const map of [history.nodes, history.pods]) {
    for (const s of Object.values(map)) {
      for (const k of ["cpu", "memory"]) {
        while (s[k].length < history.times.length) s[k].unshift(null);
        if (s[k].length > keep) s[k].splice(0, s[k].length - keep);
      }
    }
  }
  if (history.times.length > keep) history.times.splice(0, history.times.length - keep);
}

// startSampling keeps the history while the dashboard is open in this tab.
export function startSampling() {
  if (poller) return;
  sample();
  poller = setInterval(sample, 10000);
}

export function metrics(view) {
  const cpuCanvas = h("canvas", { "aria-label": "node CPU" });
  const memCanvas = h("canvas", { "aria-label": "node memory" });
  const top = h("tbody");
  replace(view, h("h2", {}, "Metrics"),
    h("div", { class: "charts" }, h("figure", {}, h("figcaption", {}, "Node CPU (cores)"), cpuCanvas), h("figure", {}, h("figcaption", {}, "Node memory (MiB)"), memCanvas)),
    h("h2", {}, "Pods using the most memory"),
    h("table", { id: "top-pods" }, h("thead", {}, h("tr", {}, h("th", {}, "Pod"), h("th", {}, "CPU"), h("th", {}, "Memory"))), top));
  const chart = (canvas, key, scale) => new Chart(canvas, {
    type: "line",
    data: { labels: history.times, datasets: Object.entries(history.nodes).map(([n, s]) => ({ label: n, data: s[key].map(v => v === null ? null : v * scale), pointRadius: 0, borderWidth: 2 })) },
    options: { animation: false, responsive: true, scales: { y: { beginAtZero: true } } },
  });
  let charts = [];
  const draw = () => {
    charts.forEach(c => c.destroy());
    charts = [chart(cpuCanvas, "cpu", 1), chart(memCanvas, "memory", 1 / 1048576)];
    const last = Object.entries(history.pods).map(([k, s]) => [k, s.cpu[s.cpu.length - 1], s.memory[s.memory.length - 1]])
      .filter(r => r[2] !== null).sort((a, b) => b[2] - a[2]).slice(0, 20);
    replace(top, last.map(([k, c, m]) => h("tr", {}, h("td", {}, k), h("td", {}, cores(c)), h("td", {}, bytes(m)))));
  };
  draw();
  const timer = setInterval(draw, 10000);
  return () => { clearInterval(timer); charts.forEach(c => c.destroy()); };
}

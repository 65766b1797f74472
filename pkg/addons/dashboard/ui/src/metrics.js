// CPU and memory of the nodes and pods over the last hour, from the history the dashboard keeps
// (it samples metrics-server every 10 s while someone who may read the metrics is logged in),
// drawn as charts.
import { Chart, LineController, LineElement, PointElement, LinearScale, CategoryScale, Legend, Tooltip } from "chart.js";
import { call } from "./api.js";
import { h, replace, bytes, cores } from "./dom.js";

Chart.register(LineController, LineElement, PointElement, LinearScale, CategoryScale, Legend, Tooltip);

const palette = ["#2456c7", "#1b7f3b", "#b35c00", "#8a2be2", "#b00020", "#00838f", "#6d4c41", "#c2185b"];

export function metrics(view) {
  const cpuCanvas = h("canvas", { "aria-label": "node CPU" });
  const memCanvas = h("canvas", { "aria-label": "node memory" });
  const top = h("tbody");
  const note = h("p", { class: "message", id: "metrics-note" });
  replace(view, h("h2", {}, "Metrics"), note,
    h("div", { class: "charts" }, h("figure", {}, h("figcaption", {}, "Node CPU (cores)"), cpuCanvas), h("figure", {}, h("figcaption", {}, "Node memory (MiB)"), memCanvas)),
    h("h2", {}, "Pods using the most memory"),
    h("table", { id: "top-pods" }, h("thead", {}, h("tr", {}, h("th", {}, "Pod"), h("th", {}, "CPU"), h("th", {}, "Memory"), h("th", {}, "Memory, last hour's peak"))), top));
  const chart = (canvas, labels, nodes, key, scale) => new Chart(canvas, {
    type: "line",
    data: {
      labels,
      datasets: Object.entries(nodes).sort().map(([n, s], i) => ({
        label: n, data: s[key].map(v => v === null ? null : v * scale), pointRadius: 0, borderWidth: 2, spanGaps: true,
        borderColor: palette[i % palette.length], backgroundColor: palette[i % palette.length],
      })),
    },
    options: { animation: false, responsive: true, scales: { y: { beginAtZero: true } } },
  });
  let charts = [];
  const draw = async () => {
    let hist;
    try {
      hist = await call("api/metrics");
    } catch (e) {
      note.textContent = e.message;
      note.className = "message error";
      return;
    }
    const n = hist.times.length;
    note.className = "message";
    note.textContent = n ? `${n} samples, every 10 s, since ${new Date(hist.times[0] * 1000).toLocaleTimeString()}` : "No sample yet: the first comes within 10 s.";
    const labels = hist.times.map(t => new Date(t * 1000).toLocaleTimeString());
    charts.forEach(c => c.destroy());
    charts = [chart(cpuCanvas, labels, hist.nodes, "cpu", 1), chart(memCanvas, labels, hist.nodes, "memory", 1 / 1048576)];
    const last = v => { for (let i = v.length - 1; i >= 0; i--) if (v[i] !== null) return v[i]; return null; };
    const rows = Object.entries(hist.pods).map(([k, s]) => [k, last(s.cpu), last(s.memory), Math.max(...s.memory.filter(v => v !== null))])
      .filter(r => r[2] !== null).sort((a, b) => b[2] - a[2]).slice(0, 20);
    replace(top, rows.map(([k, c, m, peak]) => h("tr", { dataset: { pod: k } }, h("td", {}, k), h("td", {}, cores(c)), h("td", {}, bytes(m)), h("td", {}, bytes(peak)))));
  };
  draw();
  const timer = setInterval(draw, 10000);
  return () => { clearInterval(timer); charts.forEach(c => c.destroy()); };
}

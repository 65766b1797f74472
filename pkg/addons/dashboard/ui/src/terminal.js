// A terminal into a container: xterm.js over the API's exec WebSocket (channel protocol:
// the first byte of each message is the stream, 0 stdin, 1 stdout, 2 stderr, 3 the status,
// 4 a resize).
import { Terminal } from "@xterm/xterm";
import { FitAddon } from "@xterm/addon-fit";
import { execSocket } from "./api.js";

export function openTerminal(parent, namespace, pod, container, onStatus) {
  const term = new Terminal({ cursorBlink: true, fontSize: 13, convertEol: false });
  const fit = new FitAddon();
  term.loadAddon(fit);
  term.open(parent);
  fit.fit();
  const ws = execSocket(namespace, pod, container, ["sh", "-c", "command -v bash >/dev/null && exec bash || exec sh"]);
  const enc = new TextEncoder();
  const send = (channel, data) => {
    if (ws.readyState !== WebSocket.OPEN) return;
    const bytes = typeof data === "string" ? enc.encode(data) : data;
    const msg = new Uint8Array(bytes.length + 1);
    msg[0] = channel;
    msg.set(bytes, 1);
    ws.send(msg);
  };
  const resize = () => send(4, JSON.stringify({ Width: term.cols, Height: term.rows }));
  ws.onopen = () => { onStatus("connected"); resize(); term.focus(); };
  ws.onmessage = ev => {
    const data = new Uint8Array(ev.data);
    if (data.length === 0) return;
    if (data[0] === 1 || data[0] === 2) term.write(data.subarray(1));
    else if (data[0] === 3) {
      const status = new TextDecoder().decode(data.subarray(1));
      try {
        const s = JSON.parse(status);
        onStatus(s.status === "Success" ? "the shell ended" : (s.message || status));
      } catch (e) { onStatus(status); }
    }
  };
  ws.onerror = () => onStatus("the terminal's connection failed");
  ws.onclose = ev => onStatus(ev.code === 1000 ? "closed" : `closed (${ev.code}${ev.reason ? ": " + ev.reason : ""})`);
  term.onData(d => send(0, d));
  term.onResize(resize);
  const onWindow = () => fit.fit();
  window.addEventListener("resize", onWindow);
  return () => { window.removeEventListener("resize", onWindow); ws.close(); term.dispose(); };
}

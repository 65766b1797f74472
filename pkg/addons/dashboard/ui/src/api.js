// The dashboard's own endpoints and the Kubernetes API, which the dashboard calls with the
// logged-in user's token: the page never holds the token, only the session cookie (HttpOnly)
// and the CSRF token it sends with every change.

export const session = { user: "", csrf: "" };

export class APIError extends Error {
  constructor(status, message, body) {
    super(message);
    this.status = status;
    this.body = body;
  }
}

// call sends a request to a path relative to /dashboard/ and returns its JSON (or text).
export async function call(path, { method = "GET", body, headers = {}, raw = false, signal } = {}) {
  const h = Object.assign({ Accept: "application/json" }, headers);
  if (method !== "GET") h["X-CSRF-Token"] = session.csrf;
  if (body !== undefined && typeof body !== "string") {
    body = JSON.stringify(body);
    h["Content-Type"] = h["Content-Type"] || "application/json";
  }
  let resp;
  try {
    resp = await fetch(path, { method, body, headers: h, credentials: "same-origin", signal });
  } catch (e) {
    // A GET that failed on the network (a connection that dropped) is tried once more; a change
    // is not, since it may have reached the API.
    if (method !== "GET" || (signal && signal.aborted)) throw e;
    await new Promise(r => setTimeout(r, 300));
    resp = await fetch(path, { method, body, headers: h, credentials: "same-origin", signal });
  }
  if (raw && resp.ok) return resp;
  const text = await resp.text();
  let data = text;
  try { data = text ? JSON.parse(text) : {}; } catch (e) { /* not JSON */ }
  if (!resp.ok) {
    const msg = (data && (data.message || data.error)) || text || resp.statusText;
    if (resp.status === 401 && path.startsWith("k8s/")) onLoggedOut();
    throw new APIError(resp.status, msg, data);
  }
  return data;
}

let loggedOut = () => {};
export function onLogout(fn) { loggedOut = fn; }
function onLoggedOut() { loggedOut(); }

export async function login(token) {
  const s = await call("api/login", { method: "POST", body: { token } });
  Object.assign(session, s);
  return s;
}

export async function loadSession() {
  const s = await call("api/session");
  Object.assign(session, s);
  return s;
}

export async function logout() {
  try { await call("api/logout", { method: "POST" }); } finally { session.user = ""; session.csrf = ""; }
}

// The API path of a resource: group "" is the core group.
export function resourcePath(r, namespace, name, sub) {
  let p = r.group ? `k8s/apis/${r.group}/${r.version}` : `k8s/api/${r.version}`;
  if (r.namespaced && namespace) p += `/namespaces/${encodeURIComponent(namespace)}`;
  p += `/${r.name}`;
  if (name) p += `/${encodeURIComponent(name)}`;
  if (sub) p += `/${sub}`;
  return p;
}

// discover lists every resource the API serves (CRDs included), from aggregated discovery.
export async function discover() {
  const accept = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json";
  const out = [];
  for (const root of ["k8s/api", "k8s/apis"]) {
    const list = await call(root, { headers: { Accept: accept } });
    for (const g of list.items || []) {
      const group = g.metadata.name || "";
      const v = (g.versions || [])[0];
      if (!v) continue;
      for (const r of v.resources || []) {
        out.push({
          group, version: v.version, name: r.resource, kind: r.responseKind ? r.responseKind.kind : r.resource,
          namespaced: r.scope === "Namespaced", verbs: r.verbs || [],
          subresources: (r.subresources || []).map(s => s.subresource),
        });
      }
    }
  }
  return out.sort((a, b) => a.kind.localeCompare(b.kind) || a.group.localeCompare(b.group));
}

// can asks the API whether the user may do verb on a resource (SelfSubjectAccessReview),
// remembering the answer for the session's life.
const accessCache = new Map();
export async function can(verb, group, resource, namespace = "", subresource = "", name = "") {
  const key = [verb, group, resource, namespace, subresource, name].join("|");
  if (!accessCache.has(key)) {
    accessCache.set(key, call("k8s/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", {
      method: "POST",
      body: {
        apiVersion: "authorization.k8s.io/v1", kind: "SelfSubjectAccessReview",
        spec: { resourceAttributes: { verb, group, resource, namespace, subresource, name } },
      },
    }).then(r => !!(r.status && r.status.allowed)).catch(() => false));
  }
  return accessCache.get(key);
}
export function forgetAccess() { accessCache.clear(); }

// readLines streams a response body line by line to onLine until it ends or signal aborts.
async function readLines(resp, onLine) {
  const reader = resp.body.getReader();
  const decoder = new TextDecoder();
  let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += decoder.decode(value, { stream: true });
    let i;
    while ((i = buf.indexOf("\n")) >= 0) {
      onLine(buf.slice(0, i));
      buf = buf.slice(i + 1);
    }
  }
  if (buf) onLine(buf);
}

// watchList keeps a live list: it lists, then watches from the list's resourceVersion, and
// calls onChange with the items (a Map by namespace/name) after each change. It lists again
// when the watch ends or its version is too old. It returns a function that stops it.
export function watchList(path, query, onChange, onError) {
  const ctl = new AbortController();
  const items = new Map();
  const key = o => (o.metadata.namespace || "") + "/" + o.metadata.name;
  let scheduled = false;
  const changed = () => {
    if (scheduled) return;
    scheduled = true;
    requestAnimationFrame(() => { scheduled = false; onChange(items); });
  };
  const q = query ? "&" + query : "";
  (async () => {
    while (!ctl.signal.aborted) {
      try {
        const list = await call(`${path}?limit=5000${q}`, { signal: ctl.signal });
        items.clear();
        for (const o of list.items || []) items.set(key(o), o);
        changed();
        const resp = await call(`${path}?watch=1&allowWatchBookmarks=true&resourceVersion=${list.metadata.resourceVersion}${q}`, { raw: true, signal: ctl.signal });
        let gone = false;
        await readLines(resp, line => {
          if (!line) return;
          const ev = JSON.parse(line);
          if (ev.type === "ERROR") { gone = true; return; }
          if (ev.type === "BOOKMARK") return;
          if (ev.type === "DELETED") items.delete(key(ev.object));
          else items.set(key(ev.object), ev.object);
          changed();
        });
        if (!gone) await new Promise(r => setTimeout(r, 500));
      } catch (e) {
        if (ctl.signal.aborted) return;
        if (onError) onError(e);
        if (e.status === 401 || e.status === 403 || e.status === 404) return;
        await new Promise(r => setTimeout(r, 2000));
      }
    }
  })();
  return () => ctl.abort();
}

// streamText follows a text stream (pod logs) line by line.
export async function streamText(path, onLine, signal) {
  const resp = await call(path, { raw: true, signal, headers: { Accept: "*/*" } });
  await readLines(resp, onLine);
}

// execSocket opens a terminal's WebSocket to the API's exec (channel protocol v5, v4).
export function execSocket(namespace, pod, container, command) {
  const params = new URLSearchParams({ container, stdin: "true", stdout: "true", stderr: "true", tty: "true", csrf: session.csrf });
  for (const c of command) params.append("command", c);
  const url = new URL(`k8s/api/v1/namespaces/${encodeURIComponent(namespace)}/pods/${encodeURIComponent(pod)}/exec?${params}`, location.href);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  const ws = new WebSocket(url, ["v5.channel.k8s.io", "v4.channel.k8s.io"]);
  ws.binaryType = "arraybuffer";
  return ws;
}

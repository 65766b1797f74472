// The dashboard's page: log in, then a navigation of what the user may see, and one view at a
// time, chosen by the URL's fragment (#/...).
import "@xterm/xterm/css/xterm.css";
import "./style.css";
import { session, login, loadSession, logout, discover, can, forgetAccess, watchList, onLogout } from "./api.js";
import { h, replace } from "./dom.js";
import { common } from "./columns.js";
import { overview } from "./overview.js";
import { list, resourceKey } from "./list.js";
import { detail } from "./detail.js";
import { create } from "./create.js";
import { loadBalancers, volumes, images, manifests, join } from "./ketch.js";
import { metrics } from "./metrics.js";

const state = { resources: [], visible: [], ns: "", namespaces: [], clusterWide: false, canListKubeSystem: false, search: "", tab: "" };
const app = document.getElementById("app");
let stopView = () => {};
let stopNamespaces = () => {};

function loginView(message) {
  stopView();
  stopNamespaces();
  const token = h("textarea", { id: "token", rows: "5", autocomplete: "off", spellcheck: "false", "aria-label": "token" });
  const error = h("p", { class: "error", role: "alert", id: "login-error" }, message || "");
  const form = h("form", { id: "login-form" },
    h("label", { for: "token" }, "Bearer token"), token, h("button", { type: "submit", class: "primary" }, "Log in"));
  form.addEventListener("submit", async ev => {
    ev.preventDefault();
    error.textContent = "";
    try {
      await login(token.value);
      token.value = "";
      await start();
    } catch (e) {
      error.textContent = e.message;
    }
  });
  replace(app, h("section", { class: "login" }, h("h1", {}, "ketch dashboard"),
    h("p", {}, "Log in with a bearer token. On a server, ", h("code", {}, "ketch dashboard"), " prints one that expires in an hour; any ServiceAccount's token works too, with that account's rights."),
    form, error));
  token.focus();
}

async function start() {
  try {
    await loadSession();
  } catch (e) {
    return loginView();
  }
  forgetAccess();
  const all = await discover().catch(() => []);
  state.resources = all.filter(r => !r.name.includes("/") && r.verbs.includes("list"));
  state.clusterWide = await can("list", "", "nodes");
  state.canListKubeSystem = await can("list", "apps", "deployments", "kube-system");
  const listNamespaces = await can("list", "", "namespaces");
  // A user who may not list namespaces works in one: a ServiceAccount's own, or default.
  const sa = /^system:serviceaccount:([^:]+):/.exec(session.user);
  state.ns = listNamespaces ? (sessionStorage.getItem("ns") ?? "") : (sa ? sa[1] : "default");
  shell(listNamespaces);
}

function shell(listNamespaces) {
  const nav = h("nav", { "aria-label": "navigation" });
  const nsSelect = listNamespaces
    ? h("select", { id: "namespace", "aria-label": "namespace" }, h("option", { value: "" }, "All namespaces"))
    : h("span", { id: "namespace", class: "fixed-ns" }, "Namespace: " + state.ns);
  const view = h("div", { id: "view" });
  replace(app,
    h("header", {}, h("a", { href: "#/", class: "brand" }, "ketch"), nsSelect, h("span", { id: "user" }, session.user),
      h("button", { id: "logout", onclick: async () => { await logout(); location.hash = "#/"; loginView("Logged out."); } }, "Log out")),
    h("div", { class: "body" }, nav, h("main", {}, view)));
  if (listNamespaces) {
    nsSelect.value = state.ns;
    nsSelect.addEventListener("change", () => { state.ns = nsSelect.value; sessionStorage.setItem("ns", state.ns); buildNav(nav).then(route); });
    stopNamespaces = watchList("k8s/api/v1/namespaces", "", items => {
      const names = [...items.values()].map(n => n.metadata.name).sort();
      replace(nsSelect, h("option", { value: "" }, "All namespaces"), names.map(n => h("option", { value: n }, n)));
      nsSelect.value = names.includes(state.ns) ? state.ns : "";
    });
  }
  buildNav(nav).then(route);
}

// buildNav lists the views and the resources the user may list in the chosen namespace.
async function buildNav(nav) {
  const allowed = await Promise.all(state.resources.map(r => can("list", r.group, r.name, r.namespaced ? state.ns : "")));
  state.visible = state.resources.filter((r, i) => allowed[i]);
  const link = (href, text) => h("li", {}, h("a", { href }, text));
  const byKey = new Map(state.visible.map(r => [`${r.group}/${r.name}`, r]));
  const commonList = common.map(([name, group]) => byKey.get(`${group}/${name}`)).filter(r => r);
  const rest = state.visible.filter(r => !commonList.includes(r));
  replace(nav,
    h("ul", {}, link("#/", "Overview"), link("#/metrics", "Metrics"), link("#/create", "Create")),
    h("h3", {}, "ketch"),
    h("ul", {}, state.clusterWide && link("#/ketch/loadbalancers", "LoadBalancer ports"), state.clusterWide && link("#/ketch/volumes", "Local-path volumes"),
      state.clusterWide && link("#/ketch/images", "Images"), state.canListKubeSystem && link("#/ketch/manifests", "Manifests"), link("#/ketch/join", "Add a node")),
    h("h3", {}, "Resources"),
    h("ul", { id: "resources" }, commonList.map(r => link(`#/list/${resourceKey(r)}`, r.kind))),
    h("details", {}, h("summary", {}, `All resources (${rest.length} more)`),
      h("ul", {}, rest.map(r => link(`#/list/${resourceKey(r)}`, r.kind + (r.group ? ` (${r.group})` : ""))))));
}

function findResource(group, name) {
  group = group === "core" ? "" : group;
  return state.resources.find(r => r.group === group && r.name === name);
}

function route() {
  const view = document.getElementById("view");
  if (!view) return;
  stopView();
  stopView = () => {};
  const parts = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  const go = hash => { location.hash = hash; };
  const notFound = () => replace(view, h("p", { class: "error" }, "There is no such page: " + location.hash));
  switch (parts[0]) {
    case "":
      stopView = overview(view, state);
      break;
    case "metrics":
      stopView = metrics(view, state);
      break;
    case "create":
      stopView = create(view, state);
      break;
    case "ketch": {
      const pages = { loadbalancers: loadBalancers, volumes, images, manifests, join };
      if (pages[parts[1]]) stopView = pages[parts[1]](view, state);
      else notFound();
      break;
    }
    case "list": {
      const r = findResource(parts[1], parts[2]);
      if (r) stopView = list(view, state, r);
      else notFound();
      break;
    }
    case "obj": {
      const r = findResource(parts[1], parts[2]);
      state.tab = parts[5] || "";
      if (r) stopView = detail(view, state, r, parts[3] === "_" ? "" : parts[3], parts[4], go);
      else notFound();
      break;
    }
    default:
      notFound();
  }
}

window.addEventListener("hashchange", route);
onLogout(() => loginView("Your session ended (it expired, or the token was revoked): log in again."));
start();

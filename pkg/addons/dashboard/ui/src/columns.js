// Columns of the common kinds' lists: [header, function of the object to its text]. Every
// other kind gets name, namespace and age.
import { age } from "./dom.js";

const ready = o => {
  const s = o.status || {};
  return `${s.readyReplicas || 0}/${(o.spec || {}).replicas ?? 0}`;
};
const cond = (o, type) => ((o.status || {}).conditions || []).find(c => c.type === type);
const podReady = p => {
  const cs = (p.status || {}).containerStatuses || [];
  return `${cs.filter(c => c.ready).length}/${(p.spec.containers || []).length}`;
};
const restarts = p => ((p.status || {}).containerStatuses || []).reduce((n, c) => n + (c.restartCount || 0), 0);
export function podStatus(p) {
  if (p.metadata.deletionTimestamp) return "Terminating";
  for (const c of (p.status || {}).containerStatuses || []) {
    if (c.state && c.state.waiting && c.state.waiting.reason) return c.state.waiting.reason;
    if (c.state && c.state.terminated && c.state.terminated.reason && p.status.phase !== "Succeeded") return c.state.terminated.reason;
  }
  return (p.status || {}).phase || "Pending";
}
const ports = s => ((s.spec || {}).ports || []).map(p => `${p.port}${p.nodePort ? ":" + p.nodePort : ""}/${p.protocol || "TCP"}`).join(", ");
const lbIngress = s => (((s.status || {}).loadBalancer || {}).ingress || []).map(i => i.ip || i.hostname).join(", ");
const roles = n => Object.keys(n.metadata.labels || {}).filter(l => l.startsWith("node-role.kubernetes.io/")).map(l => l.slice(24)).join(", ") || "<none>";
const internalIP = n => (((n.status || {}).addresses || []).find(a => a.type === "InternalIP") || {}).address || "";
const subjects = b => (b.subjects || []).map(s => `${s.kind}:${s.namespace ? s.namespace + "/" : ""}${s.name}`).join(", ");

export const columns = {
  Pod: [["Ready", podReady], ["Status", podStatus], ["Restarts", restarts], ["Node", p => p.spec.nodeName || ""], ["IP", p => (p.status || {}).podIP || ""]],
  Deployment: [["Ready", ready], ["Up-to-date", d => (d.status || {}).updatedReplicas || 0], ["Available", d => (d.status || {}).availableReplicas || 0]],
  StatefulSet: [["Ready", ready]],
  ReplicaSet: [["Desired", r => (r.spec || {}).replicas ?? 0], ["Current", r => (r.status || {}).replicas || 0], ["Ready", r => (r.status || {}).readyReplicas || 0]],
  DaemonSet: [["Desired", d => (d.status || {}).desiredNumberScheduled || 0], ["Current", d => (d.status || {}).currentNumberScheduled || 0], ["Ready", d => (d.status || {}).numberReady || 0]],
  Job: [["Completions", j => `${(j.status || {}).succeeded || 0}/${(j.spec || {}).completions ?? 1}`], ["Status", j => cond(j, "Complete") ? "Complete" : cond(j, "Failed") ? "Failed" : "Running"]],
  CronJob: [["Schedule", c => c.spec.schedule], ["Suspend", c => String(!!c.spec.suspend)], ["Active", c => ((c.status || {}).active || []).length], ["Last schedule", c => age((c.status || {}).lastScheduleTime)]],
  Service: [["Type", s => s.spec.type], ["Cluster IP", s => s.spec.clusterIP || ""], ["External IP", lbIngress], ["Ports", ports]],
  Ingress: [["Class", i => (i.spec || {}).ingressClassName || ""], ["Hosts", i => ((i.spec || {}).rules || []).map(r => r.host || "*").join(", ")], ["Address", lbIngress]],
  ConfigMap: [["Data", c => Object.keys(c.data || {}).length + Object.keys(c.binaryData || {}).length]],
  Secret: [["Type", s => s.type], ["Data", s => Object.keys(s.data || {}).length]],
  PersistentVolumeClaim: [["Status", c => (c.status || {}).phase || ""], ["Volume", c => c.spec.volumeName || ""], ["Capacity", c => ((c.status || {}).capacity || {}).storage || ""], ["Storage class", c => c.spec.storageClassName || ""]],
  PersistentVolume: [["Capacity", v => (v.spec.capacity || {}).storage || ""], ["Status", v => (v.status || {}).phase || ""], ["Claim", v => v.spec.claimRef ? `${v.spec.claimRef.namespace}/${v.spec.claimRef.name}` : ""], ["Storage class", v => v.spec.storageClassName || ""]],
  StorageClass: [["Provisioner", s => s.provisioner], ["Reclaim policy", s => s.reclaimPolicy || ""], ["Default", s => ((s.metadata.annotations || {})["storageclass.kubernetes.io/is-default-class"] === "true") ? "yes" : ""]],
  Node: [["Status", n => { const r = cond(n, "Ready"); return (r && r.status === "True" ? "Ready" : "NotReady") + (n.spec.unschedulable ? ",SchedulingDisabled" : ""); }], ["Roles", roles], ["Internal IP", internalIP], ["Version", n => ((n.status || {}).nodeInfo || {}).kubeletVersion || ""]],
  Namespace: [["Status", n => (n.status || {}).phase || ""]],
  Event: [["Type", e => e.type], ["Reason", e => e.reason], ["Object", e => `${e.involvedObject.kind}/${e.involvedObject.name}`], ["Message", e => e.message], ["Count", e => e.count || 1]],
  ServiceAccount: [["Secrets", s => (s.secrets || []).length]],
  Role: [["Rules", r => (r.rules || []).length]],
  ClusterRole: [["Rules", r => (r.rules || []).length]],
  RoleBinding: [["Role", b => `${b.roleRef.kind}/${b.roleRef.name}`], ["Subjects", subjects]],
  ClusterRoleBinding: [["Role", b => `${b.roleRef.kind}/${b.roleRef.name}`], ["Subjects", subjects]],
};

// The kinds the navigation lists first, in this order, by plural resource name and group.
export const common = [
  ["pods", ""], ["deployments", "apps"], ["statefulsets", "apps"], ["daemonsets", "apps"], ["replicasets", "apps"],
  ["jobs", "batch"], ["cronjobs", "batch"], ["services", ""], ["ingresses", "networking.k8s.io"], ["configmaps", ""],
  ["secrets", ""], ["persistentvolumeclaims", ""], ["persistentvolumes", ""], ["storageclasses", "storage.k8s.io"],
  ["nodes", ""], ["namespaces", ""], ["events", ""], ["serviceaccounts", ""], ["roles", "rbac.authorization.k8s.io"],
  ["rolebindings", "rbac.authorization.k8s.io"], ["clusterroles", "rbac.authorization.k8s.io"], ["clusterrolebindings", "rbac.authorization.k8s.io"],
];

#!/usr/bin/env bash
# Stops ketch and everything it started on this host: the ketch process, the containerd shims
# and the containers under them, their mounts, network namespaces and cgroups, the pod network
# links and the iptables chains of kube-proxy and the CNI plugins. Data in the data dir is kept,
# and so are the pods' logs under /var/log/pods, as with k3s.
#
# Environment (for several nodes on one machine, or tests): KETCH_DATA_DIR (default
# /var/lib/ketch), KETCH_RUN_DIR (default /run/ketch).
set -uo pipefail

data_dir=${KETCH_DATA_DIR:-/var/lib/ketch}
run_dir=${KETCH_RUN_DIR:-/run/ketch}
socket="$run_dir/containerd/containerd.sock"

[[ $(id -u) == 0 ]] || { echo "ketch-killall: run as root" >&2; exit 1; }

# descendants PID: every process below PID, deepest first.
descendants() {
  local child
  for child in $(pgrep -P "$1"); do
    descendants "$child"
    echo "$child"
  done
}

# 1. ketch itself: SIGTERM, then SIGKILL after 20 s.
pids=$(pgrep -f -- "^[^ ]*ketch (server|agent) (.* )?(--data-dir[ =]|-d )$data_dir( |$)" || true)
if [[ -z $pids && $data_dir == /var/lib/ketch ]]; then
  pids=$(pgrep -x ketch || true)
fi
if [[ -n $pids ]]; then
  kill -TERM $pids 2>/dev/null
  for _ in $(seq 200); do
    kill -0 $pids 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL $pids 2>/dev/null
fi

# 2. The shims of this node's containerd, and the containers below them.
for shim in $(pgrep -f -- " -id [0-9a-f]+ .*-address $socket( |$)" || true); do
  for pid in $(descendants "$shim") "$shim"; do
    kill -KILL "$pid" 2>/dev/null
  done
done

# 3. Mounts under the node's dirs, deepest first: volumes, overlay root file systems and the
# pods' network namespaces (containerd keeps them under the run dir).
for dir in "$data_dir" "$run_dir"; do
  awk -v d="$dir/" 'index($2, d) == 1 { print $2 }' /proc/self/mounts | sort -r | while read -r m; do
    umount -l "$m" 2>/dev/null
  done
done

# 4. Links the pod network created.
for link in cni0 flannel.1 flannel-v6.1 flannel-wg; do
  ip link delete "$link" 2>/dev/null
done

# 5. iptables chains of kube-proxy, the CNI plugins and flannel, in every table.
chains='-j (KUBE-|CNI-|FLANNEL-)|^:(KUBE-|CNI-|FLANNEL-)|^-A (KUBE-|CNI-|FLANNEL-)'
for cmd in iptables ip6tables; do
  command -v "$cmd-save" >/dev/null || continue
  rules=$("$cmd-save") || continue
  if grep -qE -- "$chains" <<<"$rules"; then
    grep -vE -- "$chains" <<<"$rules" | "$cmd-restore"
  fi
done

# 6. The pods' cgroups, in every hierarchy: kill what is left in them, then remove them deepest
# first. (cgroupfs driver: kubepods; systemd driver: kubepods.slice.)
for root in /sys/fs/cgroup /sys/fs/cgroup/*; do
  for top in "$root/kubepods" "$root/kubepods.slice"; do
    [[ -d $top ]] || continue
    for _ in 1 2 3; do
      pids=$(find "$top" -name cgroup.procs -exec cat {} + 2>/dev/null | sort -u)
      [[ -z $pids ]] && break
      kill -KILL $pids 2>/dev/null
      sleep 0.2
    done
    find "$top" -depth -type d -exec rmdir {} + 2>/dev/null
  done
done

rm -rf "$run_dir"
echo "ketch-killall: stopped ketch and cleaned up (data kept in $data_dir)"

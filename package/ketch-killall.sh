#!/bin/sh
# ketch-killall.sh stops one ketch node and everything it started on this host: the ketch process,
# the containerd shims and the containers under them, their mounts, network namespaces and
# cgroups, the pod network links and the iptables chains of kube-proxy and the CNI plugins. Data
# in the data dir is kept, and so are the pods' logs, as with k3s.
#
# Environment (for several nodes on one machine, or tests): KETCH_DATA_DIR (default
# /var/lib/ketch), KETCH_RUN_DIR (default /run/ketch). Every step touches only that node's
# processes, mounts, cgroups and files. Links and iptables chains belong to the network namespace
# the script runs in: with several nodes on one machine, run it inside the node's namespace
# (scripts/ketch-cluster.sh does: nsenter --net=/run/netns/NODE).
#
# POSIX sh: it runs on busybox hosts (Alpine) as well as under dash and bash, and reads /proc
# itself rather than relying on the options of one pgrep.

# PID lists are unquoted on purpose: one word per PID.
# shellcheck disable=SC2086
set -u

# Everything comes from the environment. An argument is a mistake (a --help would otherwise stop
# the default node): refuse it before anything is touched.
if [ $# -gt 0 ]; then
  echo "usage: [KETCH_DATA_DIR=DIR] [KETCH_RUN_DIR=DIR] ketch-killall.sh" >&2
  echo "ketch-killall: takes no arguments; it stops the node of those dirs (default /var/lib/ketch, /run/ketch) and everything it started" >&2
  exit 2
fi

data_dir=${KETCH_DATA_DIR:-/var/lib/ketch}
run_dir=${KETCH_RUN_DIR:-/run/ketch}
data_dir=${data_dir%/}
run_dir=${run_dir%/}
socket="$run_dir/containerd/containerd.sock"

[ "$(id -u)" = 0 ] || { echo "ketch-killall: run as root" >&2; exit 1; }

# alive PID: true while PID runs. PID 1 on some machines does not reap orphans, so a dead ketch
# can stay a zombie, on which `kill -0` still succeeds: read the state instead (Z, X: gone).
alive() {
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) } # the command name may contain spaces and ')'; the state follows the last ') '
  case ${stat%% *} in Z | X) return 1 ;; esac
  return 0
}

# processes: "PID PPID" for every process.
processes() {
  for f in /proc/[0-9]*/stat; do
    stat=$(cat "$f" 2>/dev/null) || continue
    pid=${stat%% *}
    rest=${stat##*) }
    rest=${rest#* } # the state
    echo "$pid ${rest%% *}"
  done
}

# descendants PID: every process below PID, deepest first.
descendants() {
  for child in $(processes | awk -v p="$1" '$2 == p { print $1 }'); do
    descendants "$child"
    echo "$child"
  done
}

# lock_holder FILE: the PID in a ketch lock file (pkg/lockfile) if that process still holds the
# lock on it, so that a stale file whose PID was reused never names an unrelated process.
lock_holder() {
  pid=$(cat "$1" 2>/dev/null) || return 0
  inode=$(stat -c %i "$1" 2>/dev/null) || return 0
  case $pid in '' | *[!0-9]*) return 0 ;; esac
  # /proc/locks: "1: FLOCK  ADVISORY  WRITE 1234 fd:01:5678 0 EOF"; the device:inode is the 6th.
  awk -v pid="$pid" -v ino="$inode" '$5 == pid && $6 ~ (":" ino "$") { found = 1 } END { exit !found }' /proc/locks &&
    echo "$pid"
}

# re STRING: STRING as a literal in an extended regular expression (paths may contain '.', '+').
re() { printf '%s\n' "$1" | sed 's/[][\\.*^$+?(){}|]/\\&/g'; }

# 1. ketch itself, found by the locks it holds on its dirs: SIGTERM, then SIGKILL after 20 s.
pids=$( (lock_holder "$data_dir/ketch.pid"; lock_holder "$run_dir/ketch.pid") | sort -u)
if [ -n "$pids" ]; then
  kill -TERM $pids 2>/dev/null
  for _ in $(seq 200); do
    left=
    for pid in $pids; do alive "$pid" && left="$left $pid"; done
    [ -z "$left" ] && break
    sleep 0.1
  done
  kill -KILL $pids 2>/dev/null
fi

# 2. The shims of this node's containerd, and the containers below them.
shim_re=" -id [0-9a-f]+ .*-address $(re "$socket")( |\$)"
for f in /proc/[0-9]*/cmdline; do
  shim=${f#/proc/}
  shim=${shim%/cmdline}
  tr '\0' ' ' 2>/dev/null <"$f" | grep -qE -- "$shim_re" || continue
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

# 4. Links the pod network created. They live in the network namespace this script runs in: the
# node's own one when nodes share a machine (see the header).
for link in cni0 flannel.1 flannel-v6.1 flannel-wg; do
  ip link delete "$link" 2>/dev/null
done

# 5. iptables chains of kube-proxy, the CNI plugins and flannel, in every table. Per network
# namespace too, like the links. Only tables that hold such chains are written back.
chains='-j (KUBE-|CNI-|FLANNEL-)|^:(KUBE-|CNI-|FLANNEL-)|^-A (KUBE-|CNI-|FLANNEL-)'
for cmd in iptables ip6tables; do
  command -v "$cmd-save" >/dev/null || continue
  rules=$("$cmd-save") || continue
  if printf '%s\n' "$rules" | grep -qE -- "$chains"; then
    printf '%s\n' "$rules" | grep -vE -- "$chains" | "$cmd-restore"
  fi
done

# 6. The pods' cgroups, in every hierarchy: thaw and kill what is left in them, then remove them
# deepest first. The kubelet's cgroup root, written by ketch into its config, says where they
# are: /ketch/<node name> (pods below it in kubepods/) when nodes share a machine; "/" or absent
# for a node of the old layout, whose pods are in the top-level kubepods (cgroupfs driver) or
# kubepods.slice (systemd driver).
# thaw_cgroup DIR: a frozen (paused) cgroup's processes cannot act on SIGKILL until thawed. Done
# in every hierarchy before any killing, since the freezer is one hierarchy of several on v1.
thaw_cgroup() {
  [ -d "$1" ] || return 0
  find "$1" -name freezer.state -exec sh -c 'for f; do echo THAWED >"$f"; done' sh {} + 2>/dev/null
  find "$1" -name cgroup.freeze -exec sh -c 'for f; do echo 0 >"$f"; done' sh {} + 2>/dev/null
}
# clear_cgroup DIR: kill the processes left in DIR's subtree, then remove it deepest first.
clear_cgroup() {
  [ -d "$1" ] || return 0
  for _ in $(seq 10); do
    left=$(find "$1" -name cgroup.procs -exec cat {} + 2>/dev/null | sort -u)
    [ -z "$left" ] && break
    kill -KILL $left 2>/dev/null
    sleep 0.2
  done
  find "$1" -depth -type d -exec rmdir {} + 2>/dev/null
}
cgroup_root=$(awk '$1 == "cgroupRoot:" { v = $2; gsub(/["\047]/, "", v); print v; exit }' \
  "$data_dir/agent/etc/kubelet/config.yaml" 2>/dev/null)
cgroup_root=/${cgroup_root#/}
cgroup_root=${cgroup_root%/}
case $cgroup_root in
  */..* | */.)
    echo "ketch-killall: ignoring cgroupRoot '$cgroup_root' from the kubelet config" >&2
    cgroup_root=
    ;;
esac
# The hierarchies are the cgroup mounts: one per v1 controller (or group of them), or the single
# v2 one (which is /sys/fs/cgroup/unified on hybrid hosts).
cgroup_mounts=$(awk '$3 == "cgroup" || $3 == "cgroup2" { print $2 }' /proc/self/mounts)
for root in $cgroup_mounts; do
  if [ -n "$cgroup_root" ]; then
    thaw_cgroup "$root$cgroup_root"
  else
    thaw_cgroup "$root/kubepods"
    thaw_cgroup "$root/kubepods.slice"
  fi
done
for root in $cgroup_mounts; do
  if [ -n "$cgroup_root" ]; then
    # /ketch/<node>: this node's subtree, then its parents (/ketch) once no other node uses them.
    clear_cgroup "$root$cgroup_root"
    parent=${cgroup_root%/*}
    while [ -n "$parent" ]; do
      rmdir "$root$parent" 2>/dev/null || break
      parent=${parent%/*}
    done
  else
    clear_cgroup "$root/kubepods"
    clear_cgroup "$root/kubepods.slice"
  fi
done

# real DIR: DIR with symbolic links resolved, or as given when it does not exist.
real() { (cd -P -- "$1" 2>/dev/null && pwd -P) || printf '%s\n' "$1"; }

# 7. Pod logs stay (like k3s), under the data dir (agent/pod-logs). /var/log/containers, though,
# is a kubelet constant every node on the machine shares: drop the links into this node's logs,
# which would dangle once the data dir goes.
data_dir_real=$(real "$data_dir")
for link in /var/log/containers/*; do
  [ -L "$link" ] || continue
  target=$(readlink -- "$link")
  case $target in
    "$data_dir"/* | "$data_dir_real"/*) rm -f -- "$link" ;;
  esac
done

# 8. libcni's result cache (/var/lib/cni/results, files <network>-<sandbox ID>-<ifname>) is shared
# by every containerd on the machine; a pod whose network was never torn down leaves its files.
# Each file records the pod's network namespace, which this node's containerd keeps under its run
# dir: remove the files that name such a namespace. (Pods of nodes that kept them in
# /var/run/netns cannot be told apart, and are left.) The names hold no newlines.
if [ -d /var/lib/cni/results ]; then
  run_dir_real=$(real "$run_dir")
  grep -rlF -e "\"netns\":\"$run_dir/" -e "\"netns\":\"$run_dir_real/" /var/lib/cni/results 2>/dev/null |
    while read -r f; do rm -f -- "$f"; done
fi

rm -rf "$run_dir"
echo "ketch-killall: stopped ketch and cleaned up (data kept in $data_dir)"

#!/usr/bin/env bash
# ketch-cluster.sh: a multi-node ketch cluster on one machine, for tests and experiments.
#
# Each node is a separate "host": its own network namespace, attached by a veth to a bridge in
# the machine's namespace, its own data dir (which holds its kubelet root), run dir (containerd
# state and sockets), cgroup root (ketch derives it from the node name) and log. Node 1 runs
# `ketch server`, the others `ketch agent`. See docs/multinode.md.
#
# `up` records in DIR everything the other commands need (DIR/cluster.env, DIR/<node>/cmd), so
# they take only --dir.
set -euo pipefail

prog=${0##*/}
script_dir=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)
killall_script="$script_dir/../package/ketch-killall.sh"

usage() {
  cat <<EOF
Usage:
  $prog up      --dir DIR [--nodes N] [--name PREFIX] [--subnet A.B.C] [--ketch BIN]
                          [--wait] [--timeout SECONDS] [-- EXTRA_SERVER_ARGS...]
  $prog down    --dir DIR
  $prog stop    --dir DIR NODE      SIGTERM the node's ketch and wait for it to exit
                                    (its containers keep running, as when a host's service stops)
  $prog start   --dir DIR NODE      start the node's ketch again, with the same arguments
  $prog status  --dir DIR           each node's address, pid and state
  $prog kubectl --dir DIR ARGS...   ketch kubectl --kubeconfig DIR/kubeconfig ARGS...
                                    (run in node 1's network namespace)
  $prog exec    --dir DIR NODE CMD...  run CMD in the node's network namespace

Options of up:
  --dir DIR          where the nodes' data, logs and the admin kubeconfig live; must not exist
                     or be empty (down removes it)
  --nodes N          number of nodes, 1-244 (default 3)
  --name PREFIX      node names PREFIX-1..PREFIX-N, also the network namespaces' names;
                     bridge PREFIX-br, veths PREFIX-<i>-h (default kc)
  --subnet A.B.C     the nodes' /24: bridge A.B.C.1, node i A.B.C.(10+i) (default 10.99.0)
  --ketch BIN        ketch binary (default: ketch in PATH, else bin/ketch of this repo)
  --wait             wait until all nodes are registered and Ready, then write
                     DIR/kubeconfig-host (server = node 1's bridge address, for clients in
                     the machine's own network namespace)
  --timeout SECONDS  how long --wait waits (default 300)
  -- ARGS...         extra arguments for node 1's \`ketch server\`

NODE is a node name (PREFIX-2) or its number (2). Run as root; hold /tmp/ketch-host.lock (flock)
from up to down when other tests may run ketch nodes on this machine.
EOF
}

die() {
  echo "$prog: $*" >&2
  exit 1
}

say() { echo "$prog: $*" >&2; }

# ---- arguments ----

[[ $# -gt 0 ]] || { usage >&2; exit 2; }
command=$1
shift
case $command in
  -h | --help | help) usage; exit 0 ;;
  up | down | stop | start | status | kubectl | exec) ;;
  *) echo "$prog: unknown command '$command'" >&2; usage >&2; exit 2 ;;
esac

dir='' nodes=3 prefix=kc subnet=10.99.0 ketch='' wait_ready=false timeout=300
extra=() args=()
up_only() { [[ $command == up ]] || die "$1 is an option of up only"; }
need_value() { [[ $# -ge 2 ]] || die "$1 needs a value"; }
while [[ $# -gt 0 ]]; do
  case $1 in
    --dir) need_value "$@"; dir=$2; shift 2 ;;
    --dir=*) dir=${1#*=}; shift ;;
    -h | --help) usage; exit 0 ;;
    *)
      # kubectl and exec pass everything after --dir through untouched (kubectl has its own
      # options), so only --dir is recognised before the first other argument.
      if [[ $command == kubectl || $command == exec ]]; then
        args=("$@")
        break
      fi
      case $1 in
        --nodes) up_only "$1"; need_value "$@"; nodes=$2; shift 2 ;;
        --nodes=*) up_only "${1%%=*}"; nodes=${1#*=}; shift ;;
        --name) up_only "$1"; need_value "$@"; prefix=$2; shift 2 ;;
        --name=*) up_only "${1%%=*}"; prefix=${1#*=}; shift ;;
        --subnet) up_only "$1"; need_value "$@"; subnet=$2; shift 2 ;;
        --subnet=*) up_only "${1%%=*}"; subnet=${1#*=}; shift ;;
        --ketch) up_only "$1"; need_value "$@"; ketch=$2; shift 2 ;;
        --ketch=*) up_only "${1%%=*}"; ketch=${1#*=}; shift ;;
        --timeout) up_only "$1"; need_value "$@"; timeout=$2; shift 2 ;;
        --timeout=*) up_only "${1%%=*}"; timeout=${1#*=}; shift ;;
        --wait) up_only "$1"; wait_ready=true; shift ;;
        --) up_only "$1"; shift; extra=("$@"); break ;;
        -*) die "unknown option '$1' (see $prog --help)" ;;
        *) args+=("$1"); shift ;;
      esac
      ;;
  esac
done
[[ -n $dir ]] || die "$command needs --dir DIR"
[[ ${#args[@]} -eq 0 || $command != @(up|down|status) ]] || die "$command takes no argument '${args[0]}'"
[[ $(id -u) == 0 ]] || die "run as root (network namespaces, mounts, cgroups)"
# Absolute, so that the recorded commands work from any working directory.
dir=$(realpath -m -- "$dir")

# ---- helpers ----

# alive PID: true while PID runs. PID 1 on the test machines does not reap orphans, so a ketch
# that died after this script exited stays a zombie, and `kill -0` still succeeds on it: read
# the state from /proc/PID/stat instead (Z zombie, X dead).
alive() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) } # the command name may contain spaces and ')'; the state follows the last ') '
  [[ ${stat%% *} != [ZX] ]]
}

# stop_pids SECONDS PID...: SIGTERM, wait up to SECONDS for them to exit, then SIGKILL the rest.
# Returns 1 if any needed SIGKILL.
stop_pids() {
  local secs=$1 pid i
  local -a left=()
  shift
  [[ $# -gt 0 ]] || return 0
  kill -TERM "$@" 2>/dev/null || true
  for ((i = 0; i < secs * 10; i++)); do
    left=()
    for pid in "$@"; do alive "$pid" && left+=("$pid"); done
    [[ ${#left[@]} -gt 0 ]] || return 0
    sleep 0.1
  done
  say "still running after ${secs}s, sending SIGKILL: ${left[*]}"
  kill -KILL "${left[@]}" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do
    left=()
    for pid in "$@"; do alive "$pid" && left+=("$pid"); done
    [[ ${#left[@]} -gt 0 ]] || break
    sleep 0.1
  done
  return 1
}

load_env() {
  [[ -f $dir/cluster.env ]] || die "$dir/cluster.env not found: no cluster was brought up with --dir $dir"
  # shellcheck source=/dev/null
  source "$dir/cluster.env"
  prefix=$KC_PREFIX nodes=$KC_NODES subnet=$KC_SUBNET ketch=$KC_KETCH
}

node_name() { echo "$prefix-$1"; }
node_ip() { echo "$subnet.$((10 + $1))"; }
node_netns() { echo "/run/netns/$prefix-$1"; }
node_veth() { echo "$prefix-$1-h"; }
# Short on purpose: containerd's shim sockets live below it, and unix socket paths are limited
# to 108 bytes.
node_run_dir() { echo "/run/ketch-$prefix-$1"; }
node_dir() { echo "$dir/$prefix-$1"; }
bridge() { echo "$prefix-br"; }
# forward_rule OP: add (-I), check (-C) or delete (-D) the rule of the machine's FORWARD chain
# that lets frames between the nodes through (see setup_bridge).
forward_rule() {
  local op=$1
  [[ $op == -I ]] && op='-I FORWARD 1' || op="$op FORWARD"
  # shellcheck disable=SC2086 # $op is two or three words
  iptables $op -i "$(bridge)" -o "$(bridge)" -m comment --comment "ketch-cluster:$prefix" -j ACCEPT 2>/dev/null
}

# node_index NODE: the number of NODE, given as a name or a number.
node_index() {
  local n=$1
  [[ $n =~ ^[0-9]+$ ]] || n=${n#"$prefix"-}
  [[ $n =~ ^[1-9][0-9]*$ && $n -le $nodes ]] || die "unknown node '$1' (nodes: $prefix-1..$prefix-$nodes)"
  echo "$n"
}

# node_pid I: the PID of node I's ketch if it runs, else nothing. The command line must still
# name the node's data dir, so that a recycled PID is never taken for the node.
node_pid() {
  local pidfile pid
  pidfile="$(node_dir "$1")/pid"
  [[ -f $pidfile ]] || return 0
  pid=$(<"$pidfile")
  [[ $pid =~ ^[0-9]+$ ]] || return 0
  alive "$pid" || return 0
  tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | grep -qxF -- "$(node_dir "$1")/data" || return 0
  echo "$pid"
}

log_tail() {
  local log
  log="$(node_dir "$1")/ketch.out"
  [[ -f $log ]] || return 0
  echo "--- last lines of $log ---" >&2
  tail -n 40 "$log" >&2
  echo "---" >&2
}

# close_fds: close every inherited descriptor above 2 in this (sub)shell. The nodes outlive this
# script and must not hold what its caller passed down, such as the /tmp/ketch-host.lock descriptor
# of `flock` (a later `flock ... down` would wait for the nodes forever) or a test's pipes.
close_fds() {
  local fd
  for fd in /proc/"$BASHPID"/fd/*; do
    fd=${fd##*/}
    if ((fd > 2)); then eval "exec $fd>&-"; fi
  done
  return 0
}

# start_node I: run node I's recorded command in its own session, output appended to its log.
start_node() {
  local i=$1 ndir pid
  local -a cmd
  ndir=$(node_dir "$i")
  [[ -f $ndir/cmd ]] || die "$ndir/cmd not found"
  [[ -e $(node_netns "$i") ]] || die "network namespace $(node_name "$i") does not exist (run down, then up)"
  pid=$(node_pid "$i")
  [[ -z $pid ]] || die "$(node_name "$i") already runs (pid $pid)"
  eval "cmd=($(<"$ndir/cmd"))"
  echo "=== $(date -Is) $prog: starting $(node_name "$i")" >>"$ndir/ketch.out"
  # setsid: its own session, so that a terminal's signals do not reach it. Neither setsid (not a
  # process group leader here) nor nsenter (no --fork) forks, so $! is ketch's own PID.
  (
    close_fds
    exec setsid "${cmd[@]}" </dev/null >>"$ndir/ketch.out" 2>&1
  ) &
  pid=$!
  echo "$pid" >"$ndir/pid"
  sleep 0.5
  if ! alive "$pid"; then
    log_tail "$i"
    die "$(node_name "$i") exited at once"
  fi
  say "started $(node_name "$i") ($(node_ip "$i")), pid $pid, log $ndir/ketch.out"
}

kubectl() {
  # In node 1's network namespace: the server's kubeconfig may point at 127.0.0.1, which is only
  # the server there.
  nsenter --net="$(node_netns 1)" "$ketch" kubectl --kubeconfig "$dir/kubeconfig" "$@"
}

# ---- up ----

check_up_args() {
  [[ $nodes =~ ^[1-9][0-9]*$ && $nodes -le 244 ]] || die "--nodes must be 1-244 (addresses .11-.254), not '$nodes'"
  [[ $timeout =~ ^[1-9][0-9]*$ ]] || die "--timeout must be a number of seconds, not '$timeout'"
  # Node names must be DNS labels; link names are limited to 15 characters.
  [[ $prefix =~ ^[a-z]([a-z0-9-]*[a-z0-9])?$ ]] || die "--name must be lower-case letters, digits and '-', starting with a letter: '$prefix'"
  ((${#prefix} + ${#nodes} + 3 <= 15)) || die "--name '$prefix' too long: link $(node_veth "$nodes") exceeds 15 characters"
  local o
  [[ $subnet =~ ^([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})$ ]] || die "--subnet must be three octets such as 10.99.0, not '$subnet'"
  for o in "${BASH_REMATCH[@]:1}"; do ((10#$o <= 255)) || die "--subnet: bad octet '$o'"; done
  # The kubelet's sockets live below the data dir, and unix socket paths are limited to 108 bytes.
  local sock
  sock="$(node_dir "$nodes")/data/agent/kubelet/plugins_registry/x.csi.example.com-reg.sock"
  ((${#sock} < 108)) || die "--dir '$dir' is too long for the kubelet's unix sockets below it"

  if [[ -z $ketch ]]; then
    ketch=$(command -v ketch || true)
    [[ -n $ketch ]] || ketch="$(dirname "$script_dir")/bin/ketch"
  fi
  [[ -x $ketch && -f $ketch ]] || die "ketch binary '$ketch' not found or not executable (--ketch BIN)"
  ketch=$(realpath -- "$ketch")

  local c
  for c in ip nsenter setsid unshare; do
    command -v "$c" >/dev/null || die "'$c' not found (iproute2, util-linux)"
  done
  [[ ! -e $dir || -z $(ls -A -- "$dir") ]] || die "$dir exists and is not empty (down removes it; choose a new one)"
  ip link show "$(bridge)" >/dev/null 2>&1 && die "bridge $(bridge) exists: a cluster named '$prefix' is up (down it, or use --name)"
  local i
  for ((i = 1; i <= nodes; i++)); do
    [[ ! -e $(node_netns "$i") ]] || die "network namespace $(node_name "$i") exists: a cluster named '$prefix' is up (down it, or use --name)"
    ip link show "$(node_veth "$i")" >/dev/null 2>&1 && die "link $(node_veth "$i") exists (a cluster named '$prefix' is up?)"
    [[ ! -e $(node_run_dir "$i") ]] || die "$(node_run_dir "$i") exists, left by an earlier node; clean it with: KETCH_DATA_DIR=<its data dir> KETCH_RUN_DIR=$(node_run_dir "$i") $killall_script"
  done
  [[ -z $(ip -4 route show "$subnet.0/24") ]] || die "$subnet.0/24 is already routed on this machine (--subnet)"
  return 0
}

# setup_bridge: the bridge that stands for the network between the hosts.
setup_bridge() {
  local br
  br=$(bridge)
  ip link add "$br" type bridge
  ip addr add "$subnet.1/24" dev "$br"
  ip link set "$br" up
  # With br_netfilter loaded and net.bridge.bridge-nf-call-iptables=1 (the case on the build
  # machines), frames bridged between two nodes' veths go through this namespace's FORWARD chain.
  # Its policy may be DROP (Docker sets that; a node run directly on the machine adds kube-proxy's
  # DROP of conntrack INVALID), which would cut the nodes apart: accept them first. down removes it.
  if command -v iptables >/dev/null; then
    forward_rule -C || forward_rule -I || die "could not add an ACCEPT rule for $br to iptables' FORWARD chain"
  fi
}

# setup_node I: node I's network namespace, with eth0 on the bridge and a default route via it.
setup_node() {
  local i=$1 ns
  ns=$(node_name "$i")
  ip netns add "$ns"
  # The peer is created directly inside the namespace, so its name cannot clash with the
  # machine's own eth0.
  ip link add "$(node_veth "$i")" type veth peer name eth0 netns "$ns"
  ip link set "$(node_veth "$i")" master "$(bridge)" up
  ip -n "$ns" link set lo up
  ip -n "$ns" addr add "$(node_ip "$i")/24" dev eth0
  ip -n "$ns" link set eth0 up
  ip -n "$ns" route add default via "$subnet.1"
  mkdir -p "$(node_dir "$i")"
}

# write_cmd I: node I's command line, shell-quoted, for start_node (now and after a stop).
write_cmd() {
  local i=$1 ndir
  local -a cmd
  ndir=$(node_dir "$i")
  # nsenter --net, not `ip netns exec`: the latter also remounts /sys for the namespace, which
  # hides /sys/fs/cgroup from the kubelet.
  cmd=(nsenter "--net=$(node_netns "$i")" "$ketch")
  if ((i == 1)); then
    cmd+=(server)
  else
    cmd+=(agent --server "https://$(node_ip 1):6443" --token-file "$(node_dir 1)/data/server/token")
  fi
  cmd+=(--data-dir "$ndir/data" --run-dir "$(node_run_dir "$i")" --node-name "$(node_name "$i")"
    --node-ip "$(node_ip "$i")" --flannel-iface eth0)
  if ((i == 1)); then
    cmd+=(--write-kubeconfig "$dir/kubeconfig" "${extra[@]}")
  fi
  printf '%q ' "${cmd[@]}" >"$ndir/cmd"
  echo >>"$ndir/cmd"
}

wait_token() {
  local token deadline=$((SECONDS + 120))
  token="$(node_dir 1)/data/server/token"
  say "waiting up to 120s for $token"
  while ((SECONDS < deadline)); do
    [[ -s $token ]] && return 0
    if [[ -z $(node_pid 1) ]]; then
      log_tail 1
      die "$(node_name 1) exited before writing $token"
    fi
    sleep 0.2
  done
  log_tail 1
  die "$(node_name 1) did not write $token within 120s"
}

# check_nodes_alive: fail with the log of any node whose ketch is gone.
check_nodes_alive() {
  local i
  for ((i = 1; i <= nodes; i++)); do
    if [[ -z $(node_pid "$i") ]]; then
      log_tail "$i"
      die "$(node_name "$i")'s ketch exited"
    fi
  done
}

wait_nodes_ready() {
  local deadline registered left
  deadline=$((SECONDS + timeout))
  say "waiting up to ${timeout}s for $nodes node(s) to register and become Ready"
  while :; do
    check_nodes_alive
    registered=$(kubectl get nodes -o name 2>/dev/null | grep -c . || true)
    ((registered >= nodes)) && break
    ((SECONDS < deadline)) || die "only $registered of $nodes nodes registered within ${timeout}s (logs: $dir/*/ketch.out)"
    sleep 1
  done
  left=$((deadline - SECONDS))
  ((left > 0)) || left=1
  if ! kubectl wait --for=condition=Ready node --all --timeout="${left}s" >&2; then
    kubectl get nodes -o wide >&2 || true
    check_nodes_alive
    die "not all nodes Ready within ${timeout}s (logs: $dir/*/ketch.out)"
  fi
}

cmd_up() {
  check_up_args
  mkdir -p "$dir"
  # Recorded first, so that down can clean up after an up that failed half way.
  {
    printf 'KC_PREFIX=%q\nKC_NODES=%q\nKC_SUBNET=%q\nKC_KETCH=%q\n' "$prefix" "$nodes" "$subnet" "$ketch"
  } >"$dir/cluster.env"
  trap 'rc=$?; if ((rc)); then say "up failed; logs: $dir/*/ketch.out; clean up with: $0 down --dir $dir"; fi' EXIT

  setup_bridge
  local i
  for ((i = 1; i <= nodes; i++)); do
    setup_node "$i"
    write_cmd "$i"
  done
  start_node 1
  # The agents join with the token the server writes once its CA and supervisor are ready.
  ((nodes == 1)) || wait_token
  for ((i = 2; i <= nodes; i++)); do
    start_node "$i"
  done
  if $wait_ready; then
    wait_nodes_ready
    write_host_kubeconfig
  fi
  say "cluster '$prefix' up: $nodes node(s) on $subnet.0/24, kubeconfig $dir/kubeconfig"
  say "try: $0 kubectl --dir $dir get nodes -o wide"
}

# write_host_kubeconfig: DIR/kubeconfig-host, for clients in the machine's own namespace (a Go
# test's client-go cannot enter node 1's): the server writes 127.0.0.1, which is the server only
# inside node 1's namespace; node 1's address on the bridge reaches it from here. Kept only if it
# works (the serving certificate must name that address).
write_host_kubeconfig() {
  local src="$dir/kubeconfig" dst="$dir/kubeconfig-host"
  sed -E "s#(server: *https://)(127\.0\.0\.1|localhost|\[::1\]):#\1$(node_ip 1):#" "$src" >"$dst"
  chmod 600 "$dst"
  if ! "$ketch" kubectl --kubeconfig "$dst" get --raw /readyz >/dev/null 2>&1; then
    rm -f "$dst"
    say "warning: $(node_ip 1):6443 does not serve the kubeconfig's cluster from this namespace; no kubeconfig-host"
  fi
}

# ---- down ----

cmd_down() {
  if [[ ! -e $dir ]]; then
    say "$dir does not exist: nothing to do"
    return 0
  fi
  load_env
  [[ -f $killall_script ]] || die "$killall_script not found"
  local i pid ns
  local -a pids=()
  for ((i = 1; i <= nodes; i++)); do
    pid=$(node_pid "$i")
    [[ -z $pid ]] || pids+=("$pid")
  done
  if [[ ${#pids[@]} -gt 0 ]]; then
    say "stopping ketch: ${pids[*]}"
    stop_pids 20 "${pids[@]}" || true
  fi

  for ((i = nodes; i >= 1; i--)); do
    ns=$(node_netns "$i")
    # Inside the node's namespace: the links (cni0, flannel.1, ...) and iptables chains that
    # killall removes are the node's own there. Without the namespace (a partial up), in a new
    # empty one, so that the machine's own links and chains are never touched.
    local -a enter=(unshare --net)
    [[ -e $ns ]] && enter=(nsenter "--net=$ns")
    KETCH_DATA_DIR="$(node_dir "$i")/data" KETCH_RUN_DIR="$(node_run_dir "$i")" \
      "${enter[@]}" sh "$killall_script" >&2 || say "ketch-killall for $(node_name "$i") failed; continuing"
    if [[ -e $ns ]]; then ip netns delete "$(node_name "$i")" || say "could not delete netns $(node_name "$i")"; fi
    # Normally gone with the namespace's end of the pair; not if something still holds the namespace.
    if ip link show "$(node_veth "$i")" >/dev/null 2>&1; then ip link delete "$(node_veth "$i")" || true; fi
  done

  if command -v iptables >/dev/null; then
    while forward_rule -D; do :; done
  fi
  if ip link show "$(bridge)" >/dev/null 2>&1; then ip link delete "$(bridge)"; fi

  # Never remove through a mount (a hostPath volume may bind-mount the machine's files).
  local mounts
  mounts=$(awk -v d="$dir/" 'index($2, d) == 1 { print $2 }' /proc/self/mounts)
  [[ -z $mounts ]] || die "mounts left under $dir, not removing it:"$'\n'"$mounts"
  rm -rf --one-file-system -- "$dir"
  say "cluster '$prefix' down, $dir removed"
}

# ---- the others ----

cmd_stop() {
  [[ ${#args[@]} -eq 1 ]] || die "usage: $prog stop --dir DIR NODE"
  load_env
  local i pid
  i=$(node_index "${args[0]}")
  pid=$(node_pid "$i")
  if [[ -z $pid ]]; then
    say "$(node_name "$i") is not running"
    return 0
  fi
  say "stopping $(node_name "$i") (pid $pid)"
  stop_pids 60 "$pid" || die "$(node_name "$i") did not stop within 60s on SIGTERM; killed"
  say "$(node_name "$i") stopped"
}

cmd_start() {
  [[ ${#args[@]} -eq 1 ]] || die "usage: $prog start --dir DIR NODE"
  load_env
  local i
  i=$(node_index "${args[0]}")
  start_node "$i"
}

cmd_status() {
  [[ ${#args[@]} -eq 0 ]] || die "usage: $prog status --dir DIR"
  load_env
  local i pid
  for ((i = 1; i <= nodes; i++)); do
    pid=$(node_pid "$i")
    printf '%-16s %-15s %s\n' "$(node_name "$i")" "$(node_ip "$i")" "$([[ -n $pid ]] && echo "running, pid $pid" || echo stopped)"
  done
}

cmd_kubectl() {
  load_env
  [[ -e $(node_netns 1) ]] || die "network namespace $(node_name 1) does not exist"
  kubectl "${args[@]}"
}

cmd_exec() {
  [[ ${#args[@]} -ge 2 ]] || die "usage: $prog exec --dir DIR NODE CMD..."
  load_env
  local i
  i=$(node_index "${args[0]}")
  [[ -e $(node_netns "$i") ]] || die "network namespace $(node_name "$i") does not exist"
  exec nsenter --net="$(node_netns "$i")" "${args[@]:1}"
}

"cmd_$command"

#!/usr/bin/env bash
# ketch-cluster.sh: a multi-node ketch cluster on one machine, for tests and experiments.
#
# Each node is a separate "host": its own network namespace, attached by a veth to a bridge in
# the machine's namespace, its own data dir (which holds its kubelet root), run dir (containerd
# state and sockets), cgroup root (ketch derives it from the node name) and log. Nodes 1..S run
# `ketch server` (S = --servers, default 1), the others `ketch agent`. With --etcd M, M etcd
# members, each a "host" of its own too, are the servers' external datastore. See
# docs/multinode.md.
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
  $prog up      --dir DIR [--nodes N] [--servers S] [--name PREFIX] [--subnet A.B.C]
                          [--ketch BIN] [--etcd M --etcd-bin BIN]
                          [--wait] [--timeout SECONDS] [-- EXTRA_SERVER_ARGS...]
  $prog down    --dir DIR
  $prog stop    --dir DIR NODE      SIGTERM the node's process and wait for it to exit
                                    (its containers keep running, as when a host's service stops)
  $prog kill    --dir DIR NODE      SIGKILL the node's process and wait until it is gone
                                    (a machine dying; its containers keep running)
  $prog start   --dir DIR NODE [-- ARGS...]
                                    start the node's process again, with the same arguments
                                    and, for this start only, ARGS
  $prog add     --dir DIR [--server] [-- ARGS...]
                                    add node N+1 to the running cluster: an agent, or with
                                    --server a server; ARGS go to its command (and are kept)
  $prog status  --dir DIR           each node's and etcd member's address, role, pid and state
  $prog kubectl --dir DIR ARGS...   ketch kubectl --kubeconfig DIR/kubeconfig ARGS...
                                    (run in node 1's network namespace; KC_NODE=I: node I's)
  $prog exec    --dir DIR NODE CMD...  run CMD in the node's network namespace

Options of up:
  --dir DIR          where the nodes' data, logs and the admin kubeconfig live; must not exist
                     or be empty (down removes it)
  --nodes N          number of nodes, 1-244 (default 3; 1-189 with --etcd)
  --servers S        nodes 1..S run \`ketch server\`, the others \`ketch agent\` (default 1).
                     Without --etcd and S > 1, the servers' embedded etcd: node 1 gets
                     --cluster-init, nodes 2..S join it with --server and its token, one after
                     the other (each once the previous one has written its token)
  --name PREFIX      node names PREFIX-1..PREFIX-N, also the network namespaces' names;
                     bridge PREFIX-br, veths PREFIX-<i>-h (default kc)
  --subnet A.B.C     the nodes' /24: bridge A.B.C.1, node i A.B.C.(10+i) (default 10.99.0)
  --ketch BIN        ketch binary (default: ketch in PATH, else bin/ketch of this repo)
  --etcd M           before the nodes, an external etcd cluster of M members (1-54), member j
                     in netns PREFIX-e<j> at A.B.C.(200+j), with TLS from DIR/etcd-pki; every
                     server gets --datastore-endpoint (all members) and the client certificate,
                     and all nodes share the token secret in DIR/token
  --etcd-bin BIN     the etcd binary for --etcd (it takes etcd's own flags)
  --wait             wait until all nodes are registered and Ready, then write
                     DIR/kubeconfig-host (server = node 1's bridge address, for clients in
                     the machine's own network namespace)
  --timeout SECONDS  how long --wait waits (default 300)
  -- ARGS...         extra arguments for every \`ketch server\`

NODE is a node name (PREFIX-2) or its number (2), or an etcd member (PREFIX-e1 or e1). Run as
root; hold /tmp/ketch-host.lock (flock) from up to down when other tests may run ketch nodes on
this machine.
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
  up | down | stop | kill | start | add | status | kubectl | exec) ;;
  *) echo "$prog: unknown command '$command'" >&2; usage >&2; exit 2 ;;
esac

dir='' nodes=3 servers=1 etcd_members=0 etcd_bin='' prefix=kc subnet=10.99.0 ketch=''
wait_ready=false timeout=300 add_server=false mode=single
# extra: the arguments after --; server_args: those every server gets (up's, kept in cluster.env).
extra=() args=() server_args=()
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
        --servers) up_only "$1"; need_value "$@"; servers=$2; shift 2 ;;
        --servers=*) up_only "${1%%=*}"; servers=${1#*=}; shift ;;
        --name) up_only "$1"; need_value "$@"; prefix=$2; shift 2 ;;
        --name=*) up_only "${1%%=*}"; prefix=${1#*=}; shift ;;
        --subnet) up_only "$1"; need_value "$@"; subnet=$2; shift 2 ;;
        --subnet=*) up_only "${1%%=*}"; subnet=${1#*=}; shift ;;
        --ketch) up_only "$1"; need_value "$@"; ketch=$2; shift 2 ;;
        --ketch=*) up_only "${1%%=*}"; ketch=${1#*=}; shift ;;
        --etcd) up_only "$1"; need_value "$@"; etcd_members=$2; shift 2 ;;
        --etcd=*) up_only "${1%%=*}"; etcd_members=${1#*=}; shift ;;
        --etcd-bin) up_only "$1"; need_value "$@"; etcd_bin=$2; shift 2 ;;
        --etcd-bin=*) up_only "${1%%=*}"; etcd_bin=${1#*=}; shift ;;
        --timeout) up_only "$1"; need_value "$@"; timeout=$2; shift 2 ;;
        --timeout=*) up_only "${1%%=*}"; timeout=${1#*=}; shift ;;
        --wait) up_only "$1"; wait_ready=true; shift ;;
        --server)
          [[ $command == add ]] || die "--server is an option of add only (up has --servers S)"
          add_server=true
          shift
          ;;
        --)
          [[ $command == @(up|start|add) ]] || die "-- ARGS is for up, start and add only"
          shift
          extra=("$@")
          break
          ;;
        -*) die "unknown option '$1' (see $prog --help)" ;;
        *) args+=("$1"); shift ;;
      esac
      ;;
  esac
done
[[ -n $dir ]] || die "$command needs --dir DIR"
[[ ${#args[@]} -eq 0 || $command != @(up|down|status|add) ]] || die "$command takes no argument '${args[0]}'"
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

# wait_gone SECONDS PID...: wait up to SECONDS for them to exit; false if any is left.
wait_gone() {
  local secs=$1 pid i
  local -a left=()
  shift
  for ((i = 0; i < secs * 10; i++)); do
    left=()
    for pid in "$@"; do alive "$pid" && left+=("$pid"); done
    [[ ${#left[@]} -gt 0 ]] || return 0
    sleep 0.1
  done
  return 1
}

# stop_pids SECONDS PID...: SIGTERM, wait up to SECONDS for them to exit, then SIGKILL the rest.
# Returns 1 if any needed SIGKILL.
stop_pids() {
  local secs=$1 pid
  local -a left=()
  shift
  [[ $# -gt 0 ]] || return 0
  kill -TERM "$@" 2>/dev/null || true
  wait_gone "$secs" "$@" && return 0
  for pid in "$@"; do alive "$pid" && left+=("$pid"); done
  say "still running after ${secs}s, sending SIGKILL: ${left[*]}"
  kill -KILL "${left[@]}" 2>/dev/null || true
  wait_gone 5 "${left[@]}" || true
  return 1
}

# write_env: DIR/cluster.env, which every command sources (load_env). up writes it before it
# makes anything, so that down can clean up after an up that failed half way; add rewrites it.
write_env() {
  {
    printf 'KC_PREFIX=%q\nKC_NODES=%q\nKC_SUBNET=%q\nKC_KETCH=%q\n' "$prefix" "$nodes" "$subnet" "$ketch"
    printf 'KC_SERVERS=%q\nKC_MODE=%q\nKC_ETCD=%q\nKC_ETCD_BIN=%q\n' "$servers" "$mode" "$etcd_members" "$etcd_bin"
    printf 'KC_SERVER_ARGS=('
    if [[ ${#server_args[@]} -gt 0 ]]; then printf '%q ' "${server_args[@]}"; fi
    printf ')\n'
  } >"$dir/cluster.env.new"
  mv -f "$dir/cluster.env.new" "$dir/cluster.env"
}

load_env() {
  [[ -f $dir/cluster.env ]] || die "$dir/cluster.env not found: no cluster was brought up with --dir $dir"
  # shellcheck source=/dev/null
  source "$dir/cluster.env"
  prefix=$KC_PREFIX nodes=$KC_NODES subnet=$KC_SUBNET ketch=$KC_KETCH
  # Defaults for a cluster.env written before high availability.
  servers=${KC_SERVERS:-1} mode=${KC_MODE:-single} etcd_members=${KC_ETCD:-0} etcd_bin=${KC_ETCD_BIN:-}
  server_args=()
  if declare -p KC_SERVER_ARGS >/dev/null 2>&1; then server_args=("${KC_SERVER_ARGS[@]}"); fi
}

# A node is given by its number I (1..N); an etcd member by eJ (e1..eM). The functions below
# take either.
is_etcd() { [[ $1 == e* ]]; }
node_name() { echo "$prefix-$1"; }
node_ip() {
  if is_etcd "$1"; then echo "$subnet.$((200 + ${1#e}))"; else echo "$subnet.$((10 + $1))"; fi
}
node_netns() { echo "/run/netns/$prefix-$1"; }
node_veth() { echo "$prefix-$1-h"; }
# Short on purpose: containerd's shim sockets live below it, and unix socket paths are limited
# to 108 bytes.
node_run_dir() { echo "/run/ketch-$prefix-$1"; }
node_dir() { echo "$dir/$prefix-$1"; }
node_log() {
  if is_etcd "$1"; then echo "$(node_dir "$1")/etcd.out"; else echo "$(node_dir "$1")/ketch.out"; fi
}
# node_role I: server, agent or etcd.
node_role() {
  if is_etcd "$1"; then
    echo etcd
  elif [[ -f $(node_dir "$1")/role ]]; then
    cat "$(node_dir "$1")/role"
  else
    echo '?'
  fi
}
bridge() { echo "$prefix-br"; }
pki_dir() { echo "$dir/etcd-pki"; }
# The servers' datastore: every etcd member's client URL, comma-separated.
etcd_endpoints() {
  local j eps=''
  for ((j = 1; j <= etcd_members; j++)); do eps+=${eps:+,}"https://$(node_ip "e$j"):2379"; done
  echo "$eps"
}
# join_token_file: the token the joining nodes use. With external etcd all nodes share the
# secret in DIR/token (a server that joins through the datastore has no node to ask for one).
join_token_file() {
  if [[ $mode == external ]]; then echo "$dir/token"; else echo "$(node_dir 1)/data/server/token"; fi
}
# forward_rule OP: add (-I), check (-C) or delete (-D) the rule of the machine's FORWARD chain
# that lets frames between the nodes through (see setup_bridge).
forward_rule() {
  local op=$1
  [[ $op == -I ]] && op='-I FORWARD 1' || op="$op FORWARD"
  # shellcheck disable=SC2086 # $op is two or three words
  iptables $op -i "$(bridge)" -o "$(bridge)" -m comment --comment "ketch-cluster:$prefix" -j ACCEPT 2>/dev/null
}

# node_index NODE: the number of NODE, given as a name or a number, or eJ for an etcd member
# (given as PREFIX-eJ or eJ).
node_index() {
  local n=$1 known="nodes: $prefix-1..$prefix-$nodes"
  ((etcd_members == 0)) || known+=", etcd members: $prefix-e1..$prefix-e$etcd_members"
  [[ $n =~ ^e?[0-9]+$ ]] || n=${n#"$prefix"-}
  if [[ $n =~ ^e([1-9][0-9]*)$ ]]; then
    ((BASH_REMATCH[1] <= etcd_members)) || die "unknown node '$1' ($known)"
  else
    [[ $n =~ ^[1-9][0-9]*$ && $n -le $nodes ]] || die "unknown node '$1' ($known)"
  fi
  echo "$n"
}

# node_pid I: the PID of node I's ketch (or member eJ's etcd) if it runs, else nothing. The
# command line must still name the node's data dir, so that a recycled PID is never taken for
# the node.
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
  log=$(node_log "$1")
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

# start_node I [ARGS...]: run node I's recorded command, with ARGS appended (this time only), in
# its own session, output appended to its log.
start_node() {
  local i=$1 ndir pid log
  local -a cmd
  shift
  ndir=$(node_dir "$i")
  log=$(node_log "$i")
  [[ -f $ndir/cmd ]] || die "$ndir/cmd not found"
  [[ -e $(node_netns "$i") ]] || die "network namespace $(node_name "$i") does not exist (run down, then up)"
  pid=$(node_pid "$i")
  [[ -z $pid ]] || die "$(node_name "$i") already runs (pid $pid)"
  eval "cmd=($(<"$ndir/cmd"))"
  cmd+=("$@")
  echo "=== $(date -Is) $prog: starting $(node_name "$i")${*:+ with extra arguments: $*}" >>"$log"
  # setsid: its own session, so that a terminal's signals do not reach it. Neither setsid (not a
  # process group leader here) nor nsenter (no --fork) forks, so $! is ketch's own PID.
  (
    close_fds
    exec setsid "${cmd[@]}" </dev/null >>"$log" 2>&1
  ) &
  pid=$!
  echo "$pid" >"$ndir/pid"
  sleep 0.5
  if ! alive "$pid"; then
    log_tail "$i"
    die "$(node_name "$i") exited at once"
  fi
  say "started $(node_name "$i") ($(node_ip "$i")), pid $pid, log $log"
}

# kubectl: in node kc_node's network namespace (node 1 unless KC_NODE says otherwise). The
# kubeconfig the server writes points at 127.0.0.1, which is a server only there; every server
# serves the same cluster there, with the same CA and admin certificate.
kc_node=1
kubectl() {
  nsenter --net="$(node_netns "$kc_node")" "$ketch" kubectl --kubeconfig "$dir/kubeconfig" "$@"
}

# ---- up ----

# check_new_node I: node I's names, address and paths are free (up, add).
check_new_node() {
  local i=$1 sock
  ((10 + i <= 254)) || die "no address left for node $i (nodes use .11-.254)"
  ((etcd_members == 0 || 10 + i < 200)) || die "no address left for node $i (nodes use .11-.199 when the etcd members use .201-)"
  # Node names must be DNS labels; link names are limited to 15 characters.
  ((${#prefix} + ${#i} + 3 <= 15)) || die "--name '$prefix' too long: link $(node_veth "$i") exceeds 15 characters"
  # The kubelet's sockets live below the data dir, and unix socket paths are limited to 108 bytes.
  sock="$(node_dir "$i")/data/agent/kubelet/plugins_registry/x.csi.example.com-reg.sock"
  ((${#sock} < 108)) || die "--dir '$dir' is too long for the kubelet's unix sockets below it"
  check_free "$i"
  [[ ! -e $(node_run_dir "$i") ]] || die "$(node_run_dir "$i") exists, left by an earlier node; clean it with: KETCH_DATA_DIR=<its data dir> KETCH_RUN_DIR=$(node_run_dir "$i") $killall_script"
}

# check_free I: node I's (or member eJ's) network namespace and veth do not exist.
check_free() {
  [[ ! -e $(node_netns "$1") ]] || die "network namespace $(node_name "$1") exists: a cluster named '$prefix' is up (down it, or use --name)"
  ip link show "$(node_veth "$1")" >/dev/null 2>&1 && die "link $(node_veth "$1") exists (a cluster named '$prefix' is up?)"
  return 0
}

check_up_args() {
  [[ $nodes =~ ^[1-9][0-9]*$ && $nodes -le 244 ]] || die "--nodes must be 1-244 (addresses .11-.254), not '$nodes'"
  [[ $servers =~ ^[1-9][0-9]*$ && $servers -le $nodes ]] || die "--servers must be 1-$nodes (at most --nodes), not '$servers'"
  [[ $etcd_members =~ ^[0-9]+$ && $etcd_members -le 54 ]] || die "--etcd must be 0-54 (addresses .201-.254), not '$etcd_members'"
  [[ $timeout =~ ^[1-9][0-9]*$ ]] || die "--timeout must be a number of seconds, not '$timeout'"
  [[ $prefix =~ ^[a-z]([a-z0-9-]*[a-z0-9])?$ ]] || die "--name must be lower-case letters, digits and '-', starting with a letter: '$prefix'"
  local o
  [[ $subnet =~ ^([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})$ ]] || die "--subnet must be three octets such as 10.99.0, not '$subnet'"
  for o in "${BASH_REMATCH[@]:1}"; do ((10#$o <= 255)) || die "--subnet: bad octet '$o'"; done

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
    check_new_node "$i"
  done

  if ((etcd_members > 0)); then
    mode=external
    [[ -n $etcd_bin ]] || die "--etcd needs --etcd-bin BIN"
    [[ -x $etcd_bin && -f $etcd_bin ]] || die "etcd binary '$etcd_bin' not found or not executable (--etcd-bin BIN)"
    etcd_bin=$(realpath -- "$etcd_bin")
    local out
    out=$("$etcd_bin" --version 2>&1) || true
    [[ $out == *'etcd Version'* ]] || die "'$etcd_bin --version' does not say 'etcd Version': not an etcd binary? (--etcd-bin BIN)"
    for c in openssl curl; do
      command -v "$c" >/dev/null || die "'$c' not found (needed for --etcd)"
    done
    ((${#prefix} + ${#etcd_members} + 4 <= 15)) || die "--name '$prefix' too long: link $(node_veth "e$etcd_members") exceeds 15 characters"
    for ((i = 1; i <= etcd_members; i++)); do
      check_free "e$i"
    done
  else
    [[ -z $etcd_bin ]] || die "--etcd-bin needs --etcd M"
    ((servers == 1)) || mode=embedded
  fi
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

# setup_node I: node I's (or member eJ's) network namespace, with eth0 on the bridge and a
# default route via it.
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

# write_cmd I ROLE [ARGS...]: node I's command line as a server or agent, with ARGS at the end,
# shell-quoted, for start_node (now and after a stop).
write_cmd() {
  local i=$1 role=$2 ndir
  local -a cmd
  shift 2
  ndir=$(node_dir "$i")
  echo "$role" >"$ndir/role"
  # nsenter --net, not `ip netns exec`: the latter also remounts /sys for the namespace, which
  # hides /sys/fs/cgroup from the kubelet. A UTS namespace of its own gives each node its name
  # as host name, as separate machines have: kube-controller-manager's and kube-scheduler's
  # leader identities and kube-apiserver's identity lease are made from it. Neither unshare
  # (no --fork) nor sh's exec forks, so the PID is still ketch's.
  # shellcheck disable=SC2016 # $0 and $@ are the inner shell's
  cmd=(nsenter "--net=$(node_netns "$i")" unshare --uts sh -c 'hostname "$0" && exec "$@"' "$(node_name "$i")" "$ketch")
  if [[ $role == server ]]; then
    cmd+=(server)
    if [[ $mode == external ]]; then
      # The servers find each other through the datastore.
      cmd+=(--datastore-endpoint "$(etcd_endpoints)" --datastore-cafile "$(pki_dir)/ca.crt"
        --datastore-certfile "$(pki_dir)/client.crt" --datastore-keyfile "$(pki_dir)/client.key"
        --token-file "$dir/token")
    elif ((i == 1)); then
      [[ $mode != embedded ]] || cmd+=(--cluster-init)
    else
      cmd+=(--server "https://$(node_ip 1):6443" --token-file "$(join_token_file)")
    fi
  else
    cmd+=(agent --server "https://$(node_ip 1):6443" --token-file "$(join_token_file)")
  fi
  cmd+=(--data-dir "$ndir/data" --run-dir "$(node_run_dir "$i")" --node-name "$(node_name "$i")"
    --node-ip "$(node_ip "$i")" --flannel-iface eth0)
  ((i != 1)) || cmd+=(--write-kubeconfig "$dir/kubeconfig")
  [[ $role != server ]] || cmd+=("${server_args[@]}")
  cmd+=("$@")
  printf '%q ' "${cmd[@]}" >"$ndir/cmd"
  echo >>"$ndir/cmd"
}

# wait_token I SECONDS: wait for server I's token file, which it writes once its CA and
# supervisor are ready (a joining server: once it has joined).
wait_token() {
  local i=$1 secs=$2 token deadline
  deadline=$((SECONDS + secs))
  token="$(node_dir "$i")/data/server/token"
  say "waiting up to ${secs}s for $token"
  while ((SECONDS < deadline)); do
    [[ -s $token ]] && return 0
    if [[ -z $(node_pid "$i") ]]; then
      log_tail "$i"
      die "$(node_name "$i") exited before writing $token"
    fi
    sleep 0.2
  done
  log_tail "$i"
  die "$(node_name "$i") did not write $token within ${secs}s"
}

# check_nodes_alive: fail with the log of any node whose ketch (or member whose etcd) is gone.
check_nodes_alive() {
  local i
  for i in $(seq 1 "$nodes") $(seq -f 'e%g' 1 "$etcd_members"); do
    if [[ -z $(node_pid "$i") ]]; then
      log_tail "$i"
      die "$(node_name "$i")'s $(is_etcd "$i" && echo etcd || echo ketch) exited"
    fi
  done
}

wait_nodes_ready() {
  local deadline registered left
  deadline=$((SECONDS + timeout))
  say "waiting up to ${timeout}s for $nodes node(s) to register and become Ready"
  # Servers are nodes too (control-plane nodes): all N register. kubectl asks node 1.
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

# ---- external etcd ----

# ossl ARGS...: openssl, quiet unless it fails.
ossl() {
  local out
  out=$(openssl "$@" 2>&1) || die "openssl $1 failed: $out"
}

# sign_cert NAME SUBJECT EXTENDED_KEY_USAGE [SUBJECT_ALT_NAMES]: NAME.key (EC P-256) and
# NAME.crt signed by the CA, in the PKI dir.
sign_cert() {
  local p name=$1 subj=$2 eku=$3 san=${4:-}
  p=$(pki_dir)
  ossl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$p/$name.key"
  ossl req -new -key "$p/$name.key" -subj "$subj" -out "$p/$name.csr"
  {
    echo 'basicConstraints=critical,CA:FALSE'
    echo 'keyUsage=critical,digitalSignature'
    echo "extendedKeyUsage=$eku"
    [[ -z $san ]] || echo "subjectAltName=$san"
  } >"$p/$name.ext"
  ossl x509 -req -in "$p/$name.csr" -CA "$p/ca.crt" -CAkey "$p/ca.key" -set_serial "0x$(openssl rand -hex 16)" \
    -days 10 -extfile "$p/$name.ext" -out "$p/$name.crt"
  rm -f "$p/$name.csr" "$p/$name.ext"
}

# make_etcd_pki: DIR/etcd-pki: the etcd CA, a certificate per member (server and client auth, for
# its clients and its peers) and the servers' client certificate (CN ketch).
make_etcd_pki() {
  local p j ip old_umask
  p=$(pki_dir)
  old_umask=$(umask)
  umask 077
  mkdir -p "$p"
  ossl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$p/ca.key"
  ossl req -x509 -new -key "$p/ca.key" -subj "/CN=ketch-cluster $prefix etcd CA" -days 10 -out "$p/ca.crt" \
    -addext 'basicConstraints=critical,CA:TRUE' -addext 'keyUsage=critical,keyCertSign,cRLSign'
  for ((j = 1; j <= etcd_members; j++)); do
    ip=$(node_ip "e$j")
    sign_cert "e$j" "/CN=$prefix-e$j" serverAuth,clientAuth "IP:$ip,IP:127.0.0.1"
  done
  sign_cert client /CN=ketch clientAuth
  umask "$old_umask"
  say "etcd PKI in $p"
}

# write_etcd_cmd J: member eJ's command line, for start_node.
write_etcd_cmd() {
  local id="e$1" j ip ndir p cluster=''
  local -a cmd
  ip=$(node_ip "$id")
  ndir=$(node_dir "$id")
  p=$(pki_dir)
  for ((j = 1; j <= etcd_members; j++)); do
    cluster+=${cluster:+,}"$(node_name "e$j")=https://$(node_ip "e$j"):2380"
  done
  cmd=(nsenter "--net=$(node_netns "$id")" "$etcd_bin" --name "$(node_name "$id")" --data-dir "$ndir/data"
    --listen-client-urls "https://$ip:2379" --advertise-client-urls "https://$ip:2379"
    --listen-peer-urls "https://$ip:2380" --initial-advertise-peer-urls "https://$ip:2380"
    --initial-cluster "$cluster" --initial-cluster-state new --initial-cluster-token "$prefix"
    --client-cert-auth --trusted-ca-file "$p/ca.crt" --cert-file "$p/$id.crt" --key-file "$p/$id.key"
    --peer-client-cert-auth --peer-trusted-ca-file "$p/ca.crt" --peer-cert-file "$p/$id.crt" --peer-key-file "$p/$id.key"
    --log-level warn)
  printf '%q ' "${cmd[@]}" >"$ndir/cmd"
  echo >>"$ndir/cmd"
}

# etcd_healthy J: member eJ answers /health with "health":"true" (from the machine's namespace,
# over the bridge).
etcd_healthy() {
  local p out
  p=$(pki_dir)
  out=$(curl -s --noproxy '*' --max-time 3 --cacert "$p/ca.crt" --cert "$p/client.crt" --key "$p/client.key" \
    "https://$(node_ip "e$1"):2379/health" 2>/dev/null) || return 1
  [[ $out == *'"health":"true"'* ]]
}

wait_etcd_healthy() {
  local j deadline ok
  deadline=$((SECONDS + 60))
  say "waiting up to 60s for $etcd_members etcd member(s) to be healthy"
  while :; do
    ok=0
    for ((j = 1; j <= etcd_members; j++)); do
      if [[ -z $(node_pid "e$j") ]]; then
        log_tail "e$j"
        die "$(node_name "e$j")'s etcd exited"
      fi
      etcd_healthy "$j" && ok=$((ok + 1))
    done
    ((ok < etcd_members)) || return 0
    ((SECONDS < deadline)) || die "only $ok of $etcd_members etcd members healthy within 60s (logs: $dir/$prefix-e*/etcd.out)"
    sleep 1
  done
}

# write_token: DIR/token, the secret every server is given and every node joins with.
write_token() {
  local s='' old_umask
  while ((${#s} < 32)); do s+=$(head -c 256 /dev/urandom | tr -dc 'A-Za-z0-9'); done
  old_umask=$(umask)
  umask 077
  printf '%s\n' "${s:0:32}" >"$dir/token"
  umask "$old_umask"
}

# up_etcd: the external etcd cluster, healthy, and the token.
up_etcd() {
  local j
  make_etcd_pki
  for ((j = 1; j <= etcd_members; j++)); do
    setup_node "e$j"
    write_etcd_cmd "$j"
  done
  for ((j = 1; j <= etcd_members; j++)); do
    start_node "e$j"
  done
  wait_etcd_healthy
  write_token
}

cmd_up() {
  check_up_args
  server_args=("${extra[@]}")
  mkdir -p "$dir"
  # Recorded first, so that down can clean up after an up that failed half way.
  write_env
  trap 'rc=$?; if ((rc)); then say "up failed; logs: $dir/*/*.out; clean up with: $0 down --dir $dir"; fi' EXIT

  setup_bridge
  [[ $mode != external ]] || up_etcd
  local i
  for ((i = 1; i <= nodes; i++)); do
    setup_node "$i"
    write_cmd "$i" "$( ((i <= servers)) && echo server || echo agent)"
  done
  start_node 1
  # The other servers and the agents join with the token the server writes once its CA and
  # supervisor are ready; each further server writes its own once it has joined. One after
  # the other: two servers joining at once could both try to become the second etcd member.
  ((nodes == 1)) || wait_token 1 120
  for ((i = 2; i <= servers; i++)); do
    start_node "$i"
    wait_token "$i" 180
  done
  for ((i = servers + 1; i <= nodes; i++)); do
    start_node "$i"
  done
  if $wait_ready; then
    wait_nodes_ready
    write_host_kubeconfig
  fi
  local datastore="node 1's own"
  [[ $mode != embedded ]] || datastore='embedded etcd'
  [[ $mode != external ]] || datastore="$etcd_members etcd member(s), token $dir/token"
  say "cluster '$prefix' up: $nodes node(s), $servers server(s), datastore $datastore; on $subnet.0/24, kubeconfig $dir/kubeconfig"
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
  local i j pid ns
  local -a pids=()
  for ((i = 1; i <= nodes; i++)); do
    pid=$(node_pid "$i")
    [[ -z $pid ]] || pids+=("$pid")
  done
  if [[ ${#pids[@]} -gt 0 ]]; then
    say "stopping ketch: ${pids[*]}"
    stop_pids 20 "${pids[@]}" || true
  fi
  # The datastore last: the servers may still write to it while they stop.
  pids=()
  for ((j = 1; j <= etcd_members; j++)); do
    pid=$(node_pid "e$j")
    [[ -z $pid ]] || pids+=("$pid")
  done
  if [[ ${#pids[@]} -gt 0 ]]; then
    say "stopping etcd: ${pids[*]}"
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
    del_netns "$i"
  done
  # An etcd member has nothing but its process, namespace and files.
  for ((j = etcd_members; j >= 1; j--)); do
    del_netns "e$j"
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

# del_netns I: delete node I's (or member eJ's) network namespace and veth, if they exist.
del_netns() {
  if [[ -e $(node_netns "$1") ]]; then ip netns delete "$(node_name "$1")" || say "could not delete netns $(node_name "$1")"; fi
  # Normally gone with the namespace's end of the pair; not if something still holds the namespace.
  if ip link show "$(node_veth "$1")" >/dev/null 2>&1; then ip link delete "$(node_veth "$1")" || true; fi
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

cmd_kill() {
  [[ ${#args[@]} -eq 1 ]] || die "usage: $prog kill --dir DIR NODE"
  load_env
  local i pid
  i=$(node_index "${args[0]}")
  pid=$(node_pid "$i")
  if [[ -z $pid ]]; then
    say "$(node_name "$i") is not running"
    return 0
  fi
  say "killing $(node_name "$i") (pid $pid)"
  kill -KILL "$pid" 2>/dev/null || true
  wait_gone 10 "$pid" || die "$(node_name "$i") (pid $pid) still runs 10s after SIGKILL"
  say "$(node_name "$i") killed"
}

cmd_start() {
  [[ ${#args[@]} -eq 1 ]] || die "usage: $prog start --dir DIR NODE [-- ARGS...]"
  load_env
  local i
  i=$(node_index "${args[0]}")
  start_node "$i" "${extra[@]}"
}

cmd_add() {
  load_env
  local i=$((nodes + 1)) role=agent
  $add_server && role=server
  [[ -x $ketch ]] || die "ketch binary '$ketch' not found or not executable"
  ip link show "$(bridge)" >/dev/null 2>&1 || die "bridge $(bridge) does not exist: the cluster is not up"
  [[ -e $(node_netns 1) ]] || die "network namespace $(node_name 1) does not exist: the cluster is not up"
  check_new_node "$i"
  # Recorded first, so that down cleans the node up even if what follows fails.
  nodes=$i
  [[ $role != server ]] || servers=$((servers + 1))
  write_env
  setup_node "$i"
  write_cmd "$i" "$role" "${extra[@]}"
  start_node "$i"
  # As in up: a server is there once it has joined and written its token.
  [[ $role != server ]] || wait_token "$i" 180
  say "added $(node_name "$i") as node $i ($role)"
}

cmd_status() {
  [[ ${#args[@]} -eq 0 ]] || die "usage: $prog status --dir DIR"
  load_env
  local i pid
  for i in $(seq 1 "$nodes") $(seq -f 'e%g' 1 "$etcd_members"); do
    pid=$(node_pid "$i")
    printf '%-16s %-15s %-7s %s\n' "$(node_name "$i")" "$(node_ip "$i")" "$(node_role "$i")" \
      "$([[ -n $pid ]] && echo "running, pid $pid" || echo stopped)"
  done
}

cmd_kubectl() {
  load_env
  kc_node=$(node_index "${KC_NODE:-1}")
  ! is_etcd "$kc_node" || die "KC_NODE must be a ketch node, not etcd member $(node_name "$kc_node")"
  [[ -e $(node_netns "$kc_node") ]] || die "network namespace $(node_name "$kc_node") does not exist"
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

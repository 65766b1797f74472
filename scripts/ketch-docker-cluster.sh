#!/bin/sh
# ketch-docker-cluster.sh: throwaway ketch clusters in Docker, one container per node, from the
# node image (Dockerfile, `make image`). A small k3d: see docs/docker.md, and docs/multinode.md
# for scripts/ketch-cluster.sh, which needs no Docker.
#
# Everything a cluster owns carries the label io.ketch.cluster=NAME: its network ketch-NAME, its
# containers ketch-NAME-server and ketch-NAME-agent-<i>, and one volume per node with the same
# name as its container (the node's data dir, so that a container replaced on the same volume is
# the same node). The nodes share a random secret as their token: agents join with it alone,
# and the server proves it knows it before they send it.
set -eu

prog=${0##*/}
DOCKER=${DOCKER:-docker}
label=io.ketch.cluster
nl='
'

usage() {
	cat <<EOF
Usage:
  $prog create NAME [--agents N] [--image IMG] [--port P] [--subnet CIDR]
                    [--kubeconfig FILE] [--timeout SECONDS] [--docker-arg ARG]...
                    [-- SERVER_ARGS...]
  $prog delete NAME
  $prog stop NAME
  $prog start NAME [--timeout SECONDS]
  $prog list
  $prog kubeconfig NAME [--kubeconfig FILE]
  $prog load NAME IMG.tar...

create   starts a server and N agents (default 1) on the network ketch-NAME, waits until
         every node is Ready, and writes the admin kubeconfig for this machine
         (default \$HOME/.kube/ketch-NAME.yaml; the server's port 6443 is published on
         127.0.0.1:P, a free port chosen at create unless --port). --image defaults to ketch:latest
         (make image). --subnet sets the network's subnet. SERVER_ARGS go to ketch server.
         Each node container runs --privileged; where the engine refuses that, give the
         options it stands for instead, one --docker-arg each (docs/docker.md).
delete   removes the cluster's containers, volumes, network and kubeconfig.
stop     stops its containers (docker stop: SIGTERM, ketch stops; the pods stop with them).
start    starts them again and waits until every node is Ready: the same nodes, the same data.
list     lists the clusters, their nodes and API ports.
kubeconfig  writes the kubeconfig again (for example after the port changed).
load     imports image tarballs (docker save or OCI) into every node: no registry needed.

Environment: DOCKER, the docker command (default docker).
EOF
}

die() {
	echo "$prog: $*" >&2
	exit 1
}

say() { echo "$prog: $*" >&2; }

# dk runs docker; $DOCKER may be a command with arguments (docker --host ...), split on spaces
# whatever IFS is in the caller.
dk() (
	IFS=' '
	exec $DOCKER "$@"
)

valid_name() {
	case $1 in
	'' | *[!a-z0-9-]* | -* | *-) die "cluster name '$1' must be lower-case letters, digits and dashes (it names containers and the node names)" ;;
	esac
}

server_of() { echo "ketch-$1-server"; }

# nodes NAME: the cluster's containers, server first.
nodes() {
	dk ps -a --filter "label=$label=$1" --format '{{.Names}}' | sort | awk -v s="$(server_of "$1")" '$0 == s { print; next } { a[n++] = $0 } END { for (i = 0; i < n; i++) print a[i] }'
}

# agents NAME: the cluster's agent containers.
agents() {
	nodes "$1" | grep -vx "$(server_of "$1")" || true
}

exists() {
	[ -n "$(nodes "$1")" ] || [ -n "$(dk network ls -q --filter "label=$label=$1")" ] ||
		[ -n "$(dk volume ls -q --filter "label=$label=$1")" ]
}

# free_port is a TCP port nothing listens on here, from 30000-60000 (ss from iproute2; without
# it, 6443).
free_port() {
	if ! command -v ss >/dev/null; then
		echo 6443
		return
	fi
	while :; do
		p=$((30000 + $(od -An -N2 -tu2 /dev/urandom) % 30000))
		[ -z "$(ss -Hltn "sport = :$p")" ] && echo "$p" && return
	done
}

default_kubeconfig() { echo "${HOME:-/root}/.kube/ketch-$1.yaml"; }

# write_kubeconfig NAME FILE: the admin kubeconfig with the published address.
write_kubeconfig() {
	server=$(server_of "$1")
	port=$(dk port "$server" 6443/tcp | sed -n 's/^127\.0\.0\.1:\([0-9]*\)$/\1/p' | head -n 1)
	[ -n "$port" ] || die "$server publishes no port for 6443 on 127.0.0.1: is it running?"
	mkdir -p "$(dirname "$2")"
	tmp="$2.tmp.$$"
	(umask 077 && dk exec "$server" ketch kubeconfig --server "https://127.0.0.1:$port" >"$tmp") || {
		rm -f "$tmp"
		die "could not read the kubeconfig from $server"
	}
	mv "$tmp" "$2"
	say "kubeconfig written to $2 (server https://127.0.0.1:$port): export KUBECONFIG=$2"
}

# ready_nodes SERVER: how many nodes the cluster reports Ready.
ready_nodes() {
	dk exec "$1" kubectl get nodes --no-headers 2>/dev/null | awk '$2 == "Ready" { n++ } END { print n + 0 }'
}

cmd_create() {
	name=$1
	shift
	agents=1 image=ketch:latest port='' subnet='' kubeconfig='' timeout=300 run_args=''
	while [ $# -gt 0 ]; do
		case $1 in
		--agents) agents=${2:?--agents needs a number}; shift 2 ;;
		--image) image=${2:?--image needs an image}; shift 2 ;;
		--port) port=${2:?--port needs a port}; shift 2 ;;
		--subnet) subnet=${2:?--subnet needs a CIDR}; shift 2 ;;
		--kubeconfig) kubeconfig=${2:?--kubeconfig needs a file}; shift 2 ;;
		--timeout) timeout=${2:?--timeout needs seconds}; shift 2 ;;
		--docker-arg) run_args=$run_args${2:?--docker-arg needs an argument}$nl; shift 2 ;;
		--) shift; break ;;
		*) die "create: unknown option $1 (see $prog --help)" ;;
		esac
	done
	case $agents in '' | *[!0-9]*) die "--agents $agents is not a number" ;; esac
	case $port in *[!0-9]*) die "--port $port is not a port number" ;; esac
	[ -n "$kubeconfig" ] || kubeconfig=$(default_kubeconfig "$name")
	[ -n "$run_args" ] || run_args=--privileged
	# A fixed port: one docker picks anew at each start would break the kubeconfig.
	[ -n "$port" ] || port=$(free_port)
	exists "$name" && die "a cluster $name exists already: delete it first ($prog delete $name)"
	dk image inspect "$image" >/dev/null 2>&1 || die "no image $image: build it with make image, or load it with docker load -i dist/ketch-image-<arch>.tar"

	started=$(date +%s)
	secret=$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')
	net=ketch-$name
	say "creating network $net"
	dk network create --label "$label=$name" ${subnet:+--subnet "$subnet"} "$net" >/dev/null
	server=$(server_of "$name")
	# run_args holds one argument per line: split on newlines only, and expand no pattern.
	IFS=$nl
	set -f
	say "starting $server"
	dk volume create --label "$label=$name" "$server" >/dev/null
	# shellcheck disable=SC2086
	dk run --detach --name "$server" --hostname "$server" --label "$label=$name" \
		--network "$net" --publish "127.0.0.1:${port}:6443" \
		--tmpfs /run --tmpfs /var/run --volume "$server:/var/lib/ketch" \
		--env KETCH_TOKEN="$secret" $run_args \
		"$image" server "$@" >/dev/null
	i=1
	while [ "$i" -le "$agents" ]; do
		agent=ketch-$name-agent-$i
		say "starting $agent"
		dk volume create --label "$label=$name" "$agent" >/dev/null
		# shellcheck disable=SC2086
		dk run --detach --name "$agent" --hostname "$agent" --label "$label=$name" \
			--network "$net" --tmpfs /run --tmpfs /var/run --volume "$agent:/var/lib/ketch" \
			--env KETCH_URL="https://$server:6443" --env KETCH_TOKEN="$secret" $run_args \
			"$image" agent >/dev/null
		i=$((i + 1))
	done
	unset IFS
	set +f

	wait_ready "$name" $((agents + 1)) "$timeout" "$started"
	write_kubeconfig "$name" "$kubeconfig"
}

cmd_delete() {
	name=$1
	exists "$name" || die "no cluster $name ($prog list shows them)"
	for c in $(nodes "$name"); do
		say "removing $c"
		dk rm --force "$c" >/dev/null
	done
	for v in $(dk volume ls -q --filter "label=$label=$name"); do
		dk volume rm "$v" >/dev/null
	done
	for n in $(dk network ls -q --filter "label=$label=$name"); do
		dk network rm "$n" >/dev/null
	done
	rm -f "$(default_kubeconfig "$name")"
	say "cluster $name deleted"
}

cmd_list() {
	printf '%-20s %-6s %s\n' CLUSTER NODES API
	dk ps -a --filter "label=$label" --format "{{.Label \"$label\"}}" | sort -u | while read -r name; do
		count=$(nodes "$name" | wc -l)
		api=$(dk port "$(server_of "$name")" 6443/tcp 2>/dev/null | head -n 1)
		printf '%-20s %-6s %s\n' "$name" "$count" "${api:+https://$api}"
	done
}

cmd_stop() {
	name=$1
	exists "$name" || die "no cluster $name ($prog list shows them)"
	# The agents first (together), then the server: no agent waits for an API that is gone.
	a=$(agents "$name")
	if [ -n "$a" ]; then
		say "stopping $(echo "$a" | tr '\n' ' ')"
		# shellcheck disable=SC2086
		dk stop --time 60 $a >/dev/null
	fi
	say "stopping $(server_of "$name")"
	dk stop --time 60 "$(server_of "$name")" >/dev/null
}

cmd_start() {
	name=$1
	shift
	timeout=300
	if [ "${1:-}" = --timeout ]; then
		timeout=${2:?--timeout needs seconds}
	fi
	exists "$name" || die "no cluster $name ($prog list shows them)"
	started=$(date +%s)
	# The server first, then the agents together: they find it starting.
	say "starting $(server_of "$name")"
	dk start "$(server_of "$name")" >/dev/null
	a=$(agents "$name")
	if [ -n "$a" ]; then
		say "starting $(echo "$a" | tr '\n' ' ')"
		# shellcheck disable=SC2086
		dk start $a >/dev/null
	fi
	# The API still calls the nodes Ready from before the stop until their grace period ends:
	# wait for each node's own "node Ready" line of this start (ketch prints it once the kubelet
	# reported anew).
	say "waiting for every node's ketch to report its node Ready (up to ${timeout}s)"
	for c in $(nodes "$name"); do
		until dk logs --since "$started" "$c" 2>&1 | grep -q 'ketch: node Ready'; do
			if [ "$(dk inspect --format '{{.State.Running}}' "$c")" != true ]; then
				stopped "$c"
			fi
			[ $(($(date +%s) - started)) -lt "$timeout" ] || die "$c did not report its node Ready within ${timeout}s"
			sleep 0.2
		done
	done
	wait_ready "$name" "$(nodes "$name" | wc -l)" "$timeout" "$started"
}

# stopped CONTAINER [HINT]: a node container stopped while the script waited for it: its last
# output, its exit status, and where the components' log is.
stopped() {
	dk logs --tail 20 "$1" >&2 || true
	die "$1 stopped with exit status $(dk inspect --format '{{.State.ExitCode}}' "$1") (its last output is above; the components' log: docker cp $1:/var/lib/ketch/logs/ketch.log .)${2-}"
}

# wait_ready NAME N TIMEOUT START: until N nodes are Ready; START is when the wait began (date +%s).
wait_ready() {
	server=$(server_of "$1")
	say "waiting for $2 nodes to be Ready (up to ${3}s)"
	while :; do
		for c in $(nodes "$1"); do
			if [ "$(dk inspect --format '{{.State.Running}}' "$c")" != true ]; then
				stopped "$c" "; $prog delete $1 removes the cluster"
			fi
		done
		[ "$(ready_nodes "$server")" -ge "$2" ] && break
		if [ $(($(date +%s) - $4)) -ge "$3" ]; then
			dk exec "$server" kubectl get nodes >&2 || true
			die "not every node was Ready within ${3}s; $prog delete $1 removes the cluster"
		fi
		sleep 1
	done
	say "cluster $1: $2 nodes Ready in $(($(date +%s) - $4))s"
}

cmd_kubeconfig() {
	name=$1
	shift
	kubeconfig=$(default_kubeconfig "$name")
	if [ "${1:-}" = --kubeconfig ]; then
		kubeconfig=${2:?--kubeconfig needs a file}
	fi
	exists "$name" || die "no cluster $name ($prog list shows them)"
	write_kubeconfig "$name" "$kubeconfig"
}

cmd_load() {
	name=$1
	shift
	[ $# -gt 0 ] || die "load: name the image tarballs"
	exists "$name" || die "no cluster $name ($prog list shows them)"
	for tarball in "$@"; do
		[ -f "$tarball" ] || die "load: $tarball is not a file"
	done
	for c in $(nodes "$name"); do
		for tarball in "$@"; do
			say "importing $tarball into $c"
			dk exec -i "$c" ketch images import - <"$tarball" >&2 || die "importing $tarball into $c failed"
		done
	done
}

[ $# -gt 0 ] || {
	usage >&2
	exit 2
}
command=$1
shift
case $command in
-h | --help | help) usage; exit 0 ;;
list) cmd_list ;;
create | delete | stop | start | kubeconfig | load)
	[ $# -gt 0 ] || die "$command needs a cluster name"
	valid_name "$1"
	"cmd_$command" "$@"
	;;
*) die "unknown command $command (see $prog --help)" ;;
esac

// Command ketch-bench is a development-only benchmark tool, not shipped with ketch. Each
// command writes its own section of a markdown file. datastore runs one workload against
// ketch's datastore and against a real, embedded etcd; server measures `ketch server` as a
// user sees it: binary size, time to a Ready node, the node's memory and pod start-up latency;
// multinode measures agents and the pod network; addons measures the bundled addons.
//
//	ketch-bench datastore --ketch-bin PATH [--out FILE] [--targets ketch,etcd] [--quick] [--data-root DIR]
//	ketch-bench server --ketch-bin PATH [--out FILE] [--quick] [--data-root DIR] [--killall PATH]
//	ketch-bench multinode --ketch-bin PATH [--out FILE] [--quick] [--script PATH] [--killall PATH]
//	ketch-bench addons --ketch-bin PATH [--out FILE] [--quick] [--data-root DIR] [--killall PATH]
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
)

const usageText = `usage: ketch-bench datastore --ketch-bin PATH [flags]
       ketch-bench server --ketch-bin PATH [flags]
       ketch-bench multinode --ketch-bin PATH [flags]
       ketch-bench addons --ketch-bin PATH [flags]

datastore: benchmarks ketch's datastore against embedded etcd with the same workload.

  --ketch-bin PATH     ketch binary to benchmark (required)
  --out FILE           markdown file whose datastore section is replaced
  --targets LIST       comma-separated targets to run (default "ketch,etcd")
  --quick              much smaller counts, for a smoke run
  --data-root DIR      parent of the scratch data dir (default /var/tmp; never tmpfs)

server: measures ketch server as a user sees it: binary size, exec to node Ready (cold and
warm), idle memory of the whole node, and pod start-up latency. Runs as root, starts real
servers (one at a time; the host must not run another ketch node) and cleans up after them
with scripts/ketch-killall.sh.

  --ketch-bin PATH     ketch binary to benchmark (required)
  --out FILE           markdown file whose server section is replaced
  --quick              2 cold and 2 warm starts instead of 3 and 3, 30 s idle instead of 2 min
  --data-root DIR      parent of the scratch data dirs (default /var/tmp; never tmpfs)
  --killall PATH       ketch-killall.sh (default scripts/ketch-killall.sh, here or next to bin/)

multinode: a server and two agents made by scripts/ketch-cluster.sh, each in its own network
namespace: agent start to node Ready (cold join and warm restart), an idle agent's memory, and
pod-to-pod TCP throughput and latency on the same node and across nodes, with flannel vxlan and
host-gw (two clusters, one after the other). Runs as root, holds /tmp/ketch-host.lock and takes
every cluster down at the end.

  --ketch-bin PATH     ketch binary to benchmark (required)
  --out FILE           markdown file whose multinode section is replaced
  --quick              1 cold and 1 warm start, 15 s idle, one 3 s stream per path
  --script PATH        ketch-cluster.sh (default: next to ketch-killall.sh)
  --killall PATH       ketch-killall.sh (default scripts/ketch-killall.sh, here or next to bin/)

addons: the bundled addons of ketch server: exec to all addon Deployments available (cold
starts), the addon pods' idle memory, and DNS lookup latency from a pod through the cluster
DNS. Runs as root, holds /tmp/ketch-host.lock, starts real servers one at a time (the host must
not run another ketch node) and cleans up after them with scripts/ketch-killall.sh.

  --ketch-bin PATH     ketch binary to benchmark (required)
  --out FILE           markdown file whose addons section is replaced
  --quick              2 cold starts instead of 3, 20 s idle instead of 1 min
  --data-root DIR      parent of the scratch data dirs (default /var/tmp; never tmpfs)
  --killall PATH       ketch-killall.sh (default scripts/ketch-killall.sh, here or next to bin/)
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usageText)
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "datastore":
		err = runDatastoreBench(os.Args[2:])
	case "server":
		err = runServerBench(os.Args[2:])
	case "multinode":
		err = runMultinodeBench(os.Args[2:])
	case "addons":
		err = runAddonsBench(os.Args[2:])
	case "etcd-server":
		// Hidden: the bench re-execs itself with this so etcd gets its own process, whose
		// memory is measured exactly like ketch's.
		err = runEtcdServer(os.Args[2:])
	case "-h", "-help", "--help", "help":
		fmt.Print(usageText)
		return
	default:
		fmt.Fprintf(os.Stderr, "ketch-bench: unknown command %q\n\n%s", os.Args[1], usageText)
		os.Exit(2)
	}
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "ketch-bench: %v\n", err)
		os.Exit(1)
	}
}

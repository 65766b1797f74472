// Command ketch-bench is a development-only benchmark tool, not shipped with ketch. Each
// subcommand measures one part of ketch and writes its own section of a markdown file
// (docs/benchmarks.md): datastore runs one workload against ketch's datastore and against a
// real, embedded etcd; server measures `ketch server` as a user sees it: binary size, time to a
// Ready node, the node's memory and pod start-up latency; multinode measures agents and the pod
// network; ha measures high availability (failover after kill -9 of the leading server, memory
// and write throughput per store); addons measures the bundled addons; docker measures the node
// image and clusters in Docker.
//
//	ketch-bench datastore --ketch-bin PATH [--out FILE] [--targets ketch,etcd] [--quick] [--data-root DIR]
//	ketch-bench server --ketch-bin PATH [--out FILE] [--quick] [--data-root DIR] [--killall PATH]
//	ketch-bench multinode --ketch-bin PATH [--out FILE] [--quick] [--script PATH] [--killall PATH]
//	ketch-bench ha --ketch-bin PATH [--out FILE] [--kills N] [--quick] [--script PATH] [--killall PATH]
//	ketch-bench addons --ketch-bin PATH [--out FILE] [--quick] [--data-root DIR] [--killall PATH]
//	ketch-bench docker --ketch-bin PATH [--out FILE] [--quick] [--script PATH]
//
// The subcommands are in ./cmd; netbench, the program of the pod network measurements, is a
// separate command in ./netbench.
package main

import (
	"os"

	"github.com/ketch-k8s/ketch/tools/ketch-bench/cmd"
)

func main() {
	os.Exit(cmd.Main(os.Args[1:]))
}

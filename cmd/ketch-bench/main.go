// Command ketch-bench is a development-only benchmark that runs one workload against ketch's
// datastore and against a real, embedded etcd, and writes the comparison to a markdown file.
// It is not shipped with ketch.
//
//	ketch-bench datastore --ketch-bin PATH [--out FILE] [--targets ketch,etcd] [--quick] [--data-root DIR]
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
)

const usageText = `usage: ketch-bench datastore --ketch-bin PATH [flags]

Benchmarks ketch's datastore against embedded etcd with the same workload.

flags:
  --ketch-bin PATH     ketch binary to benchmark (required)
  --out FILE           markdown file whose datastore section is replaced
  --targets LIST       comma-separated targets to run (default "ketch,etcd")
  --quick              much smaller counts, for a smoke run
  --data-root DIR      parent of the scratch data dir (default /var/tmp; never tmpfs)
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

// Package app is ketch's command line: the commands and their flags, bound straight into the
// raw config structs of pkg/config, which parse and check them before anything runs. It is a
// package of its own, not cmd/ketch's main, so that the configuration reference in docs/ can be
// generated from these definitions (Reference) and checked against them.
package app

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	containerdversion "github.com/containerd/containerd/v2/version"
	"github.com/urfave/cli/v2"
	k8sversion "k8s.io/component-base/version"

	"github.com/ketch-k8s/ketch/pkg/config"
	"github.com/ketch-k8s/ketch/pkg/console"
	"github.com/ketch-k8s/ketch/pkg/hostcheck"
	"github.com/ketch-k8s/ketch/pkg/pid1"
	"github.com/ketch-k8s/ketch/pkg/version"
)

// Main runs ketch with the process's arguments and returns its exit status. ketch is also the
// programs users run by name through links (kubectl, ctr, crictl).
func Main(args []string) int {
	if pid1.IsInit() {
		// A container's first process: ketch runs as the child of a process that does PID 1's
		// work (see pkg/pid1).
		return pid1.Run("/proc/self/exe", args, os.Environ(), func(format string, a ...any) {
			fmt.Fprintf(os.Stderr, format+"\n", a...)
		})
	}
	switch filepath.Base(args[0]) {
	case "kubectl":
		return runKubectl(args[1:])
	case "ctr":
		if err := runCtr(args[1:]); err != nil {
			fmt.Fprintf(os.Stderr, "ctr: %v\n", err)
			return 1
		}
		return 0
	case "crictl":
		// runCrictl returns only if it could not exec crictl.
		fmt.Fprintf(os.Stderr, "crictl: %v\n", runCrictl(args[1:]))
		return 1
	}
	defaultPath()
	cli.VersionPrinter = func(c *cli.Context) {
		fmt.Fprintf(c.App.Writer, "ketch version %s (%s)\nkubernetes %s\ncontainerd %s\n",
			version.Version, version.GitCommit, k8sversion.Get().GitVersion, containerdversion.Version)
	}
	return exitStatus(New().Run(args), os.Stderr)
}

// exitStatus is 1 after an error, which is printed to stderr unless the command has shown it
// already (console.ReportedError), and 0 otherwise.
func exitStatus(err error, stderr io.Writer) int {
	if err == nil {
		return 0
	}
	if !errors.As(err, new(console.ReportedError)) {
		fmt.Fprintf(stderr, "ketch: %v\n", err)
	}
	return 1
}

// New is the ketch command line.
func New() *cli.App {
	return newApp(runServer, runAgent)
}

// newApp is the command line with what the node commands run once their config is parsed.
func newApp(server func(*config.Server) error, agent func(*config.Agent) error) *cli.App {
	return &cli.App{
		Name:    "ketch",
		Usage:   "a small, single-binary Kubernetes distribution",
		Version: version.Version,
		Commands: []*cli.Command{
			serverCommand(server),
			agentCommand(agent),
			checkConfigCommand(hostcheck.CheckConfig),
			tokenCommand(),
			kubeconfigCommand(),
			dashboardCommand(),
			kubectlCommand(),
			ctrCommand(),
			crictlCommand(),
			imagesCommand(),
			datastoreCommand(),
		},
		EnableBashCompletion: true,
	}
}

// defaultPath gives a process started with an empty environment (some init systems do that) the
// usual PATH: kube-proxy, flannel and the CNI plugins run iptables, and the kubelet mount. It is
// the one place ketch sets PATH, before anything runs.
func defaultPath() {
	if os.Getenv("PATH") == "" {
		os.Setenv("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
	}
}

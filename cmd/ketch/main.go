// Command ketch is the single binary of the ketch Kubernetes distribution.
package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	containerdversion "github.com/containerd/containerd/v2/version"
	"github.com/urfave/cli/v2"
	k8sversion "k8s.io/component-base/version"

	"github.com/ketch-k8s/ketch/pkg/daemon"
	"github.com/ketch-k8s/ketch/pkg/version"
)

func main() {
	// ketch is also the programs users run by name.
	switch filepath.Base(os.Args[0]) {
	case "kubectl":
		os.Exit(runKubectl(os.Args[1:]))
	case "ctr":
		if err := runCtr(os.Args[1:]); err != nil {
			fmt.Fprintf(os.Stderr, "ctr: %v\n", err)
			os.Exit(1)
		}
		return
	}
	cli.VersionPrinter = func(c *cli.Context) {
		fmt.Fprintf(c.App.Writer, "ketch version %s (%s)\nkubernetes %s\ncontainerd %s\n",
			version.Version, version.GitCommit, k8sversion.Get().GitVersion, containerdversion.Version)
	}
	app := &cli.App{
		Name:    "ketch",
		Usage:   "a small, single-binary Kubernetes distribution",
		Version: version.Version,
		Commands: []*cli.Command{
			serverCommand(),
			agentCommand(),
			tokenCommand(),
			kubectlCommand(),
			ctrCommand(),
			imagesCommand(),
			datastoreCommand(),
		},
		EnableBashCompletion: true,
	}
	if err := app.Run(os.Args); err != nil {
		if !errors.As(err, new(daemon.ReportedError)) {
			fmt.Fprintf(os.Stderr, "ketch: %v\n", err)
		}
		os.Exit(1)
	}
}

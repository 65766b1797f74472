// Command ketch is the single binary of the ketch Kubernetes distribution.
package main

import (
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/ketch-k8s/ketch/pkg/version"
)

func main() {
	cli.VersionPrinter = func(c *cli.Context) {
		fmt.Fprintf(c.App.Writer, "ketch version %s (%s)\n", version.Version, version.GitCommit)
	}
	app := &cli.App{
		Name:    "ketch",
		Usage:   "a small, single-binary Kubernetes distribution",
		Version: version.Version,
		Commands: []*cli.Command{
			datastoreCommand(),
		},
		EnableBashCompletion: true,
	}
	if err := app.Run(os.Args); err != nil {
		fmt.Fprintf(os.Stderr, "ketch: %v\n", err)
		os.Exit(1)
	}
}

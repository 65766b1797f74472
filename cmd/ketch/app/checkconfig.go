package app

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/ketch-k8s/ketch/pkg/config"
	"github.com/ketch-k8s/ketch/pkg/console"
	"github.com/ketch-k8s/ketch/pkg/hostcheck"
)

// checkConfigCommand reports what this host offers a node, as ketch server and ketch agent
// check it at start (the same findings: pkg/hostcheck), without changing anything. check makes
// the report of a data dir (hostcheck.CheckConfig; tests pass their own).
func checkConfigCommand(check func(dataDir string) *hostcheck.Report) *cli.Command {
	var configPath, dataDir, output string
	return &cli.Command{
		Name: "check-config",
		Usage: "check that this host can run a ketch node (kernel, cgroups, system settings, resources, another Kubernetes), " +
			"with the fix for each problem found; changes nothing, and exits with status 1 when a finding is fatal",
		Flags: []cli.Flag{
			configFlag(&configPath),
			&cli.StringFlag{Name: "data-dir", Aliases: []string{"d"}, Usage: "the node's data dir, whose free disk space is checked (its nearest existing parent's until it exists)", Value: config.DefaultDataDir, Destination: &dataDir},
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "text, or json for tools", Value: "text", Destination: &output},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return fmt.Errorf("check-config takes no arguments, got %q", c.Args().Slice())
			}
			if output != "text" && output != "json" {
				return fmt.Errorf("--output %q: must be text or json", output)
			}
			// The data dir comes from the same config file as the node's.
			if err := applyConfigFile(c, configPath, false); err != nil {
				return err
			}
			r := check(dataDir)
			var err error
			if output == "json" {
				enc := json.NewEncoder(c.App.Writer)
				enc.SetIndent("", "  ")
				err = enc.Encode(r)
			} else {
				err = r.WriteText(c.App.Writer)
			}
			if err != nil {
				return err
			}
			if r.Summary.Fatal > 0 {
				// The report said it all: exit 1 without another line.
				return console.ReportedError{Err: errors.New("fatal findings")}
			}
			return nil
		},
	}
}

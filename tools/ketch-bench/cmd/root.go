// Package cmd is ketch-bench's command line: one file per subcommand, each with its flags and
// the run that orchestrates its measurements. The measurements themselves are in the sibling
// packages (kvload, podstart, agentstart, podnet, addonpods), the report sections in sections.
package cmd

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
)

// command is one subcommand.
type command struct {
	name     string
	synopsis string // its usage line, after "ketch-bench "
	help     string // what it does and its flags; empty for a hidden command
	run      func(args []string) error
}

// commands are the subcommands, in the order of the usage text. They are listed in init: the
// subcommands' flag sets print the usage text, so a variable initializer would be a cycle.
var commands []*command

func init() {
	commands = []*command{datastoreCmd, serverCmd, multinodeCmd, haCmd, addonsCmd, dockerCmd, etcdServerCmd}
}

// usage is the usage text of every visible subcommand.
func usage() string {
	var lines, helps []string
	for _, c := range commands {
		if c.help == "" {
			continue
		}
		prefix := "usage: "
		if len(lines) > 0 {
			prefix = "       "
		}
		lines = append(lines, prefix+"ketch-bench "+c.synopsis)
		helps = append(helps, c.help)
	}
	return strings.Join(lines, "\n") + "\n\n" + strings.Join(helps, "\n")
}

// Main runs the subcommand args[0] with the rest of args and returns the exit code.
func Main(args []string) int {
	if len(args) < 1 {
		fmt.Fprint(os.Stderr, usage())
		return 2
	}
	var run func([]string) error
	switch name := args[0]; name {
	case "-h", "-help", "--help", "help":
		fmt.Print(usage())
		return 0
	default:
		for _, c := range commands {
			if c.name == name {
				run = c.run
			}
		}
		if run == nil {
			fmt.Fprintf(os.Stderr, "ketch-bench: unknown command %q\n\n%s", name, usage())
			return 2
		}
	}
	err := run(args[1:])
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "ketch-bench: %v\n", err)
		return 1
	}
	return 0
}

// newFlags is a subcommand's flag set; -h prints the whole usage text.
func newFlags(name string) *flag.FlagSet {
	flags := flag.NewFlagSet(name, flag.ContinueOnError)
	flags.Usage = func() { fmt.Fprint(flags.Output(), usage()) }
	return flags
}

// parseFlags parses a subcommand's flags, which take no positional arguments, and checks the
// one every subcommand needs.
func parseFlags(flags *flag.FlagSet, args []string, ketchBin *string) error {
	if err := flags.Parse(args); err != nil {
		return err
	}
	if flags.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %q", flags.Args())
	}
	if *ketchBin == "" {
		return errors.New("--ketch-bin is required")
	}
	return nil
}

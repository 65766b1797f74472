package app

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"
	"sigs.k8s.io/yaml"

	"github.com/ketch-k8s/ketch/pkg/config"
)

// configFlag is --config, which every command that reads the config file has. KETCH_CONFIG_FILE
// sets it too, for the tools that take no flags of their own (kubectl, ctr).
func configFlag(dest *string) *cli.StringFlag {
	return &cli.StringFlag{
		Name: "config", Aliases: []string{"c"}, Usage: "YAML file of settings, whose keys are the long flag names of ketch server and ketch agent",
		Value: config.DefaultConfigFile, EnvVars: []string{"KETCH_CONFIG_FILE"}, Destination: dest,
	}
}

// readConfigFile reads the config file: a YAML mapping of long flag names to values. A missing
// file is fine unless it was asked for by name.
func readConfigFile(path string, explicit bool) (map[string]any, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) && !explicit {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading config file: %w", err)
	}
	var doc any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("config file %s: %w", path, err)
	}
	values, ok := doc.(map[string]any)
	if !ok && doc != nil {
		return nil, fmt.Errorf("config file %s: must be a YAML mapping of flag names to values, like `cluster-cidr: 10.42.0.0/16`", path)
	}
	return values, nil
}

// applyConfigFile sets the flags of c from the config file at path. Flags given on the command
// line win. For a node command (strict) a key that is not one of its flags is an error, so that
// typos do not pass silently; the tools (lenient) take only the keys they know, such as data-dir
// and run-dir, from a file written for the server or agent.
func applyConfigFile(c *cli.Context, path string, strict bool) error {
	values, err := readConfigFile(path, c.IsSet("config"))
	if err != nil {
		return err
	}
	var known []string
	for _, f := range c.Command.Flags {
		known = append(known, f.Names()...)
	}
	for key, value := range values {
		if !slices.Contains(known, key) || key == "config" {
			if !strict {
				continue
			}
			return fmt.Errorf("config file %s: unknown key %q; the keys are the long flag names of `ketch %s --help`", path, key, c.Command.Name)
		}
		if c.IsSet(key) {
			continue
		}
		items := []any{value}
		if list, ok := value.([]any); ok {
			items = list
		}
		for _, item := range items {
			if _, isMap := item.(map[string]any); isMap {
				return fmt.Errorf("config file %s: key %q must be a value or a list of values", path, key)
			}
			if err := c.Set(key, strings.TrimSpace(fmt.Sprint(item))); err != nil {
				return fmt.Errorf("config file %s: key %q: %w", path, key, err)
			}
		}
	}
	return nil
}

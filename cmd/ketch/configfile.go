package main

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"
	"sigs.k8s.io/yaml"
)

// applyConfigFile sets the flags of c from a YAML file whose keys are the command's long flag
// names. Flags given on the command line win. A missing file is fine unless it was asked for by
// name; a key that is not a flag is an error, so that typos do not pass silently.
func applyConfigFile(c *cli.Context, path string, explicit bool) error {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) && !explicit {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading config file: %w", err)
	}
	var doc any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return fmt.Errorf("config file %s: %w", path, err)
	}
	values, ok := doc.(map[string]any)
	if !ok && doc != nil {
		return fmt.Errorf("config file %s: must be a YAML mapping of flag names to values, like `cluster-cidr: 10.42.0.0/16`", path)
	}
	var known []string
	for _, f := range c.Command.Flags {
		known = append(known, f.Names()...)
	}
	for key, value := range values {
		if !slices.Contains(known, key) || key == "config" {
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

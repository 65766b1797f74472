// Package control runs the Kubernetes control plane (kube-apiserver, kube-controller-manager,
// kube-scheduler) in this process, from the upstream code, with ketch's flags.
package control

import (
	"fmt"

	"github.com/spf13/pflag"
	cliflag "k8s.io/component-base/cli/flag"
)

// parseFlags parses argv into a component's named flag sets, as its cobra command would.
func parseFlags(component string, sets cliflag.NamedFlagSets, argv []string) error {
	fs := pflag.NewFlagSet(component, pflag.ContinueOnError)
	fs.SetNormalizeFunc(cliflag.WordSepNormalizeFunc)
	for _, name := range sets.Order {
		fs.AddFlagSet(sets.FlagSets[name])
	}
	if err := fs.Parse(argv); err != nil {
		return fmt.Errorf("%s arguments: %w", component, err)
	}
	return nil
}

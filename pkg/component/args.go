package component

import (
	"fmt"
	"sort"
	"strings"

	"k8s.io/klog/v2"
)

// An override is one `flag=value` the user gave a component (--kube-apiserver-arg and friends):
// no leading dashes (config.Parse checks that), and a bare `flag` is a boolean flag set to true.
// Flag names are normalised as the components' own flag sets normalise them (`_` is `-`), so
// that `secure_port=1` replaces ketch's `secure-port`.
type override struct {
	name, value string
	bare        bool
}

func parse(overrides []string) []override {
	out := make([]override, 0, len(overrides))
	for _, o := range overrides {
		name, value, hasValue := strings.Cut(o, "=")
		out = append(out, override{name: strings.ReplaceAll(name, "_", "-"), value: value, bare: !hasValue})
	}
	return out
}

func (o override) String() string {
	if o.bare {
		return "--" + o.name
	}
	return "--" + o.name + "=" + o.value
}

// CommandLine is the command line component runs with: ketch's defaults, sorted, then the user's
// overrides in the order given. A flag the user sets replaces ketch's value for it. A flag the
// user gives several times is passed every time, in order, so that the component's own flag
// parser decides as on its real command line: a list or map flag (feature-gates, tls-sni-cert-key)
// collects every value, a plain flag keeps the last. The result is logged at verbosity 1 (shown
// with --debug), so that users can see what runs.
func CommandLine(component string, defaults map[string]string, overrides []string) []string {
	user := parse(overrides)
	set := map[string]bool{}
	for _, o := range user {
		set[o.name] = true
	}
	names := make([]string, 0, len(defaults))
	for name := range defaults {
		if !set[strings.ReplaceAll(name, "_", "-")] {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	argv := make([]string, 0, len(names)+len(user))
	for _, name := range names {
		argv = append(argv, fmt.Sprintf("--%s=%s", name, defaults[name]))
	}
	for _, o := range user {
		argv = append(argv, o.String())
	}
	klog.V(1).InfoS("Component command line", "component", component, "args", argv)
	return argv
}

// Lookup is the value a plain flag will have once the overrides are applied (the last one wins,
// as in the component's own parser), or def if the user did not set it. A bare flag reads "true".
func Lookup(overrides []string, flag, def string) string {
	value := def
	for _, o := range parse(overrides) {
		if o.name == flag {
			value = o.value
			if o.bare {
				value = "true"
			}
		}
	}
	return value
}

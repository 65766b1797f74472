package app

import (
	"strings"

	"github.com/urfave/cli/v2"
)

// list is a repeatable flag bound to a []string of a raw config struct. Each occurrence adds its
// value as it is: a component argument such as `feature-gates=A=true,B=false` must reach the
// component whole, where cli.StringSliceFlag would split it at the comma.
type list []string

func (l *list) Set(v string) error { *l = append(*l, v); return nil }
func (l *list) String() string     { return strings.Join(*l, ",") }

// commaList is a repeatable flag whose values may also be comma-separated (--disable a,b).
type commaList []string

func (l *commaList) Set(v string) error {
	for _, item := range strings.Split(v, ",") {
		if item = strings.TrimSpace(item); item != "" {
			*l = append(*l, item)
		}
	}
	return nil
}
func (l *commaList) String() string { return strings.Join(*l, ",") }

// listFlag binds a repeatable flag to dest.
func listFlag(name, usage string, dest *[]string) *cli.GenericFlag {
	return &cli.GenericFlag{Name: name, Usage: usage + " (repeatable)", Value: (*list)(dest)}
}

// commaListFlag binds a repeatable, comma-separated flag to dest.
func commaListFlag(name, usage string, dest *[]string) *cli.GenericFlag {
	return &cli.GenericFlag{Name: name, Usage: usage + " (repeatable, or comma-separated)", Value: (*commaList)(dest)}
}

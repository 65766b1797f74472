package main

import (
	"flag"
	"fmt"
	"slices"
	"strings"
	"time"
)

type options struct {
	ketchBin string
	out      string
	targets  []string
	quick    bool
	dataRoot string
	args     []string // as given, for the report
}

// sizes are the workload parameters. Both targets always run with the same sizes.
type sizes struct {
	rounds        int // of each load phase per target; rows report the median
	putClients    []int
	putOps        []int // per put level, measured after a tenth as many unmeasured
	casClients    []int
	casOps        []int // per CAS level
	casKeys       int
	listKeys      int
	listValue     int
	listLimit     int64
	listRuns      int
	listMaxTime   time.Duration
	watchers      int
	watchObjects  int
	watchWarmup   int
	watchEvents   int
	watchMaxTime  time.Duration
	dbKeys        int
	dbRounds      int
	dbClients     int
	putValue      int
	idle          time.Duration
	phaseTimeout  time.Duration
	dbFillTimeout time.Duration
}

func defaultSizes(quick bool) sizes {
	s := sizes{
		rounds:        3,
		putClients:    []int{1, 16, 256},
		putOps:        []int{8000, 40000, 60000},
		casClients:    []int{16, 64},
		casOps:        []int{25000, 40000},
		casKeys:       1000,
		listKeys:      10000,
		listValue:     1024,
		listLimit:     500,
		listRuns:      50,
		listMaxTime:   30 * time.Second,
		watchers:      100,
		watchObjects:  100,
		watchWarmup:   10,
		watchEvents:   500,
		watchMaxTime:  30 * time.Second,
		dbKeys:        1000,
		dbRounds:      100,
		dbClients:     128,
		putValue:      256,
		idle:          3 * time.Second,
		phaseTimeout:  3 * time.Minute,
		dbFillTimeout: 4 * time.Minute,
	}
	if quick {
		s.rounds = 1
		s.putOps, s.casOps = []int{800, 4000, 6000}, []int{2500, 4000}
		s.listKeys, s.listRuns, s.listMaxTime = 2000, 3, 10*time.Second
		s.watchWarmup, s.watchEvents, s.watchMaxTime = 3, 30, 10*time.Second
		s.dbRounds = 5
		s.idle = 500 * time.Millisecond
		s.phaseTimeout, s.dbFillTimeout = time.Minute, time.Minute
	}
	return s
}

func parseOptions(args []string) (options, error) {
	o := options{args: args}
	flags := flag.NewFlagSet("datastore", flag.ContinueOnError)
	flags.Usage = func() { fmt.Fprint(flags.Output(), usageText) }
	flags.StringVar(&o.ketchBin, "ketch-bin", "", "")
	flags.StringVar(&o.out, "out", "", "")
	targets := flags.String("targets", "ketch,etcd", "")
	flags.BoolVar(&o.quick, "quick", false, "")
	flags.StringVar(&o.dataRoot, "data-root", "/var/tmp", "")
	if err := flags.Parse(args); err != nil {
		return o, err
	}
	if flags.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments: %q", flags.Args())
	}
	if o.ketchBin == "" {
		return o, fmt.Errorf("--ketch-bin is required")
	}
	for _, t := range strings.Split(*targets, ",") {
		t = strings.TrimSpace(t)
		if t != "ketch" && t != "etcd" {
			return o, fmt.Errorf("--targets: unknown target %q (want ketch and/or etcd)", t)
		}
		if !slices.Contains(o.targets, t) {
			o.targets = append(o.targets, t)
		}
	}
	return o, nil
}

package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/urfave/cli/v2"
	"k8s.io/klog/v2"

	"github.com/ketch-k8s/ketch/pkg/datastore"
	"github.com/ketch-k8s/ketch/pkg/datastore/etcdapi"
	"github.com/ketch-k8s/ketch/pkg/datastore/mvcc"
)

func datastoreCommand() *cli.Command {
	return &cli.Command{
		Name:  "datastore",
		Usage: "run the etcd-API datastore on its own, for etcdctl, tests and benchmarks",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "data-dir", Usage: "directory of the datastore file (required)"},
			&cli.StringSliceFlag{Name: "listen-client-urls", Usage: "URLs to serve etcd clients on: http://HOST:PORT or unix:///PATH", Value: cli.NewStringSlice("http://127.0.0.1:2379")},
			&cli.StringFlag{Name: "name", Usage: "member name reported to clients", Value: "default"},
			&cli.IntFlag{Name: "max-request-bytes", Usage: "largest write request accepted", Value: etcdapi.DefaultMaxRequestBytes},
			&cli.IntFlag{Name: "max-txn-ops", Usage: "most operations in one transaction branch", Value: etcdapi.DefaultMaxTxnOps},
			&cli.DurationFlag{Name: "watch-progress-notify-interval", Usage: "interval of progress notifications to watchers that ask for them", Value: etcdapi.DefaultWatchProgressNotifyInterval},
			&cli.Int64Flag{Name: "history-revisions", Usage: "revisions of history kept when no client compacts (0: unlimited)", Value: datastore.DefaultHistoryRevisions},
			debugFlag,
		},
		Subcommands: []*cli.Command{{
			Name:      "check",
			Usage:     "check a datastore file's consistency (read-only); exits non-zero if it is damaged",
			ArgsUsage: "FILE",
			Action: func(c *cli.Context) error {
				if c.NArg() != 1 {
					return fmt.Errorf("usage: ketch datastore check FILE (for example <data-dir>/%s)", datastore.DBFileName)
				}
				if err := mvcc.CheckFile(c.Args().First()); err != nil {
					return err
				}
				fmt.Fprintf(c.App.Writer, "%s: ok\n", c.Args().First())
				return nil
			},
		}},
		Action: func(c *cli.Context) error {
			setupLogging(c.Bool("debug"))
			ds, err := datastore.Start(datastore.Config{
				DataDir:                     c.String("data-dir"),
				ListenClientURLs:            c.StringSlice("listen-client-urls"),
				Name:                        c.String("name"),
				MaxRequestBytes:             c.Int("max-request-bytes"),
				MaxTxnOps:                   c.Int("max-txn-ops"),
				WatchProgressNotifyInterval: c.Duration("watch-progress-notify-interval"),
				HistoryRevisions:            c.Int64("history-revisions"),
			})
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			select {
			case <-ctx.Done():
				klog.InfoS("Stopping datastore")
			case err := <-ds.Err():
				ds.Stop()
				return fmt.Errorf("serving: %w", err)
			}
			return ds.Stop()
		},
	}
}

var debugFlag = &cli.BoolFlag{Name: "debug", Usage: "verbose logging"}

// setupLogging keeps klog quiet unless asked: warnings and errors, plus the few start-up lines.
func setupLogging(debug bool) {
	fs := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(fs)
	if debug {
		fs.Set("v", "4")
	}
	klog.SetOutput(os.Stderr)
	fs.Set("logtostderr", "true")
}

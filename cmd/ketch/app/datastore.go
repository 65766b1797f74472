package app

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/ketch-k8s/ketch/pkg/config"
	"github.com/ketch-k8s/ketch/pkg/console"
	"github.com/ketch-k8s/ketch/pkg/datastore"
	"github.com/ketch-k8s/ketch/pkg/datastore/etcdapi"
	"github.com/ketch-k8s/ketch/pkg/datastore/mvcc"
	"github.com/ketch-k8s/ketch/pkg/lifecycle"
)

func datastoreCommand() *cli.Command {
	var cfg datastore.Config
	var debug bool
	return &cli.Command{
		Name:  "datastore",
		Usage: "run the etcd-API datastore on its own, for etcdctl, tests and benchmarks",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "data-dir", Usage: "directory of the datastore file (required)", Destination: &cfg.DataDir},
			&cli.GenericFlag{Name: "listen-client-urls", Usage: "URLs to serve etcd clients on: http://HOST:PORT or unix:///PATH (repeatable, or comma-separated; default http://127.0.0.1:2379)", Value: (*commaList)(&cfg.ListenClientURLs)},
			&cli.StringFlag{Name: "name", Usage: "member name reported to clients", Value: "default", Destination: &cfg.Name},
			&cli.IntFlag{Name: "max-request-bytes", Usage: "largest write request accepted", Value: etcdapi.DefaultMaxRequestBytes, Destination: &cfg.MaxRequestBytes},
			&cli.IntFlag{Name: "max-txn-ops", Usage: "most operations in one transaction branch", Value: etcdapi.DefaultMaxTxnOps, Destination: &cfg.MaxTxnOps},
			&cli.DurationFlag{Name: "watch-progress-notify-interval", Usage: "interval of progress notifications to watchers that ask for them", Value: etcdapi.DefaultWatchProgressNotifyInterval, Destination: &cfg.WatchProgressNotifyInterval},
			&cli.Int64Flag{Name: "history-revisions", Usage: "revisions of history kept when no client compacts (0: unlimited)", Value: datastore.DefaultHistoryRevisions, Destination: &cfg.HistoryRevisions},
			debugFlag(&debug),
		},
		Subcommands: []*cli.Command{datastoreStatusCommand(), {
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
			console.SetupLogging(config.Verbosity(debug))
			if len(cfg.ListenClientURLs) == 0 {
				cfg.ListenClientURLs = []string{"http://127.0.0.1:2379"}
			}
			ds, err := datastore.Start(cfg)
			if err != nil {
				return err
			}
			ctx, stop := lifecycle.SignalContext()
			defer stop()
			return ds.Run(ctx)
		},
	}
}

package app

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"
	"google.golang.org/grpc/grpclog"

	"github.com/ketch-k8s/ketch/pkg/config"
	"github.com/ketch-k8s/ketch/pkg/etcd"
	"github.com/ketch-k8s/ketch/pkg/pki"
)

// datastoreStatusCommand shows the members of the datastore a server on this machine uses,
// whichever it is: bbolt, embedded etcd, or an external etcd.
func datastoreStatusCommand() *cli.Command {
	var (
		configPath string
		raw        config.ServerRaw
	)
	return &cli.Command{
		Name:  "status",
		Usage: "show the members of this server's datastore: role, revision, size and health (run on a server)",
		Flags: []cli.Flag{
			configFlag(&configPath),
			&cli.StringFlag{Name: "data-dir", Aliases: []string{"d"}, Usage: "the server's data dir", Value: config.DefaultDataDir, Destination: &raw.DataDir},
			&cli.StringFlag{Name: "run-dir", Usage: "the server's run dir", Value: config.DefaultRunDir, Destination: &raw.RunDir},
			commaListFlag("datastore-endpoint", "the external etcd's client URLs, as given to the server", &raw.DatastoreEndpoint),
			&cli.StringFlag{Name: "datastore-cafile", Usage: "as given to the server", Destination: &raw.DatastoreCAFile},
			&cli.StringFlag{Name: "datastore-certfile", Usage: "as given to the server", Destination: &raw.DatastoreCertFile},
			&cli.StringFlag{Name: "datastore-keyfile", Usage: "as given to the server", Destination: &raw.DatastoreKeyFile},
		},
		Action: func(c *cli.Context) error {
			if err := applyConfigFile(c, configPath, false); err != nil {
				return err
			}
			// gRPC's own logging would show each member's connection attempts; the table says
			// what matters.
			grpclog.SetLoggerV2(grpclog.NewLoggerV2(io.Discard, io.Discard, io.Discard))
			kind, cc, err := datastoreClientConfig(raw)
			if err != nil {
				return err
			}
			cli, err := etcd.NewClient(cc)
			if err != nil {
				return err
			}
			defer cli.Close()
			members, err := etcd.Status(c.Context, cli)
			if err != nil {
				return fmt.Errorf("%s at %s: %w", kind, cc.Describe(), err)
			}
			return printStatus(c, kind, members)
		},
	}
}

// datastoreClientConfig finds the datastore as the server on this machine does.
func datastoreClientConfig(raw config.ServerRaw) (config.DatastoreKind, etcd.ClientConfig, error) {
	paths := config.Paths{DataDir: raw.DataDir, RunDir: raw.RunDir}
	switch {
	case len(raw.DatastoreEndpoint) > 0:
		return config.External, etcd.ClientConfig{Endpoints: raw.DatastoreEndpoint, CAFile: raw.DatastoreCAFile, CertFile: raw.DatastoreCertFile, KeyFile: raw.DatastoreKeyFile}, nil
	case paths.HasEtcdMember():
		tls, err := pki.EtcdFiles(paths.ServerTLSDir())
		if err != nil {
			return "", etcd.ClientConfig{}, err
		}
		return config.Embedded, etcd.ClientConfig{Endpoints: []string{etcd.LocalClientURL}, CAFile: tls.ServerCA, CertFile: tls.ClientCert, KeyFile: tls.ClientKey}, nil
	}
	sock := paths.DatastoreSocket()
	if _, err := os.Stat(sock); err != nil {
		return "", etcd.ClientConfig{}, fmt.Errorf("no datastore found: %s has no embedded etcd and %s does not exist (is the server running, with this --data-dir and --run-dir? an external etcd needs --datastore-endpoint)", paths.DataDir, sock)
	}
	return config.Bbolt, etcd.ClientConfig{Endpoints: []string{"unix://" + sock}}, nil
}

func printStatus(c *cli.Context, kind config.DatastoreKind, members []etcd.MemberStatus) error {
	voters, unhealthy := 0, 0
	for _, m := range members {
		if m.Role != "learner" {
			voters++
		}
		if m.Health != "healthy" {
			unhealthy++
		}
	}
	out := c.App.Writer
	fmt.Fprintf(out, "datastore: %s, %d member(s)", kind, len(members))
	if kind != config.Bbolt {
		fmt.Fprintf(out, ", %d voting, quorum %d", voters, voters/2+1)
	}
	fmt.Fprintln(out)
	if w := etcd.EvenWarning(voters); w != "" {
		fmt.Fprintln(out, "warning: "+w)
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tID\tROLE\tREVISION\tRAFT TERM\tDB SIZE\tHEALTH\tENDPOINT")
	for _, m := range members {
		fmt.Fprintf(tw, "%s\t%x\t%s\t%d\t%d\t%s\t%s\t%s\n", m.Name, m.ID, m.Role, m.Revision, m.RaftTerm, size(m.DBSize), m.Health, m.ClientURL)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if unhealthy > 0 {
		return cli.Exit(errors.New(strings.TrimSpace(fmt.Sprintf("%d of %d member(s) not healthy", unhealthy, len(members)))), 1)
	}
	return nil
}

func size(b int64) string {
	switch {
	case b >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
	case b >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(b)/(1<<10))
	}
	return fmt.Sprintf("%d B", b)
}

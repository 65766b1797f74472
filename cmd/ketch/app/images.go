package app

import (
	"errors"
	"fmt"
	"io"
	"os"
	"text/tabwriter"

	containerdclient "github.com/containerd/containerd/v2/client"
	"github.com/urfave/cli/v2"

	"github.com/ketch-k8s/ketch/pkg/config"
	"github.com/ketch-k8s/ketch/pkg/images"
)

func imagesCommand() *cli.Command {
	var (
		paths      config.Paths
		configPath string
		address    string
	)
	// The node's containerd socket follows its run dir, from the same config file as the node's.
	flags := func() []cli.Flag {
		return []cli.Flag{
			configFlag(&configPath),
			&cli.StringFlag{Name: "run-dir", Usage: "the node's run dir", Value: config.DefaultRunDir, Destination: &paths.RunDir},
			&cli.StringFlag{Name: "address", Usage: "containerd socket of the node (default: <run-dir>/containerd/containerd.sock)", Destination: &address},
		}
	}
	connect := func(c *cli.Context) (*containerdclient.Client, error) {
		if err := applyConfigFile(c, configPath, false); err != nil {
			return nil, err
		}
		if address == "" {
			address = paths.ContainerdSocket()
		}
		// containerd's client would wait 10 s for a socket that is not there.
		if _, err := os.Stat(address); err != nil {
			return nil, fmt.Errorf("no containerd socket at %s: is ketch running on this node, with this --run-dir? (%w)", address, err)
		}
		client, err := containerdclient.New(address)
		if err != nil {
			return nil, fmt.Errorf("connecting to the node's containerd at %s (is ketch running?): %w", address, err)
		}
		return client, nil
	}
	return &cli.Command{
		Name:  "images",
		Usage: "manage the node's images without a registry",
		Subcommands: []*cli.Command{
			{
				Name:      "import",
				Usage:     "load image tarballs (docker save or OCI layout, plain or gzip) into the node",
				ArgsUsage: "FILE... (- for standard input)",
				Flags:     flags(),
				Action: func(c *cli.Context) error {
					if c.NArg() == 0 {
						return errors.New("usage: ketch images import FILE...")
					}
					client, err := connect(c)
					if err != nil {
						return err
					}
					defer client.Close()
					var errs []error
					for _, path := range c.Args().Slice() {
						if err := importFile(c, client, path); err != nil {
							errs = append(errs, err)
						}
					}
					return errors.Join(errs...)
				},
			},
			{
				Name:  "list",
				Usage: "list the node's images",
				Flags: flags(),
				Action: func(c *cli.Context) error {
					client, err := connect(c)
					if err != nil {
						return err
					}
					defer client.Close()
					list, err := images.List(c.Context, client)
					if err != nil {
						return err
					}
					w := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
					fmt.Fprintln(w, "IMAGE\tDIGEST\tSIZE\tPINNED")
					for _, img := range list {
						fmt.Fprintf(w, "%s\t%s\t%d\t%t\n", img.Name, img.Digest, img.Size, img.Pinned)
					}
					return w.Flush()
				},
			},
		},
	}
}

// importFile imports one tarball; "-" is standard input (docker exec -i NODE ketch images
// import - < IMG.tar, into a node image that has no shell to copy a file in with).
func importFile(c *cli.Context, client *containerdclient.Client, path string) error {
	var in io.Reader = os.Stdin
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		in = f
	}
	names, err := images.Import(c.Context, client, in)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	for _, n := range names {
		fmt.Fprintf(c.App.Writer, "imported %s\n", n)
	}
	return nil
}

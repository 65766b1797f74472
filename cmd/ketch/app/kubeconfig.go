package app

import (
	"fmt"
	"net/url"

	"github.com/urfave/cli/v2"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/ketch-k8s/ketch/pkg/config"
)

// kubeconfigCommand prints the server's admin kubeconfig, self-contained (the certificates in
// it, not their paths), with the server URL the reader will use: the one in the file names the
// server as it sees itself, which from outside a container (a published port) or another
// machine is often not the address to dial.
func kubeconfigCommand() *cli.Command {
	var (
		paths      config.Paths
		configPath string
		server     string
	)
	return &cli.Command{
		Name:  "kubeconfig",
		Usage: "print the admin kubeconfig (run on a server)",
		Description: "Prints the server's admin kubeconfig. --server replaces the API server's URL, for a\n" +
			"client elsewhere: ketch kubeconfig --server https://127.0.0.1:6443 in a container\n" +
			"whose port 6443 is published. The address must be in the serving certificate: the node\n" +
			"IPs, localhost and --tls-san are.",
		Flags: []cli.Flag{
			configFlag(&configPath),
			&cli.StringFlag{Name: "data-dir", Aliases: []string{"d"}, Usage: "the server's data dir", Value: config.DefaultDataDir, Destination: &paths.DataDir},
			&cli.StringFlag{Name: "server", Usage: "the API server URL to write, such as https://203.0.113.7:6443 (default: the one the server wrote)", Destination: &server},
		},
		Action: func(c *cli.Context) error {
			if err := applyConfigFile(c, configPath, false); err != nil {
				return err
			}
			if server != "" {
				if u, err := url.Parse(server); err != nil || u.Scheme != "https" || u.Host == "" {
					return fmt.Errorf("--server %q must be an https URL such as https://127.0.0.1:6443", server)
				}
			}
			cfg, err := clientcmd.LoadFromFile(paths.AdminKubeconfig())
			if err != nil {
				return fmt.Errorf("no server in %s (run this on a server, as root, with its --data-dir): %w", paths.DataDir, err)
			}
			// The server's own file names its certificate files; a copy elsewhere needs their
			// contents.
			if err := clientcmdapi.FlattenConfig(cfg); err != nil {
				return fmt.Errorf("reading the files %s names: %w", paths.AdminKubeconfig(), err)
			}
			if server != "" {
				for _, cl := range cfg.Clusters {
					cl.Server = server
				}
			}
			b, err := clientcmd.Write(*cfg)
			if err != nil {
				return err
			}
			_, err = c.App.Writer.Write(b)
			return err
		},
	}
}

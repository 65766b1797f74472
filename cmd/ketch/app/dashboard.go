package app

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/ketch-k8s/ketch/pkg/config"
	"github.com/ketch-k8s/ketch/pkg/kubeclient"
	"github.com/ketch-k8s/ketch/pkg/server"
)

// dashboardCommand prints the dashboard's URL and a short-lived token to log in with.
func dashboardCommand() *cli.Command {
	var (
		paths          config.Paths
		configPath     string
		serverURL      string
		serviceAccount string
		ttl            time.Duration
		tokenOnly      bool
	)
	return &cli.Command{
		Name:  "dashboard",
		Usage: "print the dashboard's URL and a token to log in with (run on a server)",
		Description: "Issues a token for ServiceAccount kube-system/" + server.DashboardAdmin + ", which it makes cluster-admin\n" +
			"the first time, or for --service-account NAMESPACE/NAME (which must exist and has the rights\n" +
			"its bindings give it). The token expires after --ttl. Paste it into the dashboard's login.\n" +
			"--server replaces the URL's address, for a browser elsewhere: it must be in the serving\n" +
			"certificate (the node IPs, localhost and --tls-san are).",
		Flags: []cli.Flag{
			configFlag(&configPath),
			&cli.StringFlag{Name: "data-dir", Aliases: []string{"d"}, Usage: "the server's data dir", Value: config.DefaultDataDir, Destination: &paths.DataDir},
			&cli.StringFlag{Name: "server", Usage: "the server URL to print, such as https://203.0.113.7:6443 (default: the admin kubeconfig's)", Destination: &serverURL},
			&cli.StringFlag{Name: "service-account", Usage: "NAMESPACE/NAME of the ServiceAccount to issue the token for", Value: "kube-system/" + server.DashboardAdmin, Destination: &serviceAccount},
			&cli.DurationFlag{Name: "ttl", Usage: "how long the token is valid (at least 10m)", Value: time.Hour, Destination: &ttl},
			&cli.BoolFlag{Name: "token-only", Usage: "print only the token, for scripts", Destination: &tokenOnly},
		},
		Action: func(c *cli.Context) error {
			if err := applyConfigFile(c, configPath, false); err != nil {
				return err
			}
			ns, name, ok := strings.Cut(serviceAccount, "/")
			if !ok || ns == "" || name == "" || strings.Contains(name, "/") {
				return fmt.Errorf("--service-account %q must be NAMESPACE/NAME, such as kube-system/%s", serviceAccount, server.DashboardAdmin)
			}
			if ttl < server.MinDashboardTTL {
				return fmt.Errorf("--ttl %s is shorter than the API's minimum of %s", ttl, server.MinDashboardTTL)
			}
			if serverURL != "" {
				if u, err := url.Parse(serverURL); err != nil || u.Scheme != "https" || u.Host == "" {
					return fmt.Errorf("--server %q must be an https URL such as https://127.0.0.1:6443", serverURL)
				}
			}
			kubeconfig := paths.AdminKubeconfig()
			cfg, err := clientcmd.LoadFromFile(kubeconfig)
			if err != nil {
				return fmt.Errorf("no server in %s (run this on a server, as root, with its --data-dir): %w", paths.DataDir, err)
			}
			if serverURL == "" {
				for _, cl := range cfg.Clusters {
					serverURL = cl.Server
				}
			}
			client, err := kubeclient.New(kubeconfig)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(c.Context, 30*time.Second)
			defer cancel()
			token, expires, err := server.DashboardToken(ctx, client, ns, name, ttl)
			if err != nil {
				return err
			}
			if tokenOnly {
				_, err = fmt.Fprintln(c.App.Writer, token)
				return err
			}
			_, err = fmt.Fprintf(c.App.Writer, "URL:     %s/dashboard/\nToken:   %s\nExpires: %s (ServiceAccount %s/%s)\n",
				strings.TrimSuffix(serverURL, "/"), token, expires.Local().Format(time.RFC3339), ns, name)
			return err
		},
	}
}

package main

import (
	"fmt"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/ketch-k8s/ketch/pkg/config"
	"github.com/ketch-k8s/ketch/pkg/token"
)

// tokenCommand manages agent join tokens on a server, with the server's own admin credentials.
func tokenCommand() *cli.Command {
	dataDir := &cli.StringFlag{Name: "data-dir", Aliases: []string{"d"}, Usage: "the server's data dir", Value: config.DefaultDataDir}
	return &cli.Command{
		Name:  "token",
		Usage: "manage agent join tokens (run on a server)",
		Subcommands: []*cli.Command{
			{
				Name:  "create",
				Usage: "print a new agent join token",
				Flags: []cli.Flag{
					dataDir,
					&cli.DurationFlag{Name: "ttl", Usage: "how long the token is valid, such as 24h (0: forever)"},
					&cli.StringFlag{Name: "description", Usage: "what the token is for"},
				},
				Action: func(c *cli.Context) error {
					if c.Duration("ttl") < 0 {
						return fmt.Errorf("--ttl %s is negative", c.Duration("ttl"))
					}
					client, ca, err := serverAdmin(c.String("data-dir"))
					if err != nil {
						return err
					}
					t, err := token.Create(c.Context, client, ca, c.Duration("ttl"), c.String("description"))
					if err != nil {
						return err
					}
					fmt.Fprintln(c.App.Writer, t.String())
					return nil
				},
			},
			{
				Name:  "list",
				Usage: "list agent join tokens",
				Flags: []cli.Flag{dataDir},
				Action: func(c *cli.Context) error {
					client, _, err := serverAdmin(c.String("data-dir"))
					if err != nil {
						return err
					}
					infos, err := token.List(c.Context, client)
					if err != nil {
						return err
					}
					w := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
					fmt.Fprintln(w, "ID\tEXPIRES\tDESCRIPTION")
					for _, i := range infos {
						expires := "never"
						if !i.Expires.IsZero() {
							expires = i.Expires.Local().Format(time.RFC3339)
							if time.Now().After(i.Expires) {
								expires += " (expired)"
							}
						}
						fmt.Fprintf(w, "%s\t%s\t%s\n", i.ID, expires, i.Description)
					}
					return w.Flush()
				},
			},
			{
				Name:      "delete",
				Usage:     "delete agent join tokens; nodes that joined with them stay",
				ArgsUsage: "ID...",
				Flags:     []cli.Flag{dataDir},
				Action: func(c *cli.Context) error {
					if c.NArg() == 0 {
						return fmt.Errorf("give the IDs of the tokens to delete (see `ketch token list`)")
					}
					client, _, err := serverAdmin(c.String("data-dir"))
					if err != nil {
						return err
					}
					for _, id := range c.Args().Slice() {
						if err := token.Delete(c.Context, client, id); err != nil {
							return err
						}
						fmt.Fprintf(c.App.Writer, "deleted token %s\n", id)
					}
					return nil
				},
			},
		},
	}
}

// serverAdmin is a client with the server's admin credentials and the CA bundle agents check.
func serverAdmin(dataDir string) (kubernetes.Interface, []byte, error) {
	kubeconfig := filepath.Join(dataDir, "server", "cred", "admin.kubeconfig")
	ca, err := os.ReadFile(filepath.Join(dataDir, "server", "tls", "server-ca.crt"))
	if err != nil {
		return nil, nil, fmt.Errorf("no server in %s (run this on a server, as root, with its --data-dir): %w", dataDir, err)
	}
	rc, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, nil, fmt.Errorf("loading %s: %w", kubeconfig, err)
	}
	client, err := kubernetes.NewForConfig(rc)
	return client, ca, err
}

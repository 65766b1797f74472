package app

import (
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"
	"k8s.io/client-go/kubernetes"

	"github.com/ketch-k8s/ketch/pkg/config"
	"github.com/ketch-k8s/ketch/pkg/kubeclient"
	"github.com/ketch-k8s/ketch/pkg/token"
)

// tokenCommand manages agent join tokens on a server, with the server's own admin credentials.
func tokenCommand() *cli.Command {
	var (
		paths       config.Paths
		configPath  string
		ttl         time.Duration
		description string
	)
	// The server's data dir comes from the same config file as the server's.
	common := func() []cli.Flag {
		return []cli.Flag{
			configFlag(&configPath),
			&cli.StringFlag{Name: "data-dir", Aliases: []string{"d"}, Usage: "the server's data dir", Value: config.DefaultDataDir, Destination: &paths.DataDir},
		}
	}
	// admin is a client with the server's admin credentials and the CA bundle agents check.
	admin := func(c *cli.Context) (kubernetes.Interface, []byte, error) {
		if err := applyConfigFile(c, configPath, false); err != nil {
			return nil, nil, err
		}
		ca, err := os.ReadFile(paths.ServerCAFile())
		if err != nil {
			return nil, nil, fmt.Errorf("no server in %s (run this on a server, as root, with its --data-dir): %w", paths.DataDir, err)
		}
		client, err := kubeclient.New(paths.AdminKubeconfig())
		return client, ca, err
	}
	return &cli.Command{
		Name:  "token",
		Usage: "manage agent join tokens (run on a server)",
		Subcommands: []*cli.Command{
			{
				Name:  "create",
				Usage: "print a new agent join token",
				Flags: append(common(),
					&cli.DurationFlag{Name: "ttl", Usage: "how long the token is valid, such as 24h (0: forever)", Destination: &ttl},
					&cli.StringFlag{Name: "description", Usage: "what the token is for", Destination: &description},
				),
				Action: func(c *cli.Context) error {
					if ttl < 0 {
						return fmt.Errorf("--ttl %s is negative", ttl)
					}
					client, ca, err := admin(c)
					if err != nil {
						return err
					}
					t, err := token.Create(c.Context, client, ca, ttl, description)
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
				Flags: common(),
				Action: func(c *cli.Context) error {
					client, _, err := admin(c)
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
				Flags:     common(),
				Action: func(c *cli.Context) error {
					if c.NArg() == 0 {
						return fmt.Errorf("give the IDs of the tokens to delete (see `ketch token list`)")
					}
					client, _, err := admin(c)
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

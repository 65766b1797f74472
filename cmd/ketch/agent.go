package main

import (
	"context"
	"os/signal"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/ketch-k8s/ketch/pkg/agent"
	"github.com/ketch-k8s/ketch/pkg/config"
)

func agentCommand() *cli.Command {
	flags := []cli.Flag{
		&cli.StringFlag{Name: "server", Aliases: []string{"s"}, Usage: "the server to join, as https://SERVER:6443", EnvVars: []string{"KETCH_URL"}},
		&cli.StringFlag{Name: "token", Aliases: []string{"t"}, Usage: "join token (the server's <data-dir>/server/token, or from `ketch token create`)", EnvVars: []string{"KETCH_TOKEN"}},
		&cli.StringFlag{Name: "token-file", Usage: "file holding the join token", EnvVars: []string{"KETCH_TOKEN_FILE"}},
	}
	return &cli.Command{
		Name:  "agent",
		Usage: "join this machine to a cluster as a node",
		Flags: append(nodeFlags(), flags...),
		Action: func(c *cli.Context) error {
			if err := applyConfigFile(c, c.String("config"), c.IsSet("config")); err != nil {
				return err
			}
			cfg, err := config.ParseAgent(config.AgentRaw{
				NodeRaw: nodeRaw(c), ServerURL: c.String("server"), Token: c.String("token"), TokenFile: c.String("token-file"),
			})
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			return agent.Run(ctx, cfg)
		},
	}
}

package app

import (
	"github.com/urfave/cli/v2"

	"github.com/ketch-k8s/ketch/pkg/agent"
	"github.com/ketch-k8s/ketch/pkg/config"
)

func runAgent(cfg *config.Agent) error { return runNode(&cfg.Node, agent.Role(cfg)) }

func agentCommand(run func(*config.Agent) error) *cli.Command {
	var raw config.AgentRaw
	var configPath string
	flags := append(nodeFlags(&raw.NodeRaw, &configPath),
		&cli.StringFlag{Name: "server", Aliases: []string{"s"}, Usage: "the server to join, as https://SERVER:6443", EnvVars: []string{"KETCH_URL"}, Destination: &raw.ServerURL},
		&cli.StringFlag{Name: "token", Aliases: []string{"t"}, Usage: "the join token: the server's <data-dir>/server/token, or one from ketch token create", EnvVars: []string{"KETCH_TOKEN"}, Destination: &raw.Token},
		&cli.StringFlag{Name: "token-file", Usage: "file holding the join token", EnvVars: []string{"KETCH_TOKEN_FILE"}, Destination: &raw.TokenFile},
	)
	return &cli.Command{
		Name:  "agent",
		Usage: "join this machine to a cluster as a node",
		Flags: flags,
		Action: func(c *cli.Context) error {
			if err := applyConfigFile(c, configPath, true); err != nil {
				return err
			}
			cfg, err := config.ParseAgent(raw)
			if err != nil {
				return err
			}
			return run(cfg)
		},
	}
}

package main

import (
	"os"
	"path/filepath"

	ctrapp "github.com/containerd/containerd/v2/cmd/ctr/app"
	"github.com/urfave/cli/v2"
	kcli "k8s.io/component-base/cli"
	kubectl "k8s.io/kubectl/pkg/cmd"

	"github.com/ketch-k8s/ketch/pkg/config"
)

// kubectlCommand runs the upstream kubectl, using the admin kubeconfig ketch server writes
// unless the user says otherwise.
func kubectlCommand() *cli.Command {
	return &cli.Command{
		Name:            "kubectl",
		Usage:           "run kubectl against this cluster",
		SkipFlagParsing: true,
		Action: func(c *cli.Context) error {
			os.Exit(runKubectl(c.Args().Slice()))
			return nil
		},
	}
}

func runKubectl(args []string) int {
	if os.Getenv("KUBECONFIG") == "" {
		if _, err := os.Stat(config.DefaultWriteKubeconfig); err == nil {
			os.Setenv("KUBECONFIG", config.DefaultWriteKubeconfig)
		}
	}
	cmd := kubectl.NewDefaultKubectlCommand()
	cmd.SetArgs(args)
	return kcli.Run(cmd)
}

// ctrCommand runs the upstream ctr against this node's containerd, in the Kubernetes namespace.
func ctrCommand() *cli.Command {
	return &cli.Command{
		Name:            "ctr",
		Usage:           "run containerd's ctr against this node's containerd",
		SkipFlagParsing: true,
		Action: func(c *cli.Context) error {
			return runCtr(c.Args().Slice())
		},
	}
}

func runCtr(args []string) error {
	if os.Getenv("CONTAINERD_ADDRESS") == "" {
		os.Setenv("CONTAINERD_ADDRESS", filepath.Join(config.DefaultRunDir, "containerd", "containerd.sock"))
	}
	if os.Getenv("CONTAINERD_NAMESPACE") == "" {
		os.Setenv("CONTAINERD_NAMESPACE", "k8s.io")
	}
	return ctrapp.New().Run(append([]string{"ctr"}, args...))
}

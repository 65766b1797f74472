package app

import (
	"fmt"
	"os"

	ctrapp "github.com/containerd/containerd/v2/cmd/ctr/app"
	"github.com/urfave/cli/v2"
	kcli "k8s.io/component-base/cli"
	kubectl "k8s.io/kubectl/pkg/cmd"

	"github.com/ketch-k8s/ketch/pkg/agent/containerd"
	"github.com/ketch-k8s/ketch/pkg/config"
)

// The upstream CLIs take every argument as theirs, so ketch's settings for them come from the
// config file only ($KETCH_CONFIG_FILE, or the default path), as the node's own do.

// fileSetting is a key of the config file as a string, or def.
func fileSetting(key, def string) (string, error) {
	path, explicit := os.LookupEnv("KETCH_CONFIG_FILE")
	if !explicit {
		path = config.DefaultConfigFile
	}
	values, err := readConfigFile(path, explicit)
	if err != nil {
		return "", err
	}
	if v, ok := values[key]; ok {
		return fmt.Sprint(v), nil
	}
	return def, nil
}

// kubectlCommand runs the upstream kubectl, with the admin kubeconfig `ketch server` writes
// unless KUBECONFIG says otherwise.
func kubectlCommand() *cli.Command {
	return &cli.Command{
		Name:            "kubectl",
		Usage:           "run kubectl against this cluster (with the server's admin kubeconfig, see --write-kubeconfig)",
		SkipFlagParsing: true,
		Action: func(c *cli.Context) error {
			os.Exit(runKubectl(c.Args().Slice()))
			return nil
		},
	}
}

// runKubectl sets KUBECONFIG, which kubectl reads, for this short-lived process only.
func runKubectl(args []string) int {
	if os.Getenv("KUBECONFIG") == "" {
		path, err := fileSetting("write-kubeconfig", config.DefaultWriteKubeconfig)
		if err != nil {
			fmt.Fprintf(os.Stderr, "ketch kubectl: %v\n", err)
			return 1
		}
		if _, err := os.Stat(path); err == nil {
			os.Setenv("KUBECONFIG", path)
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
		Usage:           "run containerd's ctr against this node's containerd (its run dir from the config file)",
		SkipFlagParsing: true,
		Action: func(c *cli.Context) error {
			return runCtr(c.Args().Slice())
		},
	}
}

// runCtr sets the variables ctr reads for its defaults, for this short-lived process only.
func runCtr(args []string) error {
	if os.Getenv("CONTAINERD_ADDRESS") == "" {
		runDir, err := fileSetting("run-dir", config.DefaultRunDir)
		if err != nil {
			return err
		}
		os.Setenv("CONTAINERD_ADDRESS", config.Paths{RunDir: runDir}.ContainerdSocket())
	}
	if os.Getenv("CONTAINERD_NAMESPACE") == "" {
		os.Setenv("CONTAINERD_NAMESPACE", containerd.Namespace)
	}
	return ctrapp.New().Run(append([]string{"ctr"}, args...))
}

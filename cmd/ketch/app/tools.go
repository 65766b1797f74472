package app

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	ctrapp "github.com/containerd/containerd/v2/cmd/ctr/app"
	"github.com/urfave/cli/v2"
	kcli "k8s.io/component-base/cli"
	kubectl "k8s.io/kubectl/pkg/cmd"
	"sigs.k8s.io/yaml"

	"github.com/ketch-k8s/ketch/pkg/agent/containerd"
	"github.com/ketch-k8s/ketch/pkg/bundle"
	"github.com/ketch-k8s/ketch/pkg/config"
)

// The upstream CLIs take every argument as theirs, so ketch's settings for them come from the
// config file only ($KETCH_CONFIG_FILE, or the default path), as the node's own do.

// toolConfigFile is the config file the tools read: $KETCH_CONFIG_FILE, or the default path.
func toolConfigFile() (path string, explicit bool) {
	path, explicit = os.LookupEnv("KETCH_CONFIG_FILE")
	if !explicit {
		path = config.DefaultConfigFile
	}
	return path, explicit
}

// fileSetting is a key of the config file as a string, or def.
func fileSetting(key, def string) (string, error) {
	path, explicit := toolConfigFile()
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

// crictlCommand runs the upstream crictl, from the runtime bundle, against this node's
// containerd.
func crictlCommand() *cli.Command {
	return &cli.Command{
		Name:            "crictl",
		Usage:           "run crictl against this node's containerd CRI socket (its data dir and run dir from the config file)",
		SkipFlagParsing: true,
		Action: func(c *cli.Context) error {
			return runCrictl(c.Args().Slice())
		},
	}
}

// runCrictl execs the bundle's crictl with the node's containerd socket as its endpoints and
// crictl.yaml in the data dir as its config file, unless the user named their own; it returns
// only if that fails. crictl cannot be linked into ketch (its main is a main package), so it
// comes from the runtime bundle: the one the node unpacked, or unpacked here if there is none.
func runCrictl(args []string) error {
	dataDir, err := fileSetting("data-dir", config.DefaultDataDir)
	if err != nil {
		return err
	}
	runDir, err := fileSetting("run-dir", config.DefaultRunDir)
	if err != nil {
		return err
	}
	paths := config.Paths{DataDir: dataDir, RunDir: runDir}
	inv := planCrictl(args, paths, os.Getenv)
	if inv.dialNode {
		if err := dialNode(paths); err != nil {
			return err
		}
	}
	// As private as the node makes it, should this be the first to create it.
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return err
	}
	prog, err := bundle.Program(paths.BundleDir(), "crictl")
	if err != nil {
		return fmt.Errorf("crictl comes with the runtime bundle: %w", err)
	}
	// Should ketch's file not be writable, crictl keeps its default file; the endpoints are the
	// node's either way.
	if inv.configFile != "" && ensureCrictlConfig(inv.configFile) == nil {
		os.Setenv("CRI_CONFIG_FILE", inv.configFile)
	}
	argv := append([]string{"crictl"}, inv.args...)
	if err := syscall.Exec(prog, argv, os.Environ()); err != nil {
		return fmt.Errorf("running %s: %w", prog, err)
	}
	return nil
}

// crictlInvocation is how ketch crictl runs crictl.
type crictlInvocation struct {
	args       []string // after argv[0]: ketch's endpoint flags, then the user's arguments
	configFile string   // for CRI_CONFIG_FILE, or "" when the user named a config file
	dialNode   bool     // the node's socket is used: check that a node answers there first
}

// crictl's global flags, by their short names, and those that take no value.
var (
	crictlShortFlags = map[string]string{"c": "config", "r": "runtime-endpoint", "i": "image-endpoint",
		"t": "timeout", "D": "debug", "h": "help", "v": "version"}
	crictlBoolFlags = []string{"debug", "enable-tracing", "help", "version", "generate-bash-completion"}
)

// crictlGlobals returns the global flags among args (those before crictl's subcommand) by long
// name, with their values, and the subcommand.
func crictlGlobals(args []string) (flags map[string]string, subcommand string) {
	flags = map[string]string{}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" || a == "-" || !strings.HasPrefix(a, "-") {
			if a != "--" {
				subcommand = a
			}
			break
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if long, ok := crictlShortFlags[name]; ok {
			name = long
		}
		if !hasValue && !slices.Contains(crictlBoolFlags, name) && i+1 < len(args) {
			i++
			value = args[i]
		}
		flags[name] = value
	}
	return flags, subcommand
}

// planCrictl decides crictl's arguments and config file. What the user set wins, as crictl's
// own precedence has it (command line, then environment, then config file): a runtime or image
// endpoint of theirs, from any of the three, is kept, and with a runtime endpoint of theirs the
// image endpoint follows it as crictl defaults. Otherwise both are the node's containerd socket.
// With no config file named (--config, CRI_CONFIG_FILE), crictl gets ketch's (as k3s crictl gets
// k3s's), not /etc/crictl.yaml, which is likely another runtime's.
func planCrictl(args []string, paths config.Paths, getenv func(string) string) crictlInvocation {
	flags, sub := crictlGlobals(args)
	inv := crictlInvocation{}
	configFile, named := flags["config"]
	if !named {
		configFile = getenv("CRI_CONFIG_FILE")
		named = configFile != ""
	}
	if !named {
		configFile = paths.CrictlConfigFile()
		inv.configFile = configFile
	}
	fromFile := crictlConfigEndpoints(configFile)
	_, runtimeFlag := flags["runtime-endpoint"]
	_, imageFlag := flags["image-endpoint"]
	theirRuntime := runtimeFlag || getenv("CONTAINER_RUNTIME_ENDPOINT") != "" || fromFile["runtime-endpoint"] != ""
	theirImage := imageFlag || getenv("IMAGE_SERVICE_ENDPOINT") != "" || fromFile["image-endpoint"] != ""
	endpoint := "unix://" + paths.ContainerdSocket()
	if !theirRuntime {
		inv.args = append(inv.args, "--runtime-endpoint", endpoint)
		if !theirImage {
			inv.args = append(inv.args, "--image-endpoint", endpoint)
		}
		// Help, the version and the config file need no runtime; everything else talks to it.
		_, help := flags["help"]
		_, version := flags["version"]
		inv.dialNode = !help && !version && !slices.Contains([]string{"", "help", "h", "completion", "config"}, sub) &&
			!slices.Contains(args, "--help") && !slices.Contains(args, "-h")
	}
	inv.args = append(inv.args, args...)
	return inv
}

// crictlConfigEndpoints reads the endpoints of a crictl config file; a file that is missing or
// unreadable is crictl's to report.
func crictlConfigEndpoints(path string) map[string]string {
	endpoints := map[string]string{}
	data, err := os.ReadFile(path)
	if err != nil {
		return endpoints
	}
	var values map[string]any
	if yaml.Unmarshal(data, &values) != nil {
		return endpoints
	}
	for _, key := range []string{"runtime-endpoint", "image-endpoint"} {
		if v, ok := values[key].(string); ok {
			endpoints[key] = v
		}
	}
	return endpoints
}

// ensureCrictlConfig creates ketch's crictl config file if it is missing. It holds no
// endpoints: ketch passes the node's, from the run dir of the moment.
func ensureCrictlConfig(path string) error {
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	// The node's agent dir and its etc/ are private (0700).
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return err
	}
	_, err = f.WriteString("# crictl's settings for ketch crictl (crictl config --help). ketch passes the node's\n" +
		"# containerd socket as --runtime-endpoint and --image-endpoint unless this file, the\n" +
		"# environment or the command line names another.\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// dialNode checks that a node's containerd answers on its socket, so that a command aimed at a
// node that is not running says so instead of failing deep in gRPC.
func dialNode(paths config.Paths) error {
	socket := paths.ContainerdSocket()
	conn, err := net.DialTimeout("unix", socket, 5*time.Second)
	if err == nil {
		conn.Close()
		return nil
	}
	if errors.Is(err, fs.ErrPermission) {
		return fmt.Errorf("cannot connect to the node's containerd at %s: %w; run it as root", socket, err)
	}
	var sysErr *os.SyscallError
	if errors.As(err, &sysErr) {
		err = sysErr.Err // the socket is named once
	}
	configFile, _ := toolConfigFile()
	return fmt.Errorf("no node is running on run dir %s: nothing answers on its containerd socket %s (%w); "+
		"start the node (ketch server or ketch agent), or name the node's run dir with run-dir in %s (KETCH_CONFIG_FILE names another config file)",
		paths.RunDir, socket, err, configFile)
}

// Package containerd runs containerd v2 inside the ketch process, with the CRI plugin for the
// kubelet, overlayfs, runc from the runtime bundle and the CNI plugins from the same bundle.
//
// The runc shim (containerd-shim-runc-v2) also comes from the runtime bundle: the CRI runtime's
// runtime_path names it for new pods. Shims are separate processes, so containers keep running
// when containerd stops, and a containerd started again on the same directories reconnects to
// them. For that it needs the shim on PATH: only a pod's sandbox task records its shim's path;
// its containers (which share the sandbox's shim) record only the runtime's name, which
// containerd resolves on PATH when it loads them, and the shim itself looks runc up on PATH to
// answer containerd's -info. So Start puts the bundle's bin dir first on the process's PATH, as
// k3s does with its own data dir (on a host without another containerd's shim on PATH, the
// containers would otherwise be lost at every restart of ketch).
//
// containerd's plugin registry, log output, temp-mount location and timeouts are process-wide:
// one embedded containerd runs per process at a time (Start again after Stop is fine).
package containerd

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"iter"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/containerd/containerd/v2/cmd/containerd/server"
	srvconfig "github.com/containerd/containerd/v2/cmd/containerd/server/config"
	"github.com/containerd/containerd/v2/core/mount"
	"github.com/containerd/log"

	"github.com/containerd/plugin"
	"github.com/containerd/plugin/registry"
	"github.com/ketch-k8s/ketch/pkg/config"
	"github.com/sirupsen/logrus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2"
)

// Namespace is the containerd namespace of the CRI plugin, where the kubelet's images and
// containers live.
const Namespace = "k8s.io"

// maxSocketDirLen is containerd's limit for the shim socket directory on Linux (a socket path
// is that directory, "/" and 64 hex digits, and must fit in sun_path).
const maxSocketDirLen = 42

// Config is how the embedded containerd is set up.
type Config struct {
	// Paths are the node's: containerd's root is Paths.ContainerdRoot(), its state
	// Paths.ContainerdState() with the socket Paths.ContainerdSocket(), its config file
	// Paths.ContainerdConfigFile(), the CNI conf dir Paths.CNIConfDir().
	Paths config.Paths
	// BinDir is the unpacked runtime bundle (bundle.Unpack): runc, the shim and the CNI plugins.
	BinDir string
	// SandboxImage is the pause image of every pod (images.PauseImage); it must be imported
	// into containerd's k8s.io namespace (images.Ensure, pinned) right after Start, before
	// the kubelet runs pods, since no registry is assumed.
	SandboxImage string
	// SystemdCgroup selects runc's systemd cgroup driver (hostcheck's CgroupDriver == systemd);
	// the kubelet must use the same driver.
	SystemdCgroup bool
	// RestrictOOMScoreAdj keeps containers' oom_score_adj at or above containerd's own, for
	// hosts without CAP_SYS_RESOURCE (hostcheck's RestrictOOMScoreAdj).
	RestrictOOMScoreAdj bool
	// Log receives containerd's log (logrus text lines); nil discards it. The shims' own log
	// lines are copied by containerd to this process' stderr.
	Log io.Writer
	// LogLevel is containerd's log level (trace, debug, info, warn, error); "info" when empty.
	LogLevel string
}

// Paths are the files and directories containerd uses.
type Paths struct {
	Root       string // containerd's persistent root
	State      string // containerd's state (tmpfs)
	Socket     string // the gRPC (and CRI) socket
	ConfigFile string // the config.toml written for transparency and loaded from
	CNIConfDir string // where the CNI network config goes
	CNIBinDir  string // the CNI plugins (the bundle)
	Shim       string // the runc shim (the bundle)
	RuncRoot   string // runc's state
	ShimSocket string // the shims' socket dir
	CertsDir   string // registry host configuration (hosts.toml per registry), optional
}

// PathsFor returns the paths a Config implies: the node's, plus containerd's own below its state.
func PathsFor(cfg Config) Paths {
	p := cfg.Paths
	return Paths{
		Root:       p.ContainerdRoot(),
		State:      p.ContainerdState(),
		Socket:     p.ContainerdSocket(),
		ConfigFile: p.ContainerdConfigFile(),
		CNIConfDir: p.CNIConfDir(),
		CNIBinDir:  cfg.BinDir,
		Shim:       filepath.Join(cfg.BinDir, ShimName),
		RuncRoot:   filepath.Join(p.ContainerdState(), "runc"),
		ShimSocket: filepath.Join(p.ContainerdState(), "s"),
		CertsDir:   p.ContainerdCertsDir(),
	}
}

// Containerd is a running embedded containerd.
type Containerd struct {
	cfg    Config
	paths  Paths
	srv    *server.Server
	cancel context.CancelFunc

	stopOnce sync.Once
	stopped  chan struct{}
}

// running guards against two embedded containerds at once in one process: they would share
// the plugin registry's global state.
var (
	runningMu sync.Mutex
	running   bool
)

// Start writes containerd's config, starts containerd in this process and returns once its CRI
// service answers on the socket. ctx is containerd's lifetime: it runs until ctx is cancelled
// or Stop is called (a cancelled ctx also aborts a start that is still under way).
func Start(ctx context.Context, cfg Config) (_ *Containerd, retErr error) {
	if cfg.Paths.DataDir == "" || cfg.Paths.RunDir == "" || cfg.BinDir == "" || cfg.SandboxImage == "" {
		return nil, errors.New("containerd: the data dir, run dir, BinDir and SandboxImage are required")
	}
	for _, p := range []*string{&cfg.Paths.DataDir, &cfg.Paths.RunDir, &cfg.BinDir} {
		abs, err := filepath.Abs(*p)
		if err != nil {
			return nil, fmt.Errorf("containerd: %w", err)
		}
		*p = abs
	}
	paths := PathsFor(cfg)
	if len(paths.ShimSocket) > maxSocketDirLen {
		return nil, fmt.Errorf("containerd: run dir %q is too long: the shim socket dir %s must be at most %d characters", cfg.Paths.RunDir, paths.ShimSocket, maxSocketDirLen)
	}
	if _, err := os.Stat(filepath.Join(cfg.BinDir, "runc")); err != nil {
		return nil, fmt.Errorf("containerd: runc is missing from the runtime bundle: %w", err)
	}

	runningMu.Lock()
	if running {
		runningMu.Unlock()
		return nil, errors.New("containerd: an embedded containerd is already running in this process")
	}
	running = true
	runningMu.Unlock()
	defer func() {
		if retErr != nil {
			runningMu.Lock()
			running = false
			runningMu.Unlock()
		}
	}()

	if _, err := os.Stat(paths.Shim); err != nil {
		return nil, fmt.Errorf("containerd: %s is missing from the runtime bundle: %w", ShimName, err)
	}
	if err := setupLogging(cfg); err != nil {
		return nil, err
	}
	prependPath(cfg.BinDir)
	for _, dir := range []string{paths.CNIConfDir, paths.RuncRoot, paths.ShimSocket} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("containerd: %w", err)
		}
	}
	if err := writeConfig(paths.ConfigFile, configTOML(cfg, paths)); err != nil {
		return nil, err
	}
	config, err := loadConfig(ctx, paths.ConfigFile)
	if err != nil {
		return nil, err
	}
	if err := server.CreateTopLevelDirectories(config); err != nil {
		return nil, fmt.Errorf("containerd: creating directories: %w", err)
	}
	// As containerd's main does: temporary mounts (image unpacking) go under the root and
	// leftovers of a crash are unmounted before anything else.
	if err := mount.SetTempMountLocation(filepath.Join(config.Root, "tmpmounts")); err != nil {
		return nil, fmt.Errorf("containerd: temp mount location: %w", err)
	}
	warnings, err := mount.CleanupTempMounts(0)
	if err != nil {
		log.L.WithError(err).Error("unmounting temp mounts")
	}
	for _, w := range warnings {
		log.L.WithError(w).Warn("cleanup temp mount")
	}

	// containerd's plugins keep this context for their lifetime. It is detached from ctx and
	// ended by Stop (which a cancelled ctx triggers), so that plugins always stop in Stop's
	// order: context first, then servers and databases, as containerd's own main does.
	srvCtx, cancel := context.WithCancel(log.WithLogger(context.WithoutCancel(ctx), log.L))
	c := &Containerd{cfg: cfg, paths: paths, cancel: cancel, stopped: make(chan struct{})}
	defer func() {
		if retErr != nil {
			cancel()
			if c.srv != nil {
				c.srv.Stop()
			}
		}
	}()

	start := time.Now()
	log.L.WithField("config", paths.ConfigFile).Info("starting embedded containerd")
	// server.New can block (bolt's file lock, with the timeout configured); keep it
	// interruptible by ctx.
	type result struct {
		srv *server.Server
		err error
	}
	ch := make(chan result, 1)
	go func() {
		// The CRI plugin reconfigures klog process-wide as it initialises (verbosity from
		// containerd's log level, logging to stderr); klog belongs to the rest of ketch.
		restore := preserveKlog()
		s, err := server.New(srvCtx, config)
		restore()
		ch <- result{s, err}
	}()
	select {
	case <-ctx.Done():
		go func() {
			if r := <-ch; r.srv != nil {
				r.srv.Stop()
			}
		}()
		return nil, fmt.Errorf("containerd: starting: %w", ctx.Err())
	case r := <-ch:
		if r.err != nil {
			return nil, fmt.Errorf("containerd: loading plugins: %w", r.err)
		}
		c.srv = r.srv
	}
	if err := c.srv.Start(srvCtx); err != nil {
		return nil, fmt.Errorf("containerd: starting servers: %w", err)
	}
	ready := make(chan struct{})
	go func() {
		c.srv.Wait()
		close(ready)
	}()
	select {
	case <-ctx.Done():
		return nil, fmt.Errorf("containerd: waiting for plugins: %w", ctx.Err())
	case <-ready:
	}
	if err := waitCRI(ctx, paths.Socket); err != nil {
		return nil, err
	}
	log.L.Infof("containerd ready in %.2fs", time.Since(start).Seconds())
	klog.V(2).InfoS("Embedded containerd ready", "socket", paths.Socket, "duration", time.Since(start))

	go func() {
		select {
		case <-ctx.Done():
			c.Stop()
		case <-c.stopped:
		}
	}()
	return c, nil
}

// preserveKlog snapshots klog's flag values and returns a function that puts back any that
// changed.
func preserveKlog() (restore func()) {
	fs := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(fs) // binds fs to klog's live settings; does not reset them
	saved := map[string]string{}
	fs.VisitAll(func(f *flag.Flag) { saved[f.Name] = f.Value.String() })
	return func() {
		fs.VisitAll(func(f *flag.Flag) {
			if v := f.Value.String(); v != saved[f.Name] {
				if err := f.Value.Set(saved[f.Name]); err != nil {
					log.L.WithError(err).Warnf("restoring klog's %s", f.Name)
				}
			}
		})
	}
}

// waitCRI returns once the CRI runtime service answers Version on the socket.
func waitCRI(ctx context.Context, socket string) error {
	conn, err := grpc.NewClient("unix://"+socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return fmt.Errorf("containerd: CRI client: %w", err)
	}
	defer conn.Close()
	rt := runtimeapi.NewRuntimeServiceClient(conn)
	var lastErr error
	for {
		callCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := rt.Version(callCtx, &runtimeapi.VersionRequest{})
		cancel()
		if err == nil {
			return nil
		}
		lastErr = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("containerd: CRI not answering on %s: %w (last error: %v)", socket, ctx.Err(), lastErr)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// setupLogging points containerd's logger (logrus' standard logger, process-wide) at cfg.Log.
func setupLogging(cfg Config) error {
	w := cfg.Log
	if w == nil {
		w = io.Discard
	}
	level := cfg.LogLevel
	if level == "" {
		level = "info"
	}
	logrus.SetOutput(w)
	if err := log.SetFormat(log.TextFormat); err != nil {
		return fmt.Errorf("containerd: log format: %w", err)
	}
	if err := log.SetLevel(level); err != nil {
		return fmt.Errorf("containerd: log level: %w", err)
	}
	return nil
}

// loadConfig loads the config file the way containerd's main does, so that the file written
// is exactly what runs (and a user can compare it with upstream documentation).
func loadConfig(ctx context.Context, path string) (*srvconfig.Config, error) {
	// As containerd's main: the base config is of the current version, so that a file of an
	// older version would be migrated (and say so).
	config := &srvconfig.Config{Version: configVersion}
	g := registry.Graph(func(*plugin.Registration) bool { return false })
	plugins := func() iter.Seq[plugin.Registration] { return slices.Values(g) }
	if err := srvconfig.LoadConfigWithPlugins(ctx, path, plugins, config); err != nil {
		return nil, fmt.Errorf("containerd: loading %s: %w", path, err)
	}
	return config, nil
}

// Address is containerd's socket path (the kubelet's runtime endpoint is "unix://" + Address).
func (c *Containerd) Address() string { return c.paths.Socket }

// Paths returns the files and directories this containerd uses.
func (c *Containerd) Paths() Paths { return c.paths }

// Stop stops containerd: its servers stop listening, its plugins close their databases, and it
// stops writing to Config.Log. Shims and containers keep running; a later Start on the same
// directories (in this process or another) reconnects to them.
func (c *Containerd) Stop() {
	c.stopOnce.Do(func() {
		log.L.Info("stopping embedded containerd")
		// The order of containerd's own signal handler: end the plugins' context, then close
		// the servers and plugins.
		c.cancel()
		c.srv.Stop()
		// Goroutines of the stopped plugins may still log (a shim answering a pending call);
		// the caller may close its log writer once Stop returns.
		logrus.SetOutput(io.Discard)
		close(c.stopped)
		runningMu.Lock()
		running = false
		runningMu.Unlock()
		klog.V(2).InfoS("Embedded containerd stopped")
	})
}

// prependPath puts dir first on the process's PATH, unless it is there already.
func prependPath(dir string) {
	path := os.Getenv("PATH")
	if slices.Contains(filepath.SplitList(path), dir) {
		return
	}
	if path == "" {
		os.Setenv("PATH", dir)
		return
	}
	os.Setenv("PATH", dir+string(os.PathListSeparator)+path)
}

//go:build linux

// Package testserver is ketch's drop-in replacement for
// k8s.io/apiserver/pkg/storage/etcd3/testserver/test_server.go.
//
// scripts/test-apiserver-storage.sh copies k8s.io/apiserver from the module cache into a scratch
// directory, overwrites the upstream file with this one and runs the upstream
// k8s.io/apiserver/pkg/storage/etcd3 tests. Instead of starting an embedded etcd in the test
// process, RunEtcd starts `$KETCH_BIN datastore` as a subprocess, so the whole upstream storage
// suite exercises ketch's datastore over the etcd v3 gRPC API, exactly as kube-apiserver does.
//
// The exported API (NewTestConfig, RunEtcd) keeps the upstream signatures, including the
// *embed.Config parameter, so no other upstream file needs patching. The config is only a carrier
// for the settings the tests make; RunEtcd translates the ones ketch supports into command-line
// flags and refuses any other setting rather than silently ignoring it.
//
// The file lives under testdata so that the go tool never builds it as part of ketch. It is
// Linux-only, like ketch, because it relies on Pdeathsig to never leak a datastore process.
package testserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/kubernetes"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"google.golang.org/grpc"
	storagetesting "k8s.io/apiserver/pkg/storage/testing"
)

const (
	// ketchBinEnv names the ketch binary to test; the script (and `make test-apiserver-storage`)
	// set it to an absolute path.
	ketchBinEnv = "KETCH_BIN"
	// startTimeout matches the 60s the upstream harness gives embedded etcd to become ready.
	startTimeout = 60 * time.Second
	// stopTimeout is how long a datastore gets to exit after SIGTERM before it is SIGKILLed.
	stopTimeout = 10 * time.Second
	// startAttempts bounds retries when the port picked by NewTestConfig was taken by someone
	// else between picking it and the datastore binding it.
	startAttempts = 3
	// logTailBytes is how much of the datastore log is shown when a test fails.
	logTailBytes = 16 << 10
)

// translatedFields are the embed.Config fields RunEtcd understands: either turned into
// `ketch datastore` flags, or deliberately ignored because they have no meaning for a
// single-process datastore without raft (peer URLs, cluster membership, logger, fsync tuning).
// Any other field that differs from embed.NewConfig() makes RunEtcd fail, so that a test in a
// newer k8s.io/apiserver relying on an etcd setting ketch cannot honour is noticed instead of
// silently running with the wrong configuration.
var translatedFields = map[string]bool{
	// Translated into flags.
	"Dir":                         true, // --data-dir
	"ListenClientUrls":            true, // --listen-client-urls
	"AdvertiseClientUrls":         true, // the client connects to ListenClientUrls
	"WatchProgressNotifyInterval": true, // --watch-progress-notify-interval
	"MaxRequestBytes":             true, // --max-request-bytes
	"ClientTLSInfo":               true, // checked explicitly: only an empty value is accepted
	// Ignored: set by upstream's NewTestConfig for embedded etcd, meaningless for ketch's datastore.
	"ListenPeerUrls":    true,
	"AdvertisePeerUrls": true,
	"InitialCluster":    true,
	"ZapLoggerBuilder":  true,
	"UnsafeNoFsync":     true,
}

// getAvailablePort returns a loopback TCP port that is free right now. Another process may still
// grab it before the datastore binds it; RunEtcd retries in that case.
func getAvailablePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("could not bind to a port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// setClientURL points the config's client listener at a fresh free loopback port.
func setClientURL(t testing.TB, cfg *embed.Config) {
	port, err := getAvailablePort()
	if err != nil {
		t.Fatal(err)
	}
	u := url.URL{Scheme: "http", Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(port))}
	cfg.ListenClientUrls = []url.URL{u}
	cfg.AdvertiseClientUrls = []url.URL{u}
}

// NewTestConfig returns a configuration for a test datastore. Like upstream it is based on
// embed.NewConfig(), so settings the tests do not touch keep etcd's defaults (which RunEtcd passes
// to ketch explicitly), with a free loopback client port and a data directory removed when the
// test ends. Upstream also sets peer URLs, a logger and UnsafeNoFsync for embedded etcd; none of
// them has a counterpart in ketch's datastore, so they are left alone.
func NewTestConfig(t testing.TB) *embed.Config {
	cfg := embed.NewConfig()
	setClientURL(t, cfg)
	cfg.Dir = t.TempDir()
	// As upstream: etcd insists on a private data directory; keep ketch's datastore in the same
	// situation.
	os.Chmod(cfg.Dir, 0700)
	return cfg
}

var autoPortLock sync.Mutex

// RunEtcd starts `$KETCH_BIN datastore` with the provided config (or NewTestConfig(t) if nil), and
// returns a client connected to it. The datastore is stopped when the test ends.
func RunEtcd(t testing.TB, cfg *embed.Config) *kubernetes.Client {
	t.Helper()

	if cfg == nil {
		// As upstream: when we pick the ports ourselves, keep other callers from picking the same
		// ones until the server is up.
		autoPortLock.Lock()
		defer autoPortLock.Unlock()
		cfg = NewTestConfig(t)
	}

	bin := os.Getenv(ketchBinEnv)
	if bin == "" {
		t.Fatalf("%s is not set: it must be the absolute path of the ketch binary whose datastore these tests run against (see scripts/test-apiserver-storage.sh)", ketchBinEnv)
	}
	// go test runs the test binary in the package directory, so a relative path would silently
	// resolve against the scratch copy of k8s.io/apiserver.
	if !filepath.IsAbs(bin) {
		t.Fatalf("%s=%q must be an absolute path", ketchBinEnv, bin)
	}
	if err := checkConfig(cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.Dir == "" {
		cfg.Dir = t.TempDir()
	}

	var ds *datastore
	for attempt := 1; ; attempt++ {
		var err error
		ds, err = startDatastore(t, bin, cfg)
		if err == nil {
			break
		}
		if errors.Is(err, errAddrInUse) && attempt < startAttempts {
			t.Logf("%v; retrying on another port", err)
			setClientURL(t, cfg)
			continue
		}
		t.Fatal(err)
	}

	client, err := kubernetes.New(clientv3.Config{
		Endpoints:   []string{ds.endpoint},
		DialTimeout: 10 * time.Second,
		DialOptions: []grpc.DialOption{grpc.WithBlock()},
		Logger:      zaptest.NewLogger(t, zaptest.Level(zapcore.ErrorLevel)).Named("etcd-client"),
	})
	if err != nil {
		t.Fatal(err)
	}
	// Close the client before the datastore is stopped (cleanups run last-registered first), so
	// that open watches end cleanly instead of reconnecting to a dead server. Tests that close the
	// client themselves make this a harmless no-op.
	t.Cleanup(func() { client.Close() })
	client.KV = storagetesting.NewKVRecorder(client.KV)
	client.Kubernetes = storagetesting.NewKubernetesRecorder(client.Kubernetes)
	return client
}

// checkConfig rejects settings RunEtcd cannot pass on to ketch's datastore.
func checkConfig(cfg *embed.Config) error {
	if !cfg.ClientTLSInfo.Empty() {
		return errors.New("embed.Config.ClientTLSInfo is set, but `ketch datastore` serves plain http only")
	}
	if len(cfg.ListenClientUrls) != 1 || cfg.ListenClientUrls[0].Scheme != "http" {
		return fmt.Errorf("embed.Config.ListenClientUrls=%v: need exactly one http:// URL", cfg.ListenClientUrls)
	}
	def := reflect.ValueOf(embed.NewConfig()).Elem()
	got := reflect.ValueOf(cfg).Elem()
	var unsupported []string
	for i := 0; i < got.NumField(); i++ {
		f := got.Type().Field(i)
		if !f.IsExported() || translatedFields[f.Name] {
			continue
		}
		if !reflect.DeepEqual(got.Field(i).Interface(), def.Field(i).Interface()) {
			unsupported = append(unsupported, fmt.Sprintf("%s=%v", f.Name, got.Field(i).Interface()))
		}
	}
	if len(unsupported) > 0 {
		return fmt.Errorf("the test sets embed.Config fields that `ketch datastore` has no flag for: %s; "+
			"extend pkg/datastore/testdata/apiserver-storage/test_server.go or skip the test in scripts/test-apiserver-storage.sh",
			strings.Join(unsupported, ", "))
	}
	return nil
}

// progressNotifyInterval returns the watch progress notification interval embedded etcd would
// use for cfg. embed.NewConfig leaves the field zero, which etcd takes as its built-in 10m (not
// "off"), and etcd raises values below 100ms to 100ms; passing a literal 0s would ask ketch for
// something the tests never get from etcd.
func progressNotifyInterval(cfg *embed.Config) time.Duration {
	const (
		etcdDefault = 10 * time.Minute       // v3rpc.progressReportInterval
		etcdMinimum = 100 * time.Millisecond // v3rpc.minWatchProgressInterval
	)
	switch d := cfg.WatchProgressNotifyInterval; {
	case d <= 0:
		return etcdDefault
	case d < etcdMinimum:
		return etcdMinimum
	default:
		return d
	}
}

// errAddrInUse marks a start failure caused by the client port having been taken meanwhile.
var errAddrInUse = errors.New("client port already in use")

type datastore struct {
	cmd      *exec.Cmd
	endpoint string
	logPath  string
	exited   chan struct{} // closed once cmd.Wait has returned
	mu       sync.Mutex
	ready    bool // the datastore answered Status; an exit from now on is a test failure
	stopping bool // cleanup is stopping the datastore; an exit from now on is expected
}

// startDatastore starts the datastore, registers its shutdown with t.Cleanup and waits until it
// answers the Status RPC. On failure the error includes the datastore's log.
func startDatastore(t testing.TB, bin string, cfg *embed.Config) (*datastore, error) {
	ds := &datastore{
		endpoint: cfg.ListenClientUrls[0].String(),
		logPath:  filepath.Join(t.TempDir(), "ketch-datastore.log"),
		exited:   make(chan struct{}),
	}
	logFile, err := os.Create(ds.logPath)
	if err != nil {
		return nil, err
	}
	args := []string{
		"datastore",
		"--data-dir", cfg.Dir,
		"--listen-client-urls", ds.endpoint,
		// Always passed, even when equal to etcd's defaults, so the tests run with the settings
		// they were written for whatever ketch's own defaults are.
		"--watch-progress-notify-interval", progressNotifyInterval(cfg).String(),
		"--max-request-bytes", strconv.FormatUint(uint64(cfg.MaxRequestBytes), 10),
	}
	ds.cmd = exec.Command(bin, args...)
	ds.cmd.Stdout = logFile
	ds.cmd.Stderr = logFile
	ds.cmd.SysProcAttr = &syscall.SysProcAttr{
		// If the test binary dies without running cleanups (e.g. `go test -timeout` panics), the
		// kernel kills the datastore instead of leaving it running.
		Pdeathsig: syscall.SIGKILL,
		// Its own process group, so stop() also reaches children when KETCH_BIN is a wrapper
		// script rather than the ketch binary itself.
		Setpgid: true,
	}
	if err := ds.cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("starting %s: %v", bin, err)
	}
	t.Logf("started %s %s (pid %d, log %s)", bin, strings.Join(args, " "), ds.cmd.Process.Pid, ds.logPath)

	go func() {
		waitErr := ds.cmd.Wait()
		logFile.Close()
		ds.mu.Lock()
		if ds.ready && !ds.stopping {
			// Mirrors upstream, which reports errors from the embedded server with t.Error.
			t.Errorf("ketch datastore exited while the test was running: %v\n%s", waitErr, ds.logTail())
		}
		ds.mu.Unlock()
		close(ds.exited)
	}()
	t.Cleanup(func() { ds.stop(t) })

	if err := ds.waitReady(); err != nil {
		// Stop it now rather than in cleanup so that a retry does not run next to it.
		ds.stop(t)
		if strings.Contains(ds.log(), "address already in use") {
			return nil, fmt.Errorf("%w: %s", errAddrInUse, ds.endpoint)
		}
		return nil, fmt.Errorf("ketch datastore on %s did not become ready: %v\n--- %s ---\n%s", ds.endpoint, err, ds.logPath, ds.log())
	}
	ds.mu.Lock()
	ds.ready = true
	ds.mu.Unlock()
	return ds, nil
}

// waitReady polls the Status RPC until it answers, the process exits or startTimeout passes.
func (ds *datastore) waitReady() error {
	host := strings.TrimPrefix(ds.endpoint, "http://")
	var probe *clientv3.Client
	defer func() {
		if probe != nil {
			probe.Close()
		}
	}()
	deadline := time.Now().Add(startTimeout)
	lastErr := errors.New("client port not open yet")
	for ; time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		select {
		case <-ds.exited:
			return fmt.Errorf("process exited: %v", ds.cmd.ProcessState)
		default:
		}
		if probe == nil {
			// Wait for the port before creating the gRPC client: a gRPC connection attempt that
			// fails backs off for about a second, which would add a second to every test.
			conn, err := net.DialTimeout("tcp", host, time.Second)
			if err != nil {
				lastErr = err
				continue
			}
			conn.Close()
			probe, err = clientv3.New(clientv3.Config{
				Endpoints:   []string{ds.endpoint},
				DialTimeout: time.Second,
				Logger:      zap.NewNop(),
			})
			if err != nil {
				return err
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, lastErr = probe.Status(ctx, ds.endpoint)
		cancel()
		if lastErr == nil {
			// A datastore that failed to bind could not have answered, but another server that
			// took the port could: only trust the answer while our process is still running.
			select {
			case <-ds.exited:
				return fmt.Errorf("process exited: %v", ds.cmd.ProcessState)
			default:
				return nil
			}
		}
	}
	return fmt.Errorf("no answer to Status within %v, last error: %v", startTimeout, lastErr)
}

// stop sends SIGTERM, escalates to SIGKILL after stopTimeout and waits for the process to exit.
// It is idempotent. If the test failed, the tail of the datastore log is attached to it.
func (ds *datastore) stop(t testing.TB) {
	ds.mu.Lock()
	already := ds.stopping
	ds.stopping = true
	ds.mu.Unlock()
	if already {
		return
	}
	select {
	case <-ds.exited:
	default:
		ds.signalGroup(syscall.SIGTERM)
		select {
		case <-ds.exited:
		case <-time.After(stopTimeout):
			t.Errorf("ketch datastore (pid %d) did not exit within %v of SIGTERM; sending SIGKILL", ds.cmd.Process.Pid, stopTimeout)
			ds.signalGroup(syscall.SIGKILL)
			<-ds.exited
		}
	}
	if t.Failed() {
		t.Logf("tail of ketch datastore log %s:\n%s", ds.logPath, ds.logTail())
	}
}

// signalGroup sends sig to the datastore's process group (its pgid is its pid, see Setpgid).
func (ds *datastore) signalGroup(sig syscall.Signal) {
	if err := syscall.Kill(-ds.cmd.Process.Pid, sig); err != nil {
		// The group is gone or was never created; fall back to the process itself.
		_ = ds.cmd.Process.Signal(sig)
	}
}

func (ds *datastore) log() string {
	b, err := os.ReadFile(ds.logPath)
	if err != nil {
		return fmt.Sprintf("(cannot read log: %v)", err)
	}
	return string(b)
}

func (ds *datastore) logTail() string {
	f, err := os.Open(ds.logPath)
	if err != nil {
		return fmt.Sprintf("(cannot read log: %v)", err)
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() > logTailBytes {
		f.Seek(st.Size()-logTailBytes, io.SeekStart)
	}
	b, _ := io.ReadAll(f)
	return string(b)
}

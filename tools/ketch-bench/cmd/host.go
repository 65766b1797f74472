package cmd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ketch-k8s/ketch/internal/harness"
	"github.com/ketch-k8s/ketch/pkg/lockfile"
)

// checkNodeBench checks what every bench that starts ketch nodes needs before it touches the
// host: root, an executable ketch binary (*bin is made absolute) and the killall script (*killall
// is resolved). It returns the binary's file info for unchangedBinary.
func checkNodeBench(bin, killall *string) (os.FileInfo, error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("must run as root: ketch nodes run containers and set up the pod network (try sudo)")
	}
	info, err := checkBinary(bin)
	if err != nil {
		return nil, err
	}
	if *killall, err = findKillall(*killall, *bin); err != nil {
		return nil, err
	}
	return info, nil
}

// checkBinary makes *bin absolute and checks that it is an executable file.
func checkBinary(bin *string) (os.FileInfo, error) {
	abs, err := filepath.Abs(*bin)
	if err != nil {
		return nil, fmt.Errorf("--ketch-bin: %w", err)
	}
	*bin = abs
	info, err := os.Stat(abs)
	if err != nil {
		return nil, fmt.Errorf("--ketch-bin: %w", err)
	} else if info.IsDir() || info.Mode()&0o111 == 0 {
		return nil, fmt.Errorf("--ketch-bin: %s is not an executable file", abs)
	}
	return info, nil
}

// unchangedBinary fails when bin is no longer the file checkNodeBench saw: the numbers would
// mix two builds.
func unchangedBinary(bin string, before os.FileInfo) error {
	if st, err := os.Stat(bin); err != nil || st.Size() != before.Size() || !st.ModTime().Equal(before.ModTime()) {
		return fmt.Errorf("%s changed during the run (rebuilt?); the numbers mix two builds, run again", bin)
	}
	return nil
}

// claimHost takes the host lock, which keeps out the tests and benches that take it, and then
// checks that no ketch node started by hand runs either.
func claimHost(ctx context.Context, logf func(string, ...any)) (*lockfile.Lock, error) {
	lock, err := harness.LockHost(ctx, logf)
	if err != nil {
		return nil, err
	}
	if err := harness.HostFree(); err != nil {
		lock.Release()
		return nil, err
	}
	return lock, nil
}

// findKillall locates package/ketch-killall.sh: as given, else in the working directory (the
// repository, under go run or make), else next to the binary's directory (bin/../scripts).
func findKillall(given, ketchBin string) (string, error) {
	candidates := []string{given}
	if given == "" {
		candidates = []string{filepath.Join("package", "ketch-killall.sh"),
			filepath.Join(filepath.Dir(filepath.Dir(ketchBin)), "package", "ketch-killall.sh")}
	}
	for _, c := range candidates {
		if st, err := os.Stat(c); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return filepath.Abs(c)
		}
	}
	return "", fmt.Errorf("package/ketch-killall.sh not found (tried %s); run from the repository or pass --killall", strings.Join(candidates, ", "))
}

// clusterBenchStart is what a bench that runs clusters with scripts/ketch-cluster.sh has once
// it may begin: the checks passed, the host locked, an interruptible context.
type clusterBenchStart struct {
	ctx     context.Context
	stop    context.CancelFunc
	started time.Time
	logf    func(string, ...any)
	binInfo os.FileInfo // for unchangedBinary
	lock    *lockfile.Lock
}

// startClusterBench checks the host and the programs (checkNodeBench, clusterScript: *bin,
// *killall and *script are resolved) and takes the host lock. The nodes run in network
// namespaces of their own, so the host's ports need not be free; the lock keeps out the tests
// and benches whose cleanup would take this bench's nodes down. Call end when done.
func startClusterBench(bin, killall, script *string) (*clusterBenchStart, error) {
	binInfo, err := checkNodeBench(bin, killall)
	if err != nil {
		return nil, err
	}
	if *script, err = clusterScript(*script, *killall); err != nil {
		return nil, err
	}
	ctx, stop := interruptible()
	started := time.Now()
	logf := progressLog(started)
	lock, err := harness.LockHost(ctx, logf)
	if err != nil {
		stop()
		return nil, err
	}
	return &clusterBenchStart{ctx: ctx, stop: stop, started: started, logf: logf, binInfo: binInfo, lock: lock}, nil
}

// end releases the host lock and the context.
func (s *clusterBenchStart) end() {
	s.lock.Release()
	s.stop()
}

package report

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/moby/sys/mountinfo"

	"github.com/ketch-k8s/ketch/internal/harness"
)

// Machine is what a reader needs to judge whether two benchmark tables are comparable.
type Machine struct {
	CPU           string
	Cores         int
	Memory        string
	Kernel        string
	Filesystem    string // of the benchmark's data dir
	GoVersion     string
	EtcdVersion   string
	ClientVersion string // of the etcd client the datastore workloads use
	KetchBin      string // size and hash of the binary measured
}

// DescribeMachine never fails: a field it cannot read says so instead of stopping a benchmark
// that is otherwise fine.
func DescribeMachine(dataDir, ketchBin string) Machine {
	return Machine{
		CPU:           cpuModel(),
		Cores:         runtime.NumCPU(),
		Memory:        memTotal(),
		Kernel:        firstLine("/proc/sys/kernel/osrelease"),
		Filesystem:    filesystemOf(dataDir),
		GoVersion:     runtime.Version(),
		EtcdVersion:   moduleVersion("go.etcd.io/etcd/server/v3"),
		ClientVersion: moduleVersion("go.etcd.io/etcd/client/v3"),
		KetchBin:      describeBinary(ketchBin),
	}
}

// LoadAverage is the 1-minute load average, to show how busy the host was with other work.
func LoadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) > 0 {
		return f[0]
	}
	return "unknown"
}

func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		// "model name" on x86; arm64 kernels often have no model name at all.
		if ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown " + runtime.GOARCH + " CPU"
}

func memTotal() string {
	fields, err := harness.ReadKBFields("/proc/meminfo", "MemTotal:")
	if err != nil {
		return "unknown"
	}
	return Bytes(float64(fields["MemTotal:"]))
}

func firstLine(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "unknown"
	}
	line, _, _ := strings.Cut(string(b), "\n")
	return strings.TrimSpace(line)
}

// filesystemOf names the filesystem type and source of the mount holding dir, from the
// longest mount point in /proc/self/mountinfo that contains it.
func filesystemOf(dir string) string {
	abs, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return "unknown filesystem"
	}
	mounts, err := mountinfo.GetMounts(nil)
	if err != nil {
		return "unknown filesystem"
	}
	best, result := -1, "unknown filesystem"
	for _, m := range mounts {
		// Equal length: a later mount on the same point shadows the earlier one.
		if !within(abs, m.Mountpoint) || len(m.Mountpoint) < best {
			continue
		}
		best, result = len(m.Mountpoint), fmt.Sprintf("%s (%s, mounted at %s)", m.FSType, m.Source, m.Mountpoint)
	}
	return result
}

func within(path, mnt string) bool {
	return mnt == "/" || path == mnt || strings.HasPrefix(path, mnt+"/")
}

func moduleVersion(path string) string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown version"
	}
	for _, d := range bi.Deps {
		if d.Path == path {
			if d.Replace != nil {
				return d.Replace.Version + " (replaced)"
			}
			return d.Version
		}
	}
	return "unknown version"
}

// describeBinary identifies the exact ketch build measured, since the path alone says nothing.
func describeBinary(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return "unreadable: " + err.Error()
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "unreadable: " + err.Error()
	}
	return fmt.Sprintf("%s, sha256 %s", Bytes(float64(n)), hex.EncodeToString(h.Sum(nil))[:12])
}

package main

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
	"strconv"
	"strings"
)

// machineInfo is what a reader needs to judge whether two benchmark tables are comparable.
type machineInfo struct {
	cpu           string
	cores         int
	memory        string
	kernel        string
	filesystem    string
	goVersion     string
	etcdVersion   string
	clientVersion string
	ketchBin      string
}

// collectMachineInfo never fails: a field it cannot read says so instead of stopping a
// benchmark that is otherwise fine.
func collectMachineInfo(dataDir, ketchBin string) machineInfo {
	return machineInfo{
		cpu:           cpuModel(),
		cores:         runtime.NumCPU(),
		memory:        memTotal(),
		kernel:        firstLine("/proc/sys/kernel/osrelease"),
		filesystem:    filesystemOf(dataDir),
		goVersion:     runtime.Version(),
		etcdVersion:   moduleVersion("go.etcd.io/etcd/server/v3"),
		clientVersion: moduleVersion("go.etcd.io/etcd/client/v3"),
		ketchBin:      describeBinary(ketchBin),
	}
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
	fields, err := readKBFields("/proc/meminfo", "MemTotal:")
	if err != nil {
		return "unknown"
	}
	return fmtBytes(float64(fields["MemTotal:"]))
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
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "unknown filesystem"
	}
	defer f.Close()
	best, result := -1, "unknown filesystem"
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		fields, tail := strings.Fields(pre), strings.Fields(post)
		if !ok || len(fields) < 5 || len(tail) < 2 {
			continue
		}
		mnt := unescapeMount(fields[4])
		// Equal length: a later mount on the same point shadows the earlier one.
		if !within(abs, mnt) || len(mnt) < best {
			continue
		}
		best, result = len(mnt), fmt.Sprintf("%s (%s, mounted at %s)", tail[0], tail[1], mnt)
	}
	return result
}

func within(path, mnt string) bool {
	return mnt == "/" || path == mnt || strings.HasPrefix(path, mnt+"/")
}

// unescapeMount undoes mountinfo's octal escaping of spaces and similar characters.
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
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
	return fmt.Sprintf("%s, sha256 %s", fmtBytes(float64(n)), hex.EncodeToString(h.Sum(nil))[:12])
}

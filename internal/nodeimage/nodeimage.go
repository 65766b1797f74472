// Package nodeimage assembles the build context of ketch's node image (the Dockerfile at the
// repository root): a root file system holding the ketch binary and the few programs a static
// binary cannot carry but ketch's components execute, each with exactly the shared libraries it
// loads, taken from a Debian system root of the image's architecture.
//
// What is executed, and by whom: iptables, iptables-save and iptables-restore (and the ip6tables
// ones) by kube-proxy, flannel, the kubelet and the CNI plugins, through Debian's nf_tables
// multi-call program and the extension modules they use; mount and umount by the kubelet (tmpfs for secret and projected
// volumes, bind mounts for subPath). Nothing else is needed: containerd, runc, the shim and the
// CNI plugins come from ketch's own runtime bundle, and the node's images are made by the node.
package nodeimage

import (
	"debug/elf"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// Triplets are the multiarch directory names of the architectures ketch is released for.
var Triplets = map[string]string{
	"amd64": "x86_64-linux-gnu",
	"arm64": "aarch64-linux-gnu",
	"arm":   "arm-linux-gnueabihf",
}

// Options say what to assemble.
type Options struct {
	// Ketch is the ketch binary built for Arch.
	Ketch string
	// Arch is the GOARCH of the image: amd64, arm64 or arm.
	Arch string
	// Sysroot is a Debian root file system of Arch holding the iptables and mount packages and
	// their libraries: "/" on a Debian machine of that architecture, else the packages unpacked
	// by scripts/image-sysroot.sh.
	Sysroot string
	// CACerts is the CA bundle to ship (Debian's ca-certificates is the same for every
	// architecture): /etc/ssl/certs/ca-certificates.crt below Sysroot when empty.
	CACerts string
	// Out is the build context directory; its rootfs/ is replaced.
	Out string
}

// programs are the executables copied from the sysroot: their path in Debian's packages, and in
// the image (which has no /bin -> /usr/bin link: /bin holds ketch alone).
var programs = [][2]string{
	{"/usr/sbin/xtables-nft-multi", "/usr/sbin/xtables-nft-multi"},
	{"/bin/mount", "/usr/bin/mount"},
	{"/bin/umount", "/usr/bin/umount"},
}

// xtablesModules are the iptables extensions the node's own components use, and those a
// Service, NetworkPolicy or hostPort setting can make them use: kube-proxy (comment, conntrack,
// mark, MARK, addrtype, statistic, recent for session affinity, nfacct for its drop counters,
// multiport, REJECT, DNAT, MASQUERADE), the kubelet (mark, comment, conntrack), flannel
// (comment, MASQUERADE), the CNI bridge and portmap plugins (comment, multiport, addrtype, DNAT,
// MARK, MASQUERADE), and the protocol matches. Network policy engines run in pods with iptables
// of their own. Debian ships 122 modules; on arm64, whose libraries are padded to 64 KiB pages,
// all of them would cost 8.3 MB, against the image's budget of 10 MB over the binary.
var xtablesModules = []string{
	"libxt_standard", "libxt_comment", "libxt_conntrack", "libxt_state", "libxt_mark", "libxt_MARK",
	"libxt_connmark", "libxt_CONNMARK", "libxt_addrtype", "libxt_statistic", "libxt_recent",
	"libxt_nfacct", "libxt_multiport", "libxt_iprange", "libxt_limit", "libxt_length", "libxt_pkttype",
	"libxt_physdev", "libxt_set", "libxt_SET", "libxt_owner", "libxt_tcp", "libxt_udp", "libxt_sctp",
	"libipt_icmp", "libip6t_icmp6", "libipt_REJECT", "libip6t_REJECT", "libxt_DNAT", "libxt_SNAT",
	"libxt_NAT", "libxt_MASQUERADE", "libxt_REDIRECT", "libxt_CT", "libxt_NOTRACK", "libxt_tcpmss",
	"libxt_TCPMSS", "libxt_LOG", "libxt_NFLOG", "libxt_hashlimit", "libxt_connlimit",
}

// links are the names the programs are run by, relative to the image's root.
var links = map[string]string{
	"usr/sbin/iptables":          "xtables-nft-multi",
	"usr/sbin/iptables-save":     "xtables-nft-multi",
	"usr/sbin/iptables-restore":  "xtables-nft-multi",
	"usr/sbin/ip6tables":         "xtables-nft-multi",
	"usr/sbin/ip6tables-save":    "xtables-nft-multi",
	"usr/sbin/ip6tables-restore": "xtables-nft-multi",
	"usr/sbin/iptables-nft":      "xtables-nft-multi",
	// ketch's own commands by the names users type in `docker exec`.
	"bin/kubectl": "ketch",
	"bin/ctr":     "ketch",
	"bin/crictl":  "ketch",
	// Docker mounts a tmpfs on /run; some programs still look in /var/run.
	"var/run": "../run",
}

// files are small files the image needs, by their path in the image.
var files = map[string]string{
	// root runs ketch; nobody is for the occasional program that drops privileges.
	"etc/passwd":        "root:x:0:0:root:/root:/bin/ketch\nnobody:x:65534:65534:nobody:/nonexistent:/bin/ketch\n",
	"etc/group":         "root:x:0:\nnogroup:x:65534:\n",
	"etc/nsswitch.conf": "hosts: files dns\n",
	// The kubelet reports it as the node's OS image.
	"etc/os-release": "NAME=ketch\nID=ketch\nPRETTY_NAME=\"ketch node image\"\n",
}

// Assemble writes o.Out/rootfs.
func Assemble(o Options) error {
	triplet, ok := Triplets[o.Arch]
	if !ok {
		return fmt.Errorf("no node image for architecture %q (one of amd64, arm64, arm)", o.Arch)
	}
	if err := checkMachine(o.Ketch, o.Arch); err != nil {
		return err
	}
	root := filepath.Join(o.Out, "rootfs")
	if err := os.RemoveAll(root); err != nil {
		return err
	}
	a := &assembler{sysroot: o.Sysroot, root: root, libDirs: []string{
		"/lib/" + triplet, "/usr/lib/" + triplet, "/lib", "/usr/lib",
	}, imageLibDir: "/usr/lib/" + triplet, copied: map[string]bool{}, interps: map[string]bool{}}
	for _, d := range []string{"bin", "usr/sbin", "usr/bin", "etc/ssl/certs", "var/lib/ketch", "run", "root"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			return err
		}
	}
	// Go programs and the kubelet write temporary files; /tmp must exist, and be shared.
	if err := os.Mkdir(filepath.Join(root, "tmp"), 0o755); err != nil {
		return err
	}
	if err := os.Chmod(filepath.Join(root, "tmp"), 0o1777|os.ModeSticky); err != nil {
		return err
	}
	if err := copyFile(o.Ketch, filepath.Join(root, "bin/ketch"), 0o755); err != nil {
		return err
	}
	for _, p := range programs {
		if err := a.elf(p[0], p[1], o.Arch); err != nil {
			return err
		}
	}
	// iptables loads one module per match and target from its xtables directory.
	for _, m := range xtablesModules {
		p := filepath.Join("/usr/lib", triplet, "xtables", m+".so")
		if err := a.elf(p, p, o.Arch); err != nil {
			return fmt.Errorf("the iptables extension %s: %w", m, err)
		}
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(root, name)); err != nil {
			return err
		}
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(root, name), []byte(content), 0o644); err != nil {
			return err
		}
	}
	ca := o.CACerts
	if ca == "" {
		ca = filepath.Join(o.Sysroot, "etc/ssl/certs/ca-certificates.crt")
	}
	if err := copyFile(ca, filepath.Join(root, "etc/ssl/certs/ca-certificates.crt"), 0o644); err != nil {
		return fmt.Errorf("CA certificates: %w (Debian: apt-get install ca-certificates)", err)
	}
	return nil
}

// checkMachine makes sure the ketch binary is for arch: an image of one architecture with a
// binary of another would only fail when run.
func checkMachine(path, arch string) error {
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("the ketch binary: %w (make build first)", err)
	}
	defer f.Close()
	if want := machines[arch]; f.Machine != want {
		return fmt.Errorf("%s is built for %s, not %s: build it with make build ARCH=%s", path, f.Machine, arch, arch)
	}
	return nil
}

var machines = map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64, "arm": elf.EM_ARM}

type assembler struct {
	sysroot, root string
	// libDirs are where the dynamic loader of a Debian system looks, in its order.
	libDirs []string
	// imageLibDir is where the libraries go in the image: one of the loader's own directories.
	imageLibDir string
	copied      map[string]bool
	interps     map[string]bool // base names of the program interpreters copied
}

// elf copies the ELF file at src (a path below the sysroot) to dst in the image, then its
// program interpreter and every library it needs, recursively.
func (a *assembler) elf(src, dst, arch string) error {
	if a.copied[dst] {
		return nil
	}
	a.copied[dst] = true
	from, err := a.resolve(src)
	if err != nil {
		return fmt.Errorf("%w (is its package of %s unpacked in %s?)", err, arch, a.sysroot)
	}
	f, err := elf.Open(from)
	if err != nil {
		return fmt.Errorf("%s: %w (is its package of %s unpacked in %s?)", src, err, arch, a.sysroot)
	}
	defer f.Close()
	if f.Machine != machines[arch] {
		return fmt.Errorf("%s is for %s, not %s", from, f.Machine, arch)
	}
	if err := copyFile(from, filepath.Join(a.root, dst), 0o755); err != nil {
		return err
	}
	for _, p := range f.Progs {
		if p.Type != elf.PT_INTERP {
			continue
		}
		b, err := io.ReadAll(p.Open())
		if err != nil {
			return fmt.Errorf("%s: reading its interpreter: %w", from, err)
		}
		// The loader must be at exactly the path the programs name.
		interp := strings.TrimRight(string(b), "\x00")
		a.interps[filepath.Base(interp)] = true
		if err := a.elf(interp, interp, arch); err != nil {
			return err
		}
	}
	needed, err := f.ImportedLibraries()
	if err != nil {
		return fmt.Errorf("%s: reading the libraries it needs: %w", from, err)
	}
	for _, lib := range needed {
		if a.interps[lib] {
			continue // libc names its loader; the loader is already there, at its own path
		}
		src, err := a.find(lib)
		if err != nil {
			return fmt.Errorf("%s needs %s: %w", from, lib, err)
		}
		if err := a.elf(src, filepath.Join(a.imageLibDir, lib), arch); err != nil {
			return err
		}
	}
	return nil
}

func (a *assembler) find(lib string) (string, error) {
	for _, d := range a.libDirs {
		p := filepath.Join(d, lib)
		if host, err := a.resolve(p); err == nil {
			if _, err := os.Stat(host); err == nil {
				return p, nil
			}
		}
	}
	return "", fmt.Errorf("not found in %s below %s", strings.Join(a.libDirs, ", "), a.sysroot)
}

// resolve is the path on this machine of p, a path inside the sysroot, following symbolic links
// inside the sysroot: an unpacked package's absolute links point into the sysroot, not at this
// machine's files.
func (a *assembler) resolve(p string) (string, error) {
	rest := strings.Split(strings.Trim(filepath.Clean(p), "/"), "/")
	cur := "/"
	for hops := 0; len(rest) > 0; {
		next := filepath.Join(cur, rest[0])
		fi, err := os.Lstat(filepath.Join(a.sysroot, next))
		if err != nil {
			return "", fmt.Errorf("%s: %w", p, err)
		}
		if fi.Mode()&os.ModeSymlink == 0 {
			cur, rest = next, rest[1:]
			continue
		}
		if hops++; hops > 40 {
			return "", fmt.Errorf("%s: too many levels of symbolic links", p)
		}
		target, err := os.Readlink(filepath.Join(a.sysroot, next))
		if err != nil {
			return "", err
		}
		if !filepath.IsAbs(target) {
			target = filepath.Join(cur, target)
		}
		rest = append(strings.Split(strings.Trim(filepath.Clean(target), "/"), "/"), rest[1:]...)
		cur = "/"
	}
	return filepath.Join(a.sysroot, cur), nil
}

// copyFile copies src's content (following links) to dst, creating dst's directory.
func copyFile(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copying %s: %w", src, err)
	}
	return out.Close()
}

// Size is the total size of the regular files below dir.
func Size(dir string) (int64, error) {
	var total int64
	err := filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			info, err := d.Info()
			if err != nil {
				return err
			}
			total += info.Size()
		}
		return nil
	})
	return total, err
}

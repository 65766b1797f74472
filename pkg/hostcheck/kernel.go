package hostcheck

import (
	"bufio"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
)

// system is what the fixes depend on: the distribution, the board, the init system, the
// kernel's command line and config, and whether modules can be loaded.
type system struct {
	release string // uname -r
	osName  string
	id      string
	idLike  []string
	model   string // the device tree's model, such as "Raspberry Pi 4 Model B Rev 1.5"
	pi      bool
	alpine  bool
	systemd bool // systemd is PID 1
	cmdline []string
	// config is the running kernel's configuration (CONFIG_X -> y, m, a value, or n for "is
	// not set"), nil when no config file was found; configPath is where it was read.
	config     map[string]string
	configPath string
	modprobe   string
	// canLoad: modules can be loaded (modprobe exists and loading is not disabled).
	canLoad bool
	// noLoad says why modules cannot be loaded.
	noLoad string
}

func (p *prober) system() *system {
	s := &system{release: p.readTrim("proc/sys/kernel/osrelease")}
	osr := p.osRelease()
	s.id, s.idLike = osr["ID"], strings.Fields(osr["ID_LIKE"])
	s.osName = osr["PRETTY_NAME"]
	if s.osName == "" {
		s.osName = osr["NAME"]
	}
	s.alpine = s.id == "alpine" || p.exists("etc/alpine-release")
	for _, f := range []string{"proc/device-tree/model", "sys/firmware/devicetree/base/model"} {
		if m := strings.Trim(p.readTrim(f), "\x00 \n"); m != "" {
			s.model = m
			break
		}
	}
	s.pi = strings.Contains(s.model, "Raspberry Pi")
	s.systemd = p.systemdPID1()
	s.cmdline = strings.Fields(p.readTrim("proc/cmdline"))
	s.modprobe = p.modprobe()
	switch {
	case s.modprobe == "":
		s.noLoad = "no modprobe"
	case p.readTrim("proc/sys/kernel/modules_disabled") == "1":
		s.noLoad = "kernel.modules_disabled is 1"
	case slices.Contains(s.cmdline, "nomodule"):
		s.noLoad = "nomodule is on the kernel command line"
	default:
		s.canLoad = true
	}
	s.config, s.configPath = p.kernelConfig(s.release)
	return s
}

func (s *system) info() HostInfo {
	return HostInfo{Kernel: s.release, OS: s.osName, Model: s.model}
}

func (p *prober) osRelease() map[string]string {
	values := map[string]string{}
	b, err := os.ReadFile(p.path("etc/os-release"))
	if err != nil {
		b, _ = os.ReadFile(p.path("usr/lib/os-release"))
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), "="); ok {
			values[k] = strings.Trim(v, `"'`)
		}
	}
	return values
}

// like says whether the distribution is id or derives from it.
func (s *system) like(ids ...string) bool {
	for _, id := range ids {
		if s.id == id || slices.Contains(s.idLike, id) {
			return true
		}
	}
	return false
}

// install is the command that installs a package on this distribution.
func (s *system) install(pkg string) string {
	switch {
	case s.alpine:
		return "apk add " + pkg
	case s.like("debian", "ubuntu"):
		return "apt-get install " + pkg
	case s.like("fedora", "rhel", "centos"):
		return "dnf install " + pkg
	case s.like("suse", "opensuse"):
		return "zypper install " + pkg
	case s.like("arch"):
		return "pacman -S " + pkg
	}
	return "install the " + pkg + " package"
}

// kernelConfig reads the running kernel's configuration from where distributions keep it.
func (p *prober) kernelConfig(release string) (map[string]string, string) {
	if f, err := os.Open(p.path("proc/config.gz")); err == nil {
		defer f.Close()
		if z, err := gzip.NewReader(f); err == nil {
			if cfg, err := parseKernelConfig(z); err == nil {
				return cfg, "/proc/config.gz"
			}
		}
	}
	if release == "" {
		return nil, ""
	}
	candidates := []string{
		"/boot/config-" + release,
		"/lib/modules/" + release + "/config",
		"/usr/lib/modules/" + release + "/config",
		"/usr/src/linux-" + release + "/.config",
	}
	// Alpine names it after the flavour: /boot/config-lts for 6.6.32-0-lts.
	if i := strings.LastIndex(release, "-"); i >= 0 {
		candidates = append(candidates, "/boot/config-"+release[i+1:])
	}
	for _, c := range candidates {
		f, err := os.Open(p.path(c))
		if err != nil {
			continue
		}
		cfg, err := parseKernelConfig(f)
		f.Close()
		if err == nil {
			return cfg, c
		}
	}
	return nil, ""
}

func parseKernelConfig(r io.Reader) (map[string]string, error) {
	cfg := map[string]string{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if name, ok := strings.CutPrefix(line, "# "); ok {
			if name, ok := strings.CutSuffix(name, " is not set"); ok && strings.HasPrefix(name, "CONFIG_") {
				cfg[name] = "n"
			}
			continue
		}
		if k, v, ok := strings.Cut(line, "="); ok && strings.HasPrefix(k, "CONFIG_") {
			cfg[k] = strings.Trim(v, `"`)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(cfg) == 0 {
		return nil, fmt.Errorf("no CONFIG_ lines")
	}
	return cfg, nil
}

// option is the best value among the options that each provide a feature: "y", "m", "n"
// (not set, or absent from the config), or "" when there is no config.
func (s *system) option(options ...string) (value, name string) {
	if s.config == nil || len(options) == 0 {
		return "", ""
	}
	value, name = "n", options[0]
	for _, o := range options {
		switch s.config[o] {
		case "y":
			return "y", o
		case "m":
			value, name = "m", o
		}
	}
	return value, name
}

// kernelOptionFix is the fix for a kernel built without options.
func kernelOptionFix(options ...string) string {
	return fmt.Sprintf("use a kernel built with %s=y (or =m): the distribution's standard kernel usually is; a custom or vendor kernel needs rebuilding", strings.Join(options, "=y, "))
}

// moduleFix loads a module now and at every boot, on this host.
func (s *system) moduleFix(module, option string) string {
	if !s.canLoad {
		return fmt.Sprintf("this host cannot load modules (%s): use a kernel built with %s=y", s.noLoad, option)
	}
	file := "/etc/modules-load.d/ketch.conf"
	if s.alpine {
		file = "/etc/modules"
	}
	return fmt.Sprintf("modprobe %s\nto load it at every boot: echo %s >> %s", module, module, file)
}

// sysctlFix sets a sysctl now and at every boot.
func sysctlFix(key, value string) string {
	return fmt.Sprintf("sysctl -w %s=%s\nto keep it across reboots: echo '%s = %s' >> /etc/sysctl.d/90-ketch.conf", key, value, key, value)
}

// bootParamFix adds parameters to the kernel command line (and removes others the running
// kernel has) in this host's boot configuration.
func (c *checker) bootParamFix(add, remove []string) string {
	params := strings.Join(add, " ")
	var lines []string
	switch {
	case c.sys.pi:
		file := "/boot/firmware/cmdline.txt"
		switch {
		case c.p.exists(file):
		case c.p.exists("boot/cmdline.txt"):
			file = "/boot/cmdline.txt"
		default:
			file = "/boot/firmware/cmdline.txt (older Raspberry Pi OS: /boot/cmdline.txt)"
		}
		lines = append(lines, fmt.Sprintf("add %s to the end of the single line in %s", params, file))
	case c.p.exists("etc/update-extlinux.conf"):
		lines = append(lines, fmt.Sprintf("add %s to default_kernel_opts in /etc/update-extlinux.conf, then run update-extlinux", params))
	case c.p.exists("etc/default/grub"):
		lines = append(lines, fmt.Sprintf("add %s to GRUB_CMDLINE_LINUX in /etc/default/grub, then run update-grub (grub2-mkconfig -o /boot/grub2/grub.cfg on Fedora and RHEL)", params))
	default:
		lines = append(lines, fmt.Sprintf("add %s to the kernel command line in the boot loader's configuration", params))
	}
	for _, r := range remove {
		if slices.Contains(c.sys.cmdline, r) {
			lines = append(lines, "and remove "+r+" from it")
		}
	}
	return strings.Join(append(lines, "then reboot"), "\n")
}

// feature is a kernel feature a node uses, found by a probe of the running kernel and by the
// kernel config.
type feature struct {
	group, name string
	what        string   // a noun phrase: "the overlay filesystem"
	options     []string // kernel options that provide it
	module      string   // its module, "" if it is never one
	// probe says whether the running kernel has it now; probeDesc says where it looked.
	probe     func(p *prober) bool
	probeDesc string
	// reliable: a negative probe means absent when no module can be loaded (a probe through
	// /proc/kallsyms is reliable only if that could be read).
	reliable func(p *prober) bool
	// atStart: Check loads the module when it is missing (the kernel would not, or not for ketch).
	atStart bool
	// fatal: a node cannot run without it.
	fatal bool
	why   string // what fails without it
}

// feature evaluates one kernel feature: present now, built in, a module the kernel (or ketch)
// loads, or missing.
func (c *checker) feature(f feature) {
	c.group = f.group
	missing := StatusWarning
	if f.fatal {
		missing = StatusFatal
	}
	value, option := c.sys.option(f.options...)
	if option == "" && len(f.options) > 0 {
		option = f.options[0]
	}
	if f.probe != nil && f.probe(c.p) {
		how := ""
		switch value {
		case "y":
			how = " (built in)"
		case "m":
			how = " (module " + f.module + ", loaded)"
		}
		c.ok(f.name, f.what+": available"+how)
		return
	}
	add := func(status Status, detail, fix string) {
		c.add(f.name, status, f.what+": "+detail+"; "+f.why, fix)
	}
	switch value {
	case "y":
		c.ok(f.name, f.what+": built in ("+option+"=y)")
	case "m":
		switch {
		case !c.sys.canLoad:
			add(missing, fmt.Sprintf("a module (%s=m) that is not loaded, and this host cannot load modules (%s)", option, c.sys.noLoad), c.sys.moduleFix(f.module, option))
		case f.atStart && c.o.loaded:
			add(missing, "module "+f.module+" did not load", c.sys.moduleFix(f.module, option))
		case f.atStart:
			add(StatusWarning, "module "+f.module+" is not loaded; ketch server and ketch agent load it at start", c.sys.moduleFix(f.module, option))
		default:
			c.ok(f.name, f.what+": module "+f.module+" ("+option+"=m), which the kernel loads on first use")
		}
	case "n":
		add(missing, "the kernel is built without it ("+option+" is not set)", kernelOptionFix(option))
	default:
		if f.probe == nil {
			return // only a kernel config could tell
		}
		sure := !c.sys.canLoad || (f.atStart && c.o.loaded)
		if f.reliable != nil && !f.reliable(c.p) {
			sure = false
		}
		switch {
		case sure:
			why := "no module can be loaded (" + c.sys.noLoad + ")"
			if c.sys.canLoad {
				why = "modprobe " + f.module + " did not load it"
			}
			add(missing, f.probeDesc+", and "+why, c.sys.moduleFix(f.module, option))
		case f.atStart:
			add(StatusWarning, f.probeDesc+"; ketch server and ketch agent load module "+f.module+" at start", c.sys.moduleFix(f.module, option))
		default:
			add(StatusWarning, f.probeDesc+", and there is no kernel config to tell whether it is a module the kernel loads on first use", c.sys.moduleFix(f.module, option))
		}
	}
}

// kallsymsReadable: /proc/kallsyms could be read (so a symbol not in it is not in the kernel).
func (p *prober) kallsymsReadable() bool {
	p.hasSymbol("")
	return p.kallsymsRead
}

func (p *prober) listed(file, name string) bool {
	b, err := os.ReadFile(p.path(file))
	if err != nil {
		return false
	}
	return slices.Contains(strings.Fields(string(b)), name)
}

func (c *checker) checkKernel() {
	c.group = "kernel"
	if c.sys.config != nil {
		c.ok("kernel.config", "read from "+c.sys.configPath)
	} else {
		where := "/proc/config.gz"
		if c.sys.release != "" {
			where += ", /boot/config-" + c.sys.release
		}
		fix := "modprobe configs (it provides /proc/config.gz), or install the kernel's config file as /boot/config-$(uname -r)"
		if !c.sys.canLoad {
			fix = "install the kernel's config file as /boot/config-$(uname -r), or use a kernel built with CONFIG_IKCONFIG_PROC=y"
		}
		c.add("kernel.config", StatusWarning, "no kernel config found ("+where+"): the features below are probed on the running kernel, and a module that is not loaded cannot be told from a missing feature", fix)
	}
	c.feature(feature{
		group: "kernel", name: "kernel.overlay", what: "the overlay filesystem",
		options: []string{"CONFIG_OVERLAY_FS"}, module: "overlay",
		probe: (*prober).hasOverlay, probeDesc: "not in /proc/filesystems",
		atStart: true, fatal: true, why: "containerd keeps images and containers on it",
	})
	c.checkNamespaces()
	c.checkSeccomp()
	for _, o := range []struct{ option, why string }{
		{"CONFIG_CGROUP_BPF", "runc controls containers' device access with BPF programs on cgroup v2"},
		{"CONFIG_CGROUP_DEVICE", "runc controls containers' device access with the devices controller on cgroup v1"},
		{"CONFIG_CGROUP_FREEZER", "runc freezes containers to pause and kill them"},
		{"CONFIG_FAIR_GROUP_SCHED", "pods' CPU requests are not turned into CPU weights"},
		{"CONFIG_CFS_BANDWIDTH", "pods' CPU limits are not enforced"},
		{"CONFIG_POSIX_MQUEUE", "runc mounts /dev/mqueue in every container"},
		{"CONFIG_KEYS", "containers cannot get their own session keyring"},
	} {
		c.configOption("kernel", o.option, o.why)
	}
}

// configOption reports an option only the kernel config can tell about.
func (c *checker) configOption(group, option, why string) {
	c.group = group
	name := "kernel." + option
	if group == "network" {
		name = "net." + option
	}
	switch value, _ := c.sys.option(option); value {
	case "":
	case "y", "m":
		c.ok(name, option+"="+value)
	default:
		c.add(name, StatusWarning, option+" is not set: "+why, kernelOptionFix(option))
	}
}

func (c *checker) checkNamespaces() {
	var missing, optional, options, optionalOptions, whys []string
	for _, ns := range []struct {
		name, option string
		needed       bool
		why          string
	}{
		{"mnt", "CONFIG_NAMESPACES", true, ""}, {"uts", "CONFIG_UTS_NS", true, ""}, {"ipc", "CONFIG_IPC_NS", true, ""},
		{"pid", "CONFIG_PID_NS", true, ""}, {"net", "CONFIG_NET_NS", true, ""},
		{"cgroup", "CONFIG_CGROUPS", false, "containers see the host's cgroup paths"},
		{"user", "CONFIG_USER_NS", false, "pods with hostUsers: false cannot run"},
	} {
		if c.p.exists("proc/self/ns", ns.name) {
			continue
		}
		if ns.needed {
			missing, options = append(missing, ns.name), append(options, ns.option)
		} else {
			optional, optionalOptions, whys = append(optional, ns.name), append(optionalOptions, ns.option), append(whys, ns.why)
		}
	}
	switch {
	case len(missing) > 0:
		c.add("kernel.namespaces", StatusFatal, "the "+strings.Join(missing, ", ")+" namespaces (not in /proc/self/ns): every container runs in its own", kernelOptionFix(options...))
	case len(optional) > 0:
		c.add("kernel.namespaces", StatusWarning, "the "+strings.Join(optional, ", ")+" namespaces are missing (not in /proc/self/ns): "+strings.Join(whys, ", and "), kernelOptionFix(optionalOptions...))
	default:
		c.ok("kernel.namespaces", "mnt, uts, ipc, pid, net, cgroup and user namespaces")
	}
}

func (c *checker) checkSeccomp() {
	status := c.p.readTrim("proc/self/status")
	hasSeccomp := strings.Contains(status, "\nSeccomp:") || strings.HasPrefix(status, "Seccomp:")
	filter := c.p.exists("proc/sys/kernel/seccomp/actions_avail")
	switch {
	case !hasSeccomp:
		c.add("kernel.seccomp", StatusWarning, "seccomp is missing (no Seccomp line in /proc/self/status): pods with the RuntimeDefault seccomp profile fail to start", kernelOptionFix("CONFIG_SECCOMP", "CONFIG_SECCOMP_FILTER"))
	case !filter:
		c.add("kernel.seccomp", StatusWarning, "seccomp filters are missing (no /proc/sys/kernel/seccomp/actions_avail): pods with the RuntimeDefault seccomp profile fail to start", kernelOptionFix("CONFIG_SECCOMP_FILTER"))
	default:
		c.ok("kernel.seccomp", "seccomp with filters")
	}
}

func (c *checker) checkNetwork() {
	c.group = "network"
	c.checkIptables()
	kallsymsOK := (*prober).kallsymsReadable
	c.feature(feature{
		group: "network", name: "net.bridge", what: "Linux bridge support",
		options: []string{"CONFIG_BRIDGE"}, module: "bridge",
		probe: (*prober).hasBridge, probeDesc: "no /sys/module/bridge and no br_dev_xmit in /proc/kallsyms",
		reliable: kallsymsOK, atStart: true, fatal: true, why: "the pods of a node are connected through a bridge",
	})
	c.feature(feature{
		group: "network", name: "net.br_netfilter", what: "br_netfilter",
		options: []string{"CONFIG_BRIDGE_NETFILTER"}, module: "br_netfilter",
		probe:     func(p *prober) bool { return p.exists("proc/sys", nfCall) },
		probeDesc: "no /proc/sys/" + nfCall, atStart: true,
		why: "traffic between pods on the same bridge bypasses iptables, so service traffic between pods of one node may not work",
	})
	c.feature(feature{
		group: "network", name: "net.veth", what: "veth network devices",
		options: []string{"CONFIG_VETH"}, module: "veth",
		probe:     func(p *prober) bool { return p.exists("sys/module/veth") || p.hasSymbol("veth_xmit") },
		probeDesc: "no /sys/module/veth and no veth_xmit in /proc/kallsyms", reliable: kallsymsOK,
		fatal: true, why: "every pod is connected to the node's bridge by a veth pair",
	})
	c.feature(feature{
		group: "network", name: "net.vxlan", what: "VXLAN",
		options: []string{"CONFIG_VXLAN"}, module: "vxlan",
		probe:     func(p *prober) bool { return p.exists("sys/module/vxlan") || p.hasSymbol("vxlan_xmit") },
		probeDesc: "no /sys/module/vxlan and no vxlan_xmit in /proc/kallsyms", reliable: kallsymsOK,
		why: "flannel's vxlan backend (the default) carries pod traffic between nodes over it; --flannel-backend host-gw does without",
	})
	switch c.backend {
	case "nf_tables":
		c.feature(feature{
			group: "network", name: "net.nf_tables", what: "nf_tables",
			options: []string{"CONFIG_NF_TABLES"}, module: "nf_tables",
			probe: func(p *prober) bool {
				return p.exists("sys/module/nf_tables") || p.hasSymbol("nft_register_chain_type")
			},
			probeDesc: "no /sys/module/nf_tables and no nft_register_chain_type in /proc/kallsyms", reliable: kallsymsOK,
			fatal: true, why: "the iptables on PATH uses the nf_tables backend, so kube-proxy and flannel cannot set up any rule",
		})
		c.configOption("network", "CONFIG_NFT_COMPAT", "the nf_tables backend of iptables needs it for the matches and targets kube-proxy uses")
	case "legacy":
		c.feature(feature{
			group: "network", name: "net.ip_tables", what: "ip_tables",
			options: []string{"CONFIG_IP_NF_IPTABLES"}, module: "ip_tables",
			probe: func(p *prober) bool {
				return p.exists("proc/net/ip_tables_names") || p.exists("sys/module/ip_tables") || p.hasSymbol("ipt_register_table")
			},
			probeDesc: "no /proc/net/ip_tables_names, /sys/module/ip_tables or ipt_register_table in /proc/kallsyms", reliable: kallsymsOK,
			fatal: true, why: "the iptables on PATH uses the legacy backend, so kube-proxy and flannel cannot set up any rule",
		})
	}
	c.feature(feature{
		group: "network", name: "net.nf_conntrack", what: "connection tracking (nf_conntrack)",
		options: []string{"CONFIG_NF_CONNTRACK"}, module: "nf_conntrack",
		probe: func(p *prober) bool {
			return p.exists("sys/module/nf_conntrack") || p.exists("proc/sys/net/netfilter/nf_conntrack_max")
		},
		probeDesc: "no /sys/module/nf_conntrack",
		why:       "services and pod traffic leaving the node are translated (NAT) with it",
	})
	// The iptables matches and targets of kube-proxy's and flannel's rules. Loaded ones (built-in
	// ones too) are listed in /proc/net/ip_tables_{matches,targets}; others load on first use.
	for _, x := range []struct {
		match, target string
		options       []string
		module        string
	}{
		{match: "comment", options: []string{"CONFIG_NETFILTER_XT_MATCH_COMMENT"}, module: "xt_comment"},
		{match: "conntrack", options: []string{"CONFIG_NETFILTER_XT_MATCH_CONNTRACK"}, module: "xt_conntrack"},
		{match: "addrtype", options: []string{"CONFIG_NETFILTER_XT_MATCH_ADDRTYPE"}, module: "xt_addrtype"},
		{match: "multiport", options: []string{"CONFIG_NETFILTER_XT_MATCH_MULTIPORT"}, module: "xt_multiport"},
		{match: "statistic", options: []string{"CONFIG_NETFILTER_XT_MATCH_STATISTIC"}, module: "xt_statistic"},
		{match: "mark", options: []string{"CONFIG_NETFILTER_XT_MARK", "CONFIG_NETFILTER_XT_MATCH_MARK"}, module: "xt_mark"},
		{target: "MASQUERADE", options: []string{"CONFIG_NETFILTER_XT_TARGET_MASQUERADE", "CONFIG_IP_NF_TARGET_MASQUERADE"}, module: "xt_MASQUERADE"},
		{target: "DNAT", options: []string{"CONFIG_NETFILTER_XT_NAT", "CONFIG_IP_NF_NAT"}, module: "xt_nat"},
		{target: "REJECT", options: []string{"CONFIG_IP_NF_TARGET_REJECT"}, module: "ipt_REJECT"},
	} {
		file, name, kind := "proc/net/ip_tables_matches", x.match, "match"
		if x.target != "" {
			file, name, kind = "proc/net/ip_tables_targets", x.target, "target"
		}
		c.feature(feature{
			group: "network", name: "net.xt_" + strings.ToLower(name), what: "the iptables " + name + " " + kind,
			options: x.options, module: x.module,
			probe:     func(p *prober) bool { return p.listed(file, name) },
			probeDesc: "not in /" + file,
			why:       "kube-proxy's and flannel's rules use it",
		})
	}
	c.checkSysctl("net.ipv4.ip_forward", "pods' and services' traffic is forwarded between interfaces")
	if c.p.exists("proc/sys", nfCall) {
		c.checkSysctl("net.bridge.bridge-nf-call-iptables", "iptables sees the traffic between pods on one bridge (services between pods of a node)")
	}
}

func (c *checker) checkIptables() {
	path := c.p.iptables()
	if path == "" {
		c.add("net.iptables", StatusFatal, "an iptables binary on PATH (iptables or iptables-nft): none found; kube-proxy and flannel set up the node's packet filtering with it", c.sys.install("iptables"))
		return
	}
	output := c.p.output
	if output == nil {
		output = commandOutput
	}
	out, err := output(path, "--version")
	if err != nil {
		c.add("net.iptables", StatusWarning, fmt.Sprintf("%s does not run: %v", path, err), "reinstall it: "+c.sys.install("iptables"))
		return
	}
	version := strings.TrimSpace(strings.SplitN(out, "\n", 2)[0])
	switch {
	case strings.Contains(version, "nf_tables"):
		c.backend = "nf_tables"
	default:
		// iptables before 1.8 had only the legacy backend and did not say so.
		c.backend = "legacy"
	}
	c.ok("net.iptables", fmt.Sprintf("%s at %s (backend %s)", version, path, c.backend))
}

// checkSysctl: a boolean sysctl ketch turns on at start.
func (c *checker) checkSysctl(key, why string) {
	name := "sysctl." + key[strings.LastIndex(key, ".")+1:]
	switch v := c.p.readTrim("proc/sys", strings.ReplaceAll(key, ".", "/")); {
	case v == "1":
		c.ok(name, key+" is 1")
	case v == "":
		c.add(name, StatusWarning, key+" cannot be read: "+why+" only when it is 1", sysctlFix(key, "1"))
	case c.o.node:
		c.add(name, StatusWarning, key+" is "+v+" and could not be set to 1: "+why+" only when it is 1", sysctlFix(key, "1"))
	default:
		c.add(name, StatusWarning, key+" is "+v+": ketch server and ketch agent set it to 1 at start ("+why+" only then)", sysctlFix(key, "1"))
	}
}

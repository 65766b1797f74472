package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ketch-k8s/ketch/internal/dockertest"
	"github.com/ketch-k8s/ketch/internal/testutil"
)

// initSystem is a kind of host install.sh supports, as a Debian root file system with that init
// system as PID 1.
type initSystem struct {
	name   string
	rootfs dockertest.Rootfs
	init   []string
	// shell runs install.sh: dash (Debian's sh) beside systemd; busybox ash, as on Alpine, is
	// every script's /bin/sh on the OpenRC host.
	shell string
	// booted succeeds once the init system has started its services.
	booted string
}

// The packages are what a small host of the kind has: iptables and iproute2 (a node needs
// them), procps, and for the tests' own use busybox (httpd serves downloads; on the OpenRC host
// it is /bin/sh), curl or wget for install.sh's download, logrotate where the OpenRC script
// installs its rotation.
var (
	systemdHost = initSystem{
		name: "systemd",
		rootfs: dockertest.Rootfs{Name: "systemd",
			Packages: []string{"systemd", "systemd-sysv", "iptables", "iproute2", "procps", "busybox", "curl"}},
		init:   []string{"/sbin/init"},
		shell:  "sh",
		booted: `s=$(systemctl is-system-running); [ "$s" = running ] || [ "$s" = degraded ]`,
	}
	openrcHost = initSystem{
		name: "openrc",
		rootfs: dockertest.Rootfs{Name: "openrc",
			Packages: []string{"openrc", "iptables", "iproute2", "procps", "busybox", "logrotate"},
			// A container's network is up before init: tell OpenRC that nothing has to provide
			// "net" (rc.conf's documented way for containers). And busybox is /bin/sh, as on
			// Alpine, with its wget applet for downloads.
			Setup: `echo 'rc_provide="loopback net"' >>etc/rc.conf
ln -sf busybox bin/sh
ln -s /bin/busybox usr/bin/wget`},
		init:   []string{"/sbin/openrc-init"},
		shell:  "busybox sh",
		booted: `rc-status --runlevel | grep -qx default`,
	}
)

// TestInstall installs ketch with install.sh on hosts with systemd and with OpenRC as PID 1
// (containers of a private Docker engine): a server, then an agent joining it from a second host;
// the service reports ready once the node is Ready, the links work, a pod keeps running across a
// restart and an upgrade, and the uninstall scripts leave each host as it was.
func TestInstall(t *testing.T) {
	env := newInstallEnv(t, "kt-install", "10.211.0.0/24")
	for _, host := range []initSystem{systemdHost, openrcHost} {
		t.Run(host.name, func(t *testing.T) { testInstallOn(t, env, host) })
	}
}

// installEnv is what the install tests share: the ketch binary, and a private Docker engine with
// a network for their hosts.
type installEnv struct {
	e       *dockertest.Engine
	ketch   string
	network string
}

func newInstallEnv(t *testing.T, network, subnet string) *installEnv {
	testutil.NeedsRoot(t, "runs hosts with init systems in Docker")
	testutil.LockHost(t)
	env := &installEnv{ketch: testutil.KetchBinary(t), e: dockertest.Start(t), network: network}
	env.e.Network(t, network, subnet)
	return env
}

// hostVolumes are the mounts of an install host: install.sh and the templates as in a checkout,
// the binary, and a data dir on the machine's own file system (containerd's overlayfs snapshots
// cannot live on the container's overlay root).
func hostVolumes(t *testing.T, ketch string) []string {
	repo := testutil.RepoRoot()
	dataDir, err := os.MkdirTemp("/var/tmp", "kt-install-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dataDir) })
	return []string{
		filepath.Join(repo, "install.sh") + ":/src/install.sh:ro",
		filepath.Join(repo, "package") + ":/src/package:ro",
		ketch + ":/src/ketch:ro",
		dataDir + ":/var/lib/ketch",
	}
}

// startHost starts a host of the kind, booted, with install.sh, the templates and the binary
// mounted; when the test fails, it says what the node was doing.
func startHost(t *testing.T, env *installEnv, host initSystem, name string) *dockertest.Container {
	t.Helper()
	c := env.e.RunHost(t, name, env.e.Image(t, host.rootfs), dockertest.RunOptions{Network: env.network, Init: host.init, Volumes: hostVolumes(t, env.ketch)})
	c.WaitFor(t, host.name+" to boot", 2*time.Minute, host.booted)
	// Registered after the container's own cleanup, so it runs first: what the node was doing.
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := c.Exec(nil, `kubectl get pods -A -o wide; kubectl -n kube-system get events | tail -30
echo '## ketch.log'; tail -n 60 /var/lib/ketch/logs/ketch.log
echo '## service'; tail -n 20 /var/log/ketch*.log 2>/dev/null; journalctl -u 'ketch*' --no-pager 2>/dev/null | tail -n 20`)
			t.Logf("%s at the failure:\n%s", name, out)
		}
	})
	return c
}

func testInstallOn(t *testing.T, env *installEnv, host initSystem) {
	server := startHost(t, env, host, "kt-"+host.name+"-server")
	clean := snapshot(t, server)

	// Installed without starting first, so that the test sees the whole start: with systemd
	// the unit is active only once the node is Ready.
	out := server.Must(t, []string{"INSTALL_KETCH_BIN=/src/ketch", "INSTALL_KETCH_SKIP_START=true"}, host.shell+" /src/install.sh")
	for _, want := range []string{"as: ketch server", "links: kubectl ctr crictl", "not started (INSTALL_KETCH_SKIP_START)"} {
		if !strings.Contains(out, want) {
			t.Errorf("install.sh output lacks %q:\n%s", want, out)
		}
	}
	checkEnvFile(t, server, host, "ketch", "")
	switch host.name {
	case "systemd":
		// Poll the unit while it starts: STATUS= says what ketch waits for, and the moment it is
		// active the node must already be Ready (by this run: the data dir was empty).
		out = server.Must(t, nil, `systemctl start --no-block ketch
while [ "$(systemctl show -p ActiveState --value ketch)" != active ]; do
  echo "status: $(systemctl show -p ActiveState --value ketch) $(systemctl show -p StatusText --value ketch)"
  [ "$(systemctl show -p ActiveState --value ketch)" = failed ] && exit 1
  sleep 0.2
done
echo "ready: $(kubectl get node kt-systemd-server -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}')"
echo "status: $(systemctl show -p StatusText --value ketch)"`)
		if !strings.Contains(out, "ready: True") {
			t.Fatalf("the unit was active before the node was Ready:\n%s", out)
		}
		for _, want := range []string{"status: activating waiting for", "status: node kt-systemd-server Ready"} {
			if !strings.Contains(out, want) {
				t.Errorf("systemd was not told %q while starting:\n%s", want, out)
			}
		}
	case "openrc":
		// supervise-daemon has no readiness protocol: install.sh waits for the node itself.
		out = server.Must(t, []string{"INSTALL_KETCH_BIN=/src/ketch"}, host.shell+" /src/install.sh")
		if !strings.Contains(out, "done: ketch is running") {
			t.Fatalf("install.sh did not start the service:\n%s", out)
		}
		server.Must(t, nil, `kubectl get node kt-openrc-server -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' | grep -qx True`)
		server.Must(t, nil, `logrotate --debug /etc/logrotate.d/ketch 2>&1 | grep -q /var/log/ketch.log`)
	}
	// The links are the tools, configured for this node.
	if out := server.Must(t, nil, "kubectl get nodes"); !strings.Contains(out, "kt-"+host.name+"-server") {
		t.Errorf("kubectl get nodes through the link:\n%s", out)
	}

	// A pod keeps running across a restart of the service and across an upgrade.
	before := podContainer(t, server) // waits for coredns to be Ready
	// crictl through its link sees the same pod on the node's containerd.
	if out := server.Must(t, nil, "crictl pods --namespace kube-system --state ready"); !strings.Contains(out, "coredns") {
		t.Errorf("crictl pods through the link:\n%s", out)
	}
	restartService(t, server, host, "ketch")
	if after := podContainer(t, server); after != before {
		t.Errorf("coredns's container changed across a restart: %s, then %s; its last state: %s", before, after,
			server.Must(t, nil, `kubectl -n kube-system get pod -l k8s-app=kube-dns -o jsonpath='{.items[0].status.containerStatuses[0].lastState}'`))
	}
	upgraded := time.Now()
	upgradeOut := server.Must(t, []string{"INSTALL_KETCH_BIN=/tmp/ketch-new"},
		"cp /src/ketch /tmp/ketch-new && echo upgrade >>/tmp/ketch-new && "+host.shell+" /src/install.sh")
	if !strings.Contains(upgradeOut, "upgrade: /usr/local/bin/ketch is replaced") {
		t.Errorf("install.sh did not say it upgrades:\n%s", upgradeOut)
	}
	server.Must(t, nil, `[ "$(sha256sum </usr/local/bin/ketch)" = "$(sha256sum </tmp/ketch-new)" ]`)
	waitNodeReady(t, server, "kt-"+host.name+"-server", upgraded)
	if after := podContainer(t, server); after != before {
		t.Errorf("coredns's container changed across an upgrade: %s, then %s", before, after)
	}

	// An agent joins from a second host.
	agent := startHost(t, env, host, "kt-"+host.name+"-agent")
	agentClean := snapshot(t, agent)
	token := strings.TrimSpace(server.Must(t, nil, "cat /var/lib/ketch/server/token"))
	url := "https://" + server.IP(t) + ":6443"
	joined := time.Now()
	out = agent.Must(t, []string{"INSTALL_KETCH_BIN=/src/ketch", "KETCH_URL=" + url, "KETCH_TOKEN=" + token}, host.shell+" /src/install.sh")
	if !strings.Contains(out, "as: ketch agent") || !strings.Contains(out, "service: ketch-agent") {
		t.Errorf("install.sh with KETCH_URL did not install an agent:\n%s", out)
	}
	checkEnvFile(t, agent, host, "ketch-agent", token)
	waitNodeReady(t, server, "kt-"+host.name+"-agent", joined)

	// Uninstalling leaves each host as it was.
	out = agent.Must(t, nil, "ketch-agent-uninstall.sh")
	server.Must(t, nil, "kubectl delete node kt-"+host.name+"-agent")
	compareSnapshots(t, agent, agentClean, snapshot(t, agent))
	agent.Must(t, nil, `[ -z "$(ls -A /var/lib/ketch)" ]`)
	out = server.Must(t, nil, "ketch-uninstall.sh")
	compareSnapshots(t, server, clean, snapshot(t, server))
	server.Must(t, nil, `[ -z "$(ls -A /var/lib/ketch)" ]`)
}

// checkEnvFile checks the service's env file: root's only, with the token when there is one.
func checkEnvFile(t *testing.T, c *dockertest.Container, host initSystem, name, token string) {
	t.Helper()
	path := "/etc/systemd/system/" + name + ".service.env"
	if host.name == "openrc" {
		path = "/etc/ketch/" + name + ".env"
	}
	out := c.Must(t, nil, "stat -c '%a %U' "+path+" && cat "+path)
	if !strings.HasPrefix(out, "600 root\n") {
		t.Errorf("%s: mode and owner %q, want 600 root", path, strings.SplitN(out, "\n", 2)[0])
	}
	if token != "" && !strings.Contains(out, "KETCH_TOKEN='"+token+"'") {
		t.Errorf("%s does not hold the token:\n%s", path, out)
	}
}

func restartService(t *testing.T, c *dockertest.Container, host initSystem, name string) {
	t.Helper()
	restarted := time.Now()
	switch host.name {
	case "systemd":
		c.Must(t, nil, "systemctl restart "+name)
	case "openrc":
		c.Must(t, nil, "rc-service "+name+" restart")
	}
	waitNodeReady(t, c, c.Name, restarted)
}

// waitNodeReady waits for a Node to be Ready with a heartbeat from since on: a restarted node's
// old Ready condition does not count. since must be taken before the node is (re)started: the
// kubelet reports its status as it starts, and then only every few minutes while nothing
// changes (the Lease is its heartbeat in between).
func waitNodeReady(t *testing.T, c *dockertest.Container, node string, since time.Time) {
	t.Helper()
	// Heartbeats have whole seconds.
	after := since.Add(-time.Second).UTC().Format(time.RFC3339)
	c.WaitFor(t, "node "+node+" Ready", 4*time.Minute, fmt.Sprintf(
		`kubectl get node %s -o jsonpath='{range .status.conditions[?(@.type=="Ready")]}{.status} {.lastHeartbeatTime}{end}' | awk '$1 == "True" && $2 >= "%s" { ok = 1 } END { exit !ok }'`, node, after))
}

// podContainer is coredns's container: its ID and restart count, and the PID of its task. It
// waits for one ready coredns pod (a pod of an older ReplicaSet may still be going).
func podContainer(t *testing.T, c *dockertest.Container) string {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		out := c.Must(t, nil, `kubectl -n kube-system get pod -l k8s-app=kube-dns -o jsonpath='{range .items[*]}{.metadata.name} {.metadata.deletionTimestamp} {.status.containerStatuses[0].ready} {.status.containerStatuses[0].containerID} {.status.containerStatuses[0].restartCount}{"\n"}{end}'`)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if f := strings.Fields(lines[0]); len(lines) == 1 && len(f) == 4 && f[1] == "true" {
			id := strings.TrimPrefix(f[2], "containerd://")
			tasks := c.Must(t, nil, "ctr -n k8s.io task ls")
			for _, line := range strings.Split(tasks, "\n") {
				if tf := strings.Fields(line); len(tf) == 3 && tf[0] == id {
					return fmt.Sprintf("pod %s container %s (restarts %s, pid %s, %s)", f[0], id[:12], f[3], tf[1], tf[2])
				}
			}
			t.Fatalf("ctr -n k8s.io task ls has no task %s:\n%s", id, tasks)
		}
		if time.Now().After(deadline) {
			t.Fatalf("no single ready coredns pod:\n%s", out)
		}
		time.Sleep(2 * time.Second)
	}
}

// snapshotScript lists what a node could leave on a host, section by section: files outside the
// data dir (a volume, checked on its own) and the kernel's file systems, mounts, links, iptables
// chains, cgroups and processes. It leaves out what the init system and the test's own commands
// change by themselves.
const snapshotScript = `
echo '## files'
find / -xdev \( -path /proc -o -path /sys -o -path /dev -o -path /tmp -o -path /root \
  -o -path /var/log/journal -o -path /var/lib/systemd -o -path /var/cache/ldconfig \) -prune -o -print
echo '## run'
find /run -xdev \( -path /run/systemd -o -path /run/openrc -o -path /run/user -o -path /run/utmp \) -prune -o -print
echo '## mounts'
awk '{ print $2 }' /proc/self/mounts
echo '## links'
ip -o link show | awk -F': ' '{ sub(/@.*/, "", $2); print $2 }'
echo '## chains'
for table in filter nat mangle raw; do
  iptables-save -t $table 2>/dev/null | awk -v t=$table '/^:/ { print t, $1 }'
  ip6tables-save -t $table 2>/dev/null | awk -v t=$table '/^:/ { print "ip6", t, $1 }'
done
echo '## cgroups'
find /sys/fs/cgroup -mindepth 2 -type d | grep -v -e '/init.scope' -e '/system.slice/[a-z-]*@*[a-z-]*\.service$' -e '/user.slice'
echo '## processes'
ps -e -o comm= | grep -v -x -e ps -e sh -e awk -e grep -e find -e sort
`

// snapshot is the host's state by section.
func snapshot(t *testing.T, c *dockertest.Container) map[string][]string {
	t.Helper()
	out := c.Must(t, nil, snapshotScript)
	s := map[string][]string{}
	section := ""
	for _, line := range strings.Split(out, "\n") {
		if name, ok := strings.CutPrefix(line, "## "); ok {
			section = name
			continue
		}
		if line != "" {
			s[section] = append(s[section], line)
		}
	}
	for k := range s {
		slices.Sort(s[k])
		s[k] = slices.Compact(s[k])
	}
	return s
}

// systemChurn is what the init systems change on their own between two snapshots.
var systemChurn = regexp.MustCompile(`^(/var/log/(wtmp|btmp|lastlog|dpkg.log)|/etc/machine-id|/var/lib/dbus.*|/run/(lock|shm)(/.*)?|/var/log/rc\.log)$`)

func compareSnapshots(t *testing.T, c *dockertest.Container, before, after map[string][]string) {
	t.Helper()
	for _, section := range []string{"files", "run", "mounts", "links", "chains", "cgroups", "processes"} {
		var added, removed []string
		for _, x := range after[section] {
			if !slices.Contains(before[section], x) && !systemChurn.MatchString(x) {
				added = append(added, x)
			}
		}
		for _, x := range before[section] {
			if !slices.Contains(after[section], x) && !systemChurn.MatchString(x) {
				removed = append(removed, x)
			}
		}
		if len(added) > 0 {
			t.Errorf("%s: after uninstall, %s left: %s", c.Name, section, strings.Join(added, ", "))
		}
		if len(removed) > 0 {
			t.Errorf("%s: after uninstall, %s missing: %s", c.Name, section, strings.Join(removed, ", "))
		}
	}
}

// TestInstallRefusals runs install.sh on input it must refuse: each refusal exits non-zero with a
// message that says what is wrong, and leaves the host as it was. Then a download that does
// match installs (without starting), and uninstalls.
func TestInstallRefusals(t *testing.T) {
	env := newInstallEnv(t, "kt-refusals", "10.212.0.0/24")
	c := startHost(t, env, systemdHost, "kt-refusals")
	// A release directory served over HTTP on the host itself: busybox's httpd.
	c.Must(t, nil, `mkdir -p /srv/good /srv/bad && cp /src/ketch /srv/good/ketch-linux-amd64 && cp -r /src/package /srv/good/ &&
cd /srv/good && sha256sum ketch-linux-amd64 package/* >sha256sum.txt &&
cp -r /srv/good/. /srv/bad/ && echo tampered >>/srv/bad/ketch-linux-amd64 &&
busybox httpd -p 127.0.0.1:8080 -h /srv &&
mkdir /mnt/tiny && mount -t tmpfs -o size=64m tmpfs /mnt/tiny`)
	clean := snapshot(t, c)

	for _, tc := range []struct {
		name string
		env  []string
		cmd  string
		want string
	}{
		{"not root", []string{"INSTALL_KETCH_BIN=/src/ketch"}, "setpriv --reuid=65534 --regid=65534 --clear-groups sh /src/install.sh", "run as root"},
		{"unsupported architecture", []string{"INSTALL_KETCH_BIN=/src/ketch"}, "setarch i686 sh /src/install.sh", "unsupported architecture i686"},
		{"agent without a token", []string{"INSTALL_KETCH_BIN=/src/ketch", "KETCH_URL=https://192.0.2.1:6443"}, "sh /src/install.sh", "an agent needs the join token"},
		{"KETCH_URL not https", []string{"INSTALL_KETCH_BIN=/src/ketch", "KETCH_URL=http://192.0.2.1:6443", "KETCH_TOKEN=K10abc::server:def"}, "sh /src/install.sh", "KETCH_URL must be the server's https:// address"},
		{"server with KETCH_URL", []string{"INSTALL_KETCH_BIN=/src/ketch", "KETCH_URL=https://192.0.2.1:6443", "KETCH_TOKEN=t"}, "sh /src/install.sh server", "KETCH_URL joins this host to a server as an agent"},
		{"no binary", nil, "sh /src/install.sh", "no binary to install"},
		{"downloaded binary does not match", []string{"INSTALL_KETCH_DOWNLOAD_URL=http://127.0.0.1:8080/bad"}, "sh /src/install.sh", "the checksum of ketch-linux-amd64 does not match"},
		{"local binary does not match", []string{"INSTALL_KETCH_BIN=/srv/bad/ketch-linux-amd64"}, "sh /src/install.sh", "the checksum of ketch-linux-amd64 does not match /srv/bad/sha256sum.txt"},
		{"unknown command", []string{"INSTALL_KETCH_BIN=/src/ketch"}, "sh /src/install.sh serve", "unknown command 'serve'"},
		{"bad symlink mode", []string{"INSTALL_KETCH_BIN=/src/ketch", "INSTALL_KETCH_SYMLINK=yes"}, "sh /src/install.sh", "INSTALL_KETCH_SYMLINK is skip or force"},
		{"host check finds a fatal problem", []string{"INSTALL_KETCH_BIN=/src/ketch"}, "sh /src/install.sh server --data-dir /mnt/tiny/ketch", "under 512 MiB; images, containers and the datastore need room"},
		{"relative data dir", []string{"INSTALL_KETCH_BIN=/src/ketch"}, "sh /src/install.sh server --data-dir data", "must be absolute paths"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := c.Exec(tc.env, tc.cmd)
			if err == nil || dockertest.ExitCode(err) != 1 {
				t.Fatalf("install.sh: %v (want exit status 1)\n%s", err, out)
			}
			if !strings.Contains(out, tc.want) || !strings.Contains(out, "nothing was changed") {
				t.Errorf("install.sh said\n%s\nwant %q and that nothing was changed", out, tc.want)
			}
			compareSnapshots(t, c, clean, snapshot(t, c))
		})
	}

	// Neither systemd nor OpenRC: a host whose PID 1 is not an init system.
	t.Run("no init system", func(t *testing.T) {
		bare := env.e.RunHost(t, "kt-refusals-bare", env.e.Image(t, systemdHost.rootfs),
			dockertest.RunOptions{Network: env.network, Init: []string{"sleep", "infinity"}, Volumes: hostVolumes(t, env.ketch)})
		before := snapshot(t, bare)
		out, err := bare.Exec([]string{"INSTALL_KETCH_BIN=/src/ketch"}, "sh /src/install.sh")
		if dockertest.ExitCode(err) != 1 || !strings.Contains(out, "no systemd and no OpenRC found") {
			t.Errorf("install.sh on a host without an init system: %v\n%s", err, out)
		}
		compareSnapshots(t, bare, before, snapshot(t, bare))
	})

	// Without starting anything: a second, named service that is not enabled and makes no links;
	// then the default links next to a kubectl the user has, which stays through the uninstall;
	// then links that replace what is there.
	t.Run("options", func(t *testing.T) {
		out := c.Must(t, []string{"INSTALL_KETCH_BIN=/src/ketch", "INSTALL_KETCH_NAME=edge", "INSTALL_KETCH_SYMLINK=skip", "INSTALL_KETCH_SKIP_ENABLE=true"},
			"sh /src/install.sh server --data-dir /var/lib/ketch-edge --run-dir /run/ketch-edge")
		if !strings.Contains(out, "service: ketch-edge (systemd") || strings.Contains(out, "links:") {
			t.Errorf("install.sh with INSTALL_KETCH_NAME and INSTALL_KETCH_SYMLINK=skip:\n%s", out)
		}
		c.Must(t, nil, `grep -qx 'ExecStart=/usr/local/bin/ketch server "--data-dir" "/var/lib/ketch-edge" "--run-dir" "/run/ketch-edge"' /etc/systemd/system/ketch-edge.service &&
! systemctl is-enabled ketch-edge && [ ! -e /usr/local/bin/kubectl ] && [ -x /usr/local/bin/ketch-edge-uninstall.sh ]`)
		c.Must(t, nil, "ketch-edge-uninstall.sh")
		compareSnapshots(t, c, clean, snapshot(t, c))

		c.Must(t, nil, `printf '#!/bin/sh\necho the user kubectl\n' >/usr/bin/kubectl && chmod +x /usr/bin/kubectl`)
		withKubectl := snapshot(t, c)
		out = c.Must(t, []string{"INSTALL_KETCH_BIN=/src/ketch", "INSTALL_KETCH_SKIP_START=true"}, "sh /src/install.sh")
		if !strings.Contains(out, "not linking kubectl: /usr/bin/kubectl exists") || !strings.Contains(out, "links: ctr crictl") {
			t.Errorf("install.sh next to a kubectl:\n%s", out)
		}
		c.Must(t, nil, "ketch-uninstall.sh && [ \"$(kubectl)\" = 'the user kubectl' ]")
		compareSnapshots(t, c, withKubectl, snapshot(t, c))

		out = c.Must(t, []string{"INSTALL_KETCH_BIN=/src/ketch", "INSTALL_KETCH_SKIP_START=true", "INSTALL_KETCH_SYMLINK=force", "INSTALL_KETCH_BIN_DIR=/usr/bin"}, "sh /src/install.sh")
		c.Must(t, nil, `[ "$(readlink /usr/bin/kubectl)" = /usr/bin/ketch ] && kubectl version --client | grep -q 'Client Version'`)
		c.Must(t, nil, "ketch-uninstall.sh")
		if out := c.Must(t, nil, "ls /usr/bin/kubectl /usr/bin/ketch 2>&1 || true"); !strings.Contains(out, "No such file") {
			t.Errorf("after uninstall: %s", out)
		}
		c.Must(t, nil, "systemctl daemon-reload")
	})

	// The download that matches installs, templates included, and the uninstall script takes it
	// all away again.
	t.Run("download", func(t *testing.T) {
		out := c.Must(t, []string{"INSTALL_KETCH_DOWNLOAD_URL=http://127.0.0.1:8080/good", "INSTALL_KETCH_SKIP_START=true"},
			"cd / && sh </src/install.sh")
		for _, want := range []string{"downloading ketch-linux-amd64", "not started"} {
			if !strings.Contains(out, want) {
				t.Errorf("install.sh from a download:\n%s\nwant %q", out, want)
			}
		}
		c.Must(t, nil, `systemctl is-enabled ketch && [ "$(sha256sum </usr/local/bin/ketch)" = "$(sha256sum </src/ketch)" ]`)
		c.Must(t, nil, "ketch-uninstall.sh")
		compareSnapshots(t, c, clean, snapshot(t, c))
	})
}

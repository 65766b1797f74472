package agent

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/coreos/go-iptables/iptables"
)

const (
	etcResolvConf = "/etc/resolv.conf"
	// systemdUpstream is the list of upstream servers systemd-resolved keeps beside its stub.
	systemdUpstream = "/run/systemd/resolve/resolv.conf"
	// dockerDNS is the address of Docker's embedded DNS server in a container on a user-defined
	// network (compose always makes one).
	dockerDNS = "127.0.0.11"
	// dockerDNSChain is ketch's nat chain that sends pods' DNS queries to the node IP on to
	// Docker's embedded server.
	dockerDNSChain = "KETCH-DOCKER-DNS"
)

// podResolvConf picks the resolv.conf the kubelet gives pods with the Default DNS policy, and
// says what it did when that was more than taking /etc/resolv.conf. CoreDNS is such a pod: it
// forwards names outside the cluster to those nameservers, and when they are the node's
// loopback (a local stub resolver) it forwards to itself, detects the loop and exits.
//
// In order: --resolv-conf; /etc/resolv.conf when it names a nameserver that is not a loopback
// address; systemd-resolved's upstream list; in a Docker container, Docker's embedded server
// made reachable from pods at the node IP (as kind does); else /etc/resolv.conf with a warning.
func podResolvConf(node Node) (path, msg string, err error) {
	if node.ResolvConf != "" {
		return node.ResolvConf, "", nil
	}
	b, err := os.ReadFile(etcResolvConf)
	if err != nil || !onlyLoopbackNameservers(string(b)) {
		return etcResolvConf, "", nil
	}
	if up, err := os.ReadFile(systemdUpstream); err == nil && hasNameserver(string(up)) && !onlyLoopbackNameservers(string(up)) {
		return systemdUpstream, "", nil
	}
	nodeIP := node.NodeIPs[0]
	if nameservers(string(b)) == dockerDNS && nodeIP.To4() != nil {
		ports, err := dockerDNSPorts()
		if err == nil && len(ports) > 0 {
			if err := exposeDockerDNS(nodeIP, ports); err != nil {
				return "", "", fmt.Errorf("making Docker's embedded DNS server reachable from pods: %w", err)
			}
			path := filepath.Join(node.Paths().AgentEtcDir(), "resolv.conf")
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				return "", "", err
			}
			if err := os.WriteFile(path, []byte(replaceNameservers(string(b), nodeIP.String())), 0o644); err != nil {
				return "", "", err
			}
			return path, fmt.Sprintf("in a container: /etc/resolv.conf names Docker's embedded DNS server (%s), which pods cannot reach: it answers them at %s:53 (chain %s), for CoreDNS to forward names outside the cluster to", dockerDNS, nodeIP, dockerDNSChain), nil
		}
	}
	return etcResolvConf, fmt.Sprintf("warning: %s names only loopback nameservers (%s) and no upstream list was found: CoreDNS would forward to itself and stop; pass --resolv-conf with a file naming nameservers pods can reach", etcResolvConf, nameservers(string(b))), nil
}

// dockerDNSPorts reads where Docker's own rules send DNS queries to 127.0.0.11:53, by protocol:
// its server listens on random ports and DNATs port 53 to them for the container's own processes.
func dockerDNSPorts() (map[string]string, error) {
	ipt, err := iptables.New()
	if err != nil {
		return nil, err
	}
	rules, err := ipt.List("nat", "DOCKER_OUTPUT")
	if err != nil {
		return nil, err
	}
	ports := map[string]string{}
	for _, r := range rules {
		f := strings.Fields(r)
		var proto, to string
		for i := 0; i+1 < len(f); i++ {
			switch f[i] {
			case "-p":
				proto = f[i+1]
			case "--to-destination":
				to = f[i+1]
			}
		}
		if host, port, err := net.SplitHostPort(to); err == nil && host == dockerDNS && (proto == "udp" || proto == "tcp") {
			ports[proto] = port
		}
	}
	return ports, nil
}

// exposeDockerDNS sends DNS queries to nodeIP:53, from pods (PREROUTING) and from the node
// itself (OUTPUT, host-network pods), to Docker's server. The chain is rebuilt on every start;
// it lives in the container's network namespace and goes with it. A DNAT to a loopback address
// from another interface needs route_localnet, which kube-proxy sets as well; the sysctl, too,
// is the container's own.
func exposeDockerDNS(nodeIP net.IP, ports map[string]string) error {
	ipt, err := iptables.New()
	if err != nil {
		return err
	}
	if err := ipt.ClearChain("nat", dockerDNSChain); err != nil {
		return err
	}
	for proto, port := range ports {
		if err := ipt.Append("nat", dockerDNSChain, "-d", nodeIP.String()+"/32", "-p", proto, "-m", proto, "--dport", "53",
			"-j", "DNAT", "--to-destination", net.JoinHostPort(dockerDNS, port)); err != nil {
			return err
		}
	}
	for _, chain := range []string{"PREROUTING", "OUTPUT"} {
		if err := ipt.AppendUnique("nat", chain, "-d", nodeIP.String()+"/32", "-j", dockerDNSChain); err != nil {
			return err
		}
	}
	return os.WriteFile("/proc/sys/net/ipv4/conf/all/route_localnet", []byte("1\n"), 0o644)
}

// nameservers lists a resolv.conf's nameservers, space-separated.
func nameservers(resolv string) string {
	var out []string
	for _, line := range strings.Split(resolv, "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "nameserver" {
			out = append(out, f[1])
		}
	}
	return strings.Join(out, " ")
}

func hasNameserver(resolv string) bool { return nameservers(resolv) != "" }

// replaceNameservers is resolv with its nameservers replaced by ns, search and options kept.
func replaceNameservers(resolv, ns string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Written by ketch: %s with Docker's embedded DNS server reached at the node IP.\nnameserver %s\n", etcResolvConf, ns)
	for _, line := range strings.Split(resolv, "\n") {
		if f := strings.Fields(line); len(f) > 0 && f[0] != "nameserver" && !strings.HasPrefix(f[0], "#") {
			b.WriteString(line + "\n")
		}
	}
	return b.String()
}

// onlyLoopbackNameservers says whether every nameserver of a resolv.conf is a loopback address
// (and there is at least one).
func onlyLoopbackNameservers(resolv string) bool {
	ns := strings.Fields(nameservers(resolv))
	for _, s := range ns {
		if ip := net.ParseIP(s); ip == nil || !ip.IsLoopback() {
			return false
		}
	}
	return len(ns) > 0
}

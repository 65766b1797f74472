package harness

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/chromedp/chromedp"
)

// ChromiumOptions start Debian's Chromium headless with a new profile in profileDir, without
// the background connections that fail on a machine with no internet.
func ChromiumOptions(chromium, profileDir string) []chromedp.ExecAllocatorOption {
	return []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.UserDataDir(profileDir), chromedp.WindowSize(1400, 900),
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("disable-quic", true),
	}
}

// SPKIHash is the base64 SHA-256 of a certificate's public key, as Chromium's
// --ignore-certificate-errors-spki-list takes it: the browser then trusts that one key (the
// server's), not every certificate.
func SPKIHash(certFile string) (string, error) {
	b, err := os.ReadFile(certFile)
	if err != nil {
		return "", err
	}
	block, _ := pem.Decode(b)
	if block == nil {
		return "", fmt.Errorf("%s holds no PEM certificate", certFile)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return "", fmt.Errorf("%s: %w", certFile, err)
	}
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return base64.StdEncoding.EncodeToString(sum[:]), nil
}

// PollJS waits until the JavaScript expression is true in the page, checking every interval.
func PollJS(expr string, interval time.Duration) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := chromedp.Poll[bool](expr, chromedp.WithPollingInterval(interval))(ctx, t)
		return err
	})
}

// BrowserNet is a network namespace of its own for a browser, joined to this host by a veth
// pair. Chromium drops every connection when the host's network changes (net::ERR_NETWORK_CHANGED),
// and a node on the host changes it with each pod's veth; in a namespace of its own the browser
// sees no change, and reaches the host at HostIP.
type BrowserNet struct {
	Name   string // the namespace
	HostIP string // this host's end of the veth pair
	link   string // the host's end of the pair
}

// NewBrowserNet makes a namespace and a veth pair named after tag (at most 8 characters) with
// addresses 10.231.<n>.1 (host) and .2 (namespace), n from 1 to 254.
func NewBrowserNet(tag string, n int) (*BrowserNet, error) {
	b := browserNet(tag)
	b.HostIP = fmt.Sprintf("10.231.%d.1", n)
	peer := "kbrp-" + tag
	steps := [][]string{
		{"netns", "add", b.Name},
		{"link", "add", b.link, "type", "veth", "peer", "name", peer},
		{"link", "set", peer, "netns", b.Name},
		{"addr", "add", b.HostIP + "/30", "dev", b.link},
		{"link", "set", b.link, "up"},
		{"-n", b.Name, "addr", "add", fmt.Sprintf("10.231.%d.2/30", n), "dev", peer},
		{"-n", b.Name, "link", "set", peer, "up"},
		{"-n", b.Name, "link", "set", "lo", "up"},
	}
	for _, s := range steps {
		if out, err := exec.Command("ip", s...).CombinedOutput(); err != nil {
			b.Close()
			return nil, fmt.Errorf("ip %s: %v: %s", strings.Join(s, " "), err, out)
		}
	}
	return b, nil
}

func browserNet(tag string) *BrowserNet {
	return &BrowserNet{Name: "ketch-browser-" + tag, link: "kbr-" + tag}
}

// RemoveBrowserNet removes what NewBrowserNet made for tag, as a killed run left it.
func RemoveBrowserNet(tag string) error { return browserNet(tag).Close() }

// Exec makes a command that the ExecAllocator starts run in the namespace (chromedp's pipe to
// the browser is its file descriptors 3 and 4, which ip netns exec passes on).
func (b *BrowserNet) Exec() chromedp.ExecAllocatorOption {
	return chromedp.ModifyCmdFunc(func(cmd *exec.Cmd) {
		ip, err := exec.LookPath("ip")
		if err != nil {
			ip = "/usr/sbin/ip"
		}
		cmd.Args = append([]string{"ip", "netns", "exec", b.Name, cmd.Path}, cmd.Args[1:]...)
		cmd.Path = ip
	})
}

// Close removes the namespace, and the veth pair with it, and the host's end if it is left.
func (b *BrowserNet) Close() error {
	var errs []error
	if out, err := exec.Command("ip", "link", "del", b.link).CombinedOutput(); err != nil && !strings.Contains(string(out), "Cannot find device") {
		errs = append(errs, fmt.Errorf("ip link del %s: %v: %s", b.link, err, out))
	}
	if out, err := exec.Command("ip", "netns", "del", b.Name).CombinedOutput(); err != nil && !strings.Contains(string(out), "No such file") {
		errs = append(errs, fmt.Errorf("ip netns del %s: %v: %s", b.Name, err, out))
	}
	return errors.Join(errs...)
}

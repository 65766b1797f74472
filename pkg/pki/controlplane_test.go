package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/util/keyutil"
)

func TestEnsureControlPlaneIssuesVerifiableChain(t *testing.T) {
	s := mustEnsureControlPlane(t, testControlPlaneOptions(t))
	server, client := x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth

	for _, tc := range []struct {
		cert, ca string
		usage    x509.ExtKeyUsage
		cn       string
		orgs     []string
	}{
		{s.APIServerCert, s.ServerCA, server, "kube-apiserver", nil},
		{s.APIServerKubeletClientCert, s.ClientCA, client, "system:kube-apiserver", []string{"system:masters"}},
		{s.FrontProxyClientCert, s.RequestHeaderCA, client, "system:auth-proxy", nil},
		{s.AdminCert, s.ClientCA, client, "system:admin", []string{"system:masters"}},
		{s.ControllerCert, s.ClientCA, client, "system:kube-controller-manager", nil},
		{s.SchedulerCert, s.ClientCA, client, "system:kube-scheduler", nil},
		{s.KubeProxyCert, s.ClientCA, client, "system:kube-proxy", nil},
	} {
		c := verifyLeaf(t, tc.cert, tc.ca, tc.usage)
		if c.Subject.CommonName != tc.cn || !slices.Equal(c.Subject.Organization, tc.orgs) {
			t.Errorf("%s: subject %v, want CN=%s O=%v", tc.cert, c.Subject, tc.cn, tc.orgs)
		}
		if got := c.NotAfter.Sub(now()); got < 364*24*time.Hour || got > leafValidity {
			t.Errorf("%s: valid for another %s, want a year", tc.cert, got)
		}
		if k, ok := c.PublicKey.(*ecdsa.PublicKey); !ok || k.Curve != elliptic.P256() {
			t.Errorf("%s: key %T, want ECDSA P-256", tc.cert, c.PublicKey)
		}
		// The wrong usage or the wrong CA must not verify: each CA vouches for one thing.
		other := map[x509.ExtKeyUsage]x509.ExtKeyUsage{server: client, client: server}[tc.usage]
		if _, err := c.Verify(x509.VerifyOptions{Roots: caPool(t, tc.ca), KeyUsages: []x509.ExtKeyUsage{other}}); err == nil {
			t.Errorf("%s verifies for %v too", tc.cert, other)
		}
		for _, ca := range []string{s.ClientCA, s.ServerCA, s.RequestHeaderCA} {
			if ca == tc.ca {
				continue
			}
			if _, err := c.Verify(x509.VerifyOptions{Roots: caPool(t, ca), KeyUsages: []x509.ExtKeyUsage{tc.usage}}); err == nil {
				t.Errorf("%s verifies against %s too", tc.cert, ca)
			}
		}
	}

	for _, ca := range []string{s.ClientCA, s.ServerCA, s.RequestHeaderCA} {
		c := readCert(t, ca)
		if !c.IsCA || c.NotAfter.Sub(now()) < caValidity-48*time.Hour {
			t.Errorf("%s: IsCA=%v, expires %s; want a CA valid 10 years", ca, c.IsCA, c.NotAfter)
		}
		if k, ok := c.PublicKey.(*ecdsa.PublicKey); !ok || k.Curve != elliptic.P256() {
			t.Errorf("%s: key %T, want ECDSA P-256", ca, c.PublicKey)
		}
	}
	if a, b := readCert(t, s.ClientCA), readCert(t, s.ServerCA); a.Subject.CommonName == b.Subject.CommonName {
		t.Errorf("client and server CA share the name %q", a.Subject.CommonName)
	}
}

func TestAPIServerSANs(t *testing.T) {
	s := mustEnsureControlPlane(t, testControlPlaneOptions(t))
	c := verifyLeaf(t, s.APIServerCert, s.ServerCA, x509.ExtKeyUsageServerAuth)

	wantDNS := []string{"kubernetes", "kubernetes.default", "kubernetes.default.svc",
		"kubernetes.default.svc.cluster.local", "localhost", "node-a", "ketch.example.com"}
	wantIPs := []string{"127.0.0.1", "::1", "10.43.0.1", "192.0.2.10", "203.0.113.7"}
	gotDNS := slices.Sorted(slices.Values(c.DNSNames))
	if !slices.Equal(gotDNS, slices.Sorted(slices.Values(wantDNS))) {
		t.Errorf("DNS SANs %v, want %v", gotDNS, wantDNS)
	}
	var gotIPs []string
	for _, ip := range c.IPAddresses {
		gotIPs = append(gotIPs, ip.String())
	}
	if !slices.Equal(slices.Sorted(slices.Values(gotIPs)), slices.Sorted(slices.Values(wantIPs))) {
		t.Errorf("IP SANs %v, want %v", gotIPs, wantIPs)
	}
	// What TLS clients actually check, for both kinds of --tls-san.
	for _, host := range append(wantDNS, wantIPs...) {
		if _, err := c.Verify(x509.VerifyOptions{Roots: caPool(t, s.ServerCA), DNSName: host}); err != nil {
			t.Errorf("serving certificate not valid for %s: %v", host, err)
		}
	}
}

func TestServiceAccountKey(t *testing.T) {
	s := mustEnsureControlPlane(t, testControlPlaneOptions(t))
	// The same readers kube-apiserver and kube-controller-manager use for their flags.
	priv, err := keyutil.PrivateKeyFromFile(s.ServiceAccountKey)
	if err != nil {
		t.Fatal(err)
	}
	rsaKey, ok := priv.(*rsa.PrivateKey)
	if !ok || rsaKey.N.BitLen() != 2048 {
		t.Fatalf("service.key is %T, want RSA 2048", priv)
	}
	pubs, err := keyutil.PublicKeysFromFile(s.ServiceAccountPub)
	if err != nil {
		t.Fatal(err)
	}
	if len(pubs) != 1 || !rsaKey.PublicKey.Equal(pubs[0]) {
		t.Errorf("service.pub does not hold service.key's public key")
	}
}

func TestFileModesAndPaths(t *testing.T) {
	s := mustEnsureControlPlane(t, testControlPlaneOptions(t))
	for _, d := range []string{s.Dir, s.CredDir} {
		if m := fileMode(t, d); m != 0o700 {
			t.Errorf("%s: mode %o, want 700", d, m)
		}
	}
	files := snapshot(t, s.Dir, s.CredDir)
	if len(files) != 26 {
		t.Errorf("%d files written, want 26: %v", len(files), slices.Sorted(func(yield func(string) bool) {
			for p := range files {
				yield(p)
			}
		}))
	}
	for p := range files {
		want := os.FileMode(0o644)
		if strings.HasSuffix(p, ".key") || strings.HasSuffix(p, ".kubeconfig") {
			want = 0o600
		}
		if m := fileMode(t, p); m != want {
			t.Errorf("%s: mode %o, want %o", p, m, want)
		}
		if !filepath.IsAbs(p) {
			t.Errorf("%s is not absolute", p)
		}
	}
}

func TestEnsureControlPlaneReusesEverything(t *testing.T) {
	opts := testControlPlaneOptions(t)
	s := mustEnsureControlPlane(t, opts)
	before := snapshot(t, s.Dir, s.CredDir)
	mustEnsureControlPlane(t, opts)
	if diff := changed(before, snapshot(t, s.Dir, s.CredDir)); len(diff) > 0 {
		t.Errorf("second EnsureControlPlane changed %v", diff)
	}
}

func TestSANChangesReissueOnlyTheServingCert(t *testing.T) {
	opts := testControlPlaneOptions(t)
	s := mustEnsureControlPlane(t, opts)
	want := map[string]bool{"serving-kube-apiserver.crt": true, "serving-kube-apiserver.key": true}

	for _, step := range []struct {
		name   string
		change func(*ControlPlaneOptions)
		want   map[string]bool
	}{
		{"new DNS --tls-san", func(o *ControlPlaneOptions) { o.TLSSANs = append(o.TLSSANs, "api.example.org") }, want},
		{"new IP --tls-san", func(o *ControlPlaneOptions) { o.TLSSANs = append(o.TLSSANs, "2001:db8::7") }, want},
		{"new node IP", func(o *ControlPlaneOptions) { o.NodeIPs = append(o.NodeIPs, net.ParseIP("192.0.2.11")) }, want},
		{"SAN dropped: still covered", func(o *ControlPlaneOptions) { o.TLSSANs = o.TLSSANs[:1] }, nil},
		{"SAN case differs: still covered", func(o *ControlPlaneOptions) { o.NodeName = "NODE-A" }, nil},
	} {
		before := snapshot(t, s.Dir, s.CredDir)
		step.change(&opts)
		mustEnsureControlPlane(t, opts)
		if diff := changed(before, snapshot(t, s.Dir, s.CredDir)); !mapsEqual(diff, step.want) {
			t.Errorf("%s: changed %v, want %v", step.name, diff, step.want)
		}
	}
	c := verifyLeaf(t, s.APIServerCert, s.ServerCA, x509.ExtKeyUsageServerAuth)
	if !slices.Contains(c.DNSNames, "api.example.org") || !slices.ContainsFunc(c.IPAddresses, net.ParseIP("2001:db8::7").Equal) {
		t.Errorf("new SANs missing: %v %v", c.DNSNames, c.IPAddresses)
	}
}

func mapsEqual(a, b map[string]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if !b[k] {
			return false
		}
	}
	return true
}

func TestExpiringLeafIsRenewedAlone(t *testing.T) {
	opts := testControlPlaneOptions(t)
	s := mustEnsureControlPlane(t, opts)

	// Replace the scheduler's certificate with one, same key, that has 89 days left.
	key, err := keyutil.PrivateKeyFromFile(s.SchedulerKey)
	if err != nil {
		t.Fatal(err)
	}
	short, err := s.clientCA.signUntil(leafSpec{commonName: "system:kube-scheduler", usage: x509.ExtKeyUsageClientAuth},
		key.(*ecdsa.PrivateKey).Public(), now().Add(89*24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s.SchedulerCert, short, 0o644); err != nil {
		t.Fatal(err)
	}

	before := snapshot(t, s.Dir, s.CredDir)
	mustEnsureControlPlane(t, opts)
	want := map[string]bool{"client-scheduler.crt": true, "client-scheduler.key": true}
	if diff := changed(before, snapshot(t, s.Dir, s.CredDir)); !mapsEqual(diff, want) {
		t.Errorf("changed %v, want %v", diff, want)
	}
	c := verifyLeaf(t, s.SchedulerCert, s.ClientCA, x509.ExtKeyUsageClientAuth)
	if c.NotAfter.Sub(now()) < 364*24*time.Hour {
		t.Errorf("renewed certificate expires %s", c.NotAfter)
	}
}

func TestAgingRenewsLeavesNotCAs(t *testing.T) {
	opts := testControlPlaneOptions(t)
	s := mustEnsureControlPlane(t, opts)
	before := snapshot(t, s.Dir, s.CredDir)

	// 300 days on, every leaf has 65 days left.
	setClock(t, time.Now().Add(300*24*time.Hour))
	mustEnsureControlPlane(t, opts)
	after := snapshot(t, s.Dir, s.CredDir)
	diff := changed(before, after)
	for p := range after {
		base := filepath.Base(p)
		isLeaf := strings.HasPrefix(base, "client-") && !strings.HasPrefix(base, "client-ca.") || strings.HasPrefix(base, "serving-")
		if diff[base] != isLeaf {
			t.Errorf("%s: changed=%v, want %v", base, diff[base], isLeaf)
		}
	}
	verifyLeaf(t, s.AdminCert, s.ClientCA, x509.ExtKeyUsageClientAuth)
	verifyLeaf(t, s.APIServerCert, s.ServerCA, x509.ExtKeyUsageServerAuth)

	// And the renewed set is stable again.
	mustEnsureControlPlane(t, opts)
	if diff := changed(after, snapshot(t, s.Dir, s.CredDir)); len(diff) > 0 {
		t.Errorf("EnsureControlPlane after renewal changed %v", diff)
	}
}

func TestDamagedLeavesAreReissued(t *testing.T) {
	opts := testControlPlaneOptions(t)
	s := mustEnsureControlPlane(t, opts)
	other := mustEnsureControlPlane(t, testControlPlaneOptions(t)) // another cluster

	copyFile := func(from, to string) {
		data, err := os.ReadFile(from)
		if err == nil {
			err = os.WriteFile(to, data, 0o600)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name   string
		damage func()
		cert   string
	}{
		{"garbage certificate", func() { os.WriteFile(s.AdminCert, []byte("not a cert"), 0o644) }, s.AdminCert},
		{"empty certificate", func() { os.WriteFile(s.AdminCert, nil, 0o644) }, s.AdminCert},
		{"missing key", func() { os.Remove(s.ControllerKey) }, s.ControllerCert},
		{"garbage key", func() { os.WriteFile(s.ControllerKey, []byte("junk"), 0o600) }, s.ControllerCert},
		{"key of another certificate", func() { copyFile(s.AdminKey, s.KubeProxyKey) }, s.KubeProxyCert},
		{"signed by another cluster's CA", func() {
			copyFile(other.APIServerCert, s.APIServerCert)
			copyFile(other.APIServerKey, s.APIServerKey)
		}, s.APIServerCert},
		{"client certificate where a serving one belongs", func() {
			copyFile(s.KubeProxyCert, s.APIServerCert)
			copyFile(s.KubeProxyKey, s.APIServerKey)
		}, s.APIServerCert},
	} {
		tc.damage()
		before := snapshot(t, s.Dir)
		mustEnsureControlPlane(t, opts)
		diff := changed(before, snapshot(t, s.Dir))
		key := strings.TrimSuffix(filepath.Base(tc.cert), ".crt") + ".key"
		if want := map[string]bool{filepath.Base(tc.cert): true, key: true}; !mapsEqual(diff, want) {
			t.Errorf("%s: changed %v, want %v", tc.name, diff, want)
		}
	}
	verifyLeaf(t, s.APIServerCert, s.ServerCA, x509.ExtKeyUsageServerAuth)
	verifyLeaf(t, s.AdminCert, s.ClientCA, x509.ExtKeyUsageClientAuth)
}

func TestDamagedCAIsAnErrorAndLeftAlone(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(s, other *ControlPlane) string // returns the file the error must name
	}{
		{"garbage CA certificate", func(s, _ *ControlPlane) string {
			os.WriteFile(s.ClientCA, []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), 0o644)
			return s.ClientCA
		}},
		{"empty CA certificate", func(s, _ *ControlPlane) string { os.WriteFile(s.ServerCA, nil, 0o644); return s.ServerCA }},
		{"garbage CA key", func(s, _ *ControlPlane) string {
			os.WriteFile(s.ServerCAKey, []byte("junk"), 0o600)
			return s.ServerCAKey
		}},
		{"missing CA key", func(s, _ *ControlPlane) string { os.Remove(s.RequestHeaderCAKey); return s.RequestHeaderCAKey }},
		{"CA key of another CA", func(s, other *ControlPlane) string {
			data, _ := os.ReadFile(other.ClientCAKey)
			os.WriteFile(s.ClientCAKey, data, 0o600)
			return s.ClientCAKey
		}},
		{"leaf where the CA belongs", func(s, _ *ControlPlane) string {
			data, _ := os.ReadFile(s.AdminCert)
			os.WriteFile(s.ClientCA, data, 0o644)
			key, _ := os.ReadFile(s.AdminKey)
			os.WriteFile(s.ClientCAKey, key, 0o600)
			return s.ClientCA
		}},
		{"garbage service-account key", func(s, _ *ControlPlane) string {
			os.WriteFile(s.ServiceAccountKey, []byte("junk"), 0o600)
			return s.ServiceAccountKey
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := testControlPlaneOptions(t)
			s := mustEnsureControlPlane(t, opts)
			other := mustEnsureControlPlane(t, testControlPlaneOptions(t))
			file := tc.damage(s, other)
			before := snapshot(t, s.Dir, s.CredDir)
			_, err := EnsureControlPlane(opts)
			if err == nil || !strings.Contains(err.Error(), file) {
				t.Fatalf("EnsureControlPlane = %v, want an error naming %s", err, file)
			}
			if diff := changed(before, snapshot(t, s.Dir, s.CredDir)); len(diff) > 0 {
				t.Errorf("failed EnsureControlPlane changed %v", diff)
			}
		})
	}
}

func TestCAKeyWithoutCertificateIsCompleted(t *testing.T) {
	// What a crash between writing a new CA's key and its certificate leaves behind.
	opts := testControlPlaneOptions(t)
	s := mustEnsureControlPlane(t, opts)
	key, err := os.ReadFile(s.ClientCAKey)
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(s.ClientCA)
	mustEnsureControlPlane(t, opts)
	after, _ := os.ReadFile(s.ClientCAKey)
	if string(after) != string(key) {
		t.Error("the surviving CA key was replaced")
	}
	verifyLeaf(t, s.AdminCert, s.ClientCA, x509.ExtKeyUsageClientAuth)
}

func TestExpiredCAIsAnError(t *testing.T) {
	opts := testControlPlaneOptions(t)
	mustEnsureControlPlane(t, opts)
	setClock(t, time.Now().Add(11*365*24*time.Hour))
	if _, err := EnsureControlPlane(opts); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("EnsureControlPlane with expired CAs = %v, want an error", err)
	}
}

func TestServerOptionsChecked(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(*ControlPlaneOptions)
		want   string
	}{
		{"no dir", func(o *ControlPlaneOptions) { o.Dir = "" }, "Dir"},
		{"no cred dir", func(o *ControlPlaneOptions) { o.CredDir = "" }, "CredDir"},
		{"no service IP", func(o *ControlPlaneOptions) { o.ServiceIP = nil }, "ServiceIP"},
		{"http URL", func(o *ControlPlaneOptions) { o.APIServerURL = "http://127.0.0.1:6443" }, "APIServerURL"},
	} {
		opts := testControlPlaneOptions(t)
		tc.change(&opts)
		if _, err := EnsureControlPlane(opts); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: EnsureControlPlane = %v, want an error about %s", tc.name, err, tc.want)
		}
	}
}

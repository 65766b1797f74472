package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"

	certutil "k8s.io/client-go/util/cert"
	"k8s.io/client-go/util/keyutil"
	"k8s.io/klog/v2"
)

const (
	// caValidity is what certutil.NewSelfSignedCACert gives every CA; it takes no duration.
	caValidity   = 10 * 365 * 24 * time.Hour
	leafValidity = 365 * 24 * time.Hour
	// renewBefore leaves a quarter of a year for a cluster that is rarely restarted to pick up
	// a renewed certificate before the old one runs out.
	renewBefore = 90 * 24 * time.Hour
	// backdate lets nodes whose clocks run a little behind accept fresh certificates.
	backdate = time.Hour
)

// now is the package's clock, replaced in tests to age certificates without waiting.
var now = time.Now

// leafSpec is what a leaf certificate must say. Anything else about it is ketch's choice.
type leafSpec struct {
	commonName string
	orgs       []string
	usage      x509.ExtKeyUsage
	// alsoUsage is a second usage for certificates that both serve and dial (etcd peers).
	alsoUsage []x509.ExtKeyUsage
	sans      certutil.AltNames
}

func newKeyPair() ([]byte, crypto.Signer, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	keyPEM, err := keyutil.MarshalPrivateKeyToPEM(key)
	if err != nil {
		return nil, nil, err
	}
	return keyPEM, key, nil
}

// sign issues a leaf certificate for pub and returns it PEM-encoded.
func (ca *authority) sign(spec leafSpec, pub crypto.PublicKey) ([]byte, error) {
	t := now()
	notAfter := t.Add(leafValidity)
	if notAfter.After(ca.cert.NotAfter) {
		notAfter = ca.cert.NotAfter
	}
	return ca.signUntil(spec, pub, notAfter)
}

func (ca *authority) signUntil(spec leafSpec, pub crypto.PublicKey, notAfter time.Time) ([]byte, error) {
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: spec.commonName, Organization: spec.orgs},
		DNSNames:              spec.sans.DNSNames,
		IPAddresses:           spec.sans.IPs,
		NotBefore:             now().Add(-backdate),
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           append([]x509.ExtKeyUsage{spec.usage}, spec.alsoUsage...),
		BasicConstraintsValid: true,
	}
	// TLS 1.2's RSA key exchange encrypts to the certificate's key; ECDSA keys never do.
	if _, ok := pub.(*rsa.PublicKey); ok {
		tmpl.KeyUsage |= x509.KeyUsageKeyEncipherment
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, pub, ca.key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: certutil.CertificateBlockType, Bytes: der}), nil
}

// ensureLeaf keeps the certificate at certPath/keyPath if it still does its job for spec, and
// otherwise issues a new one with a new key.
func (ca *authority) ensureLeaf(spec leafSpec, certPath, keyPath string) error {
	reason, err := ca.leafProblem(spec, certPath, keyPath)
	if err != nil || reason == "" {
		return err
	}
	klog.Infof("pki: issuing %s (%s)", certPath, reason)
	keyPEM, key, err := newKeyPair()
	if err != nil {
		return fmt.Errorf("generating key %s: %w", keyPath, err)
	}
	certPEM, err := ca.sign(spec, key.Public())
	if err != nil {
		return fmt.Errorf("signing %s: %w", certPath, err)
	}
	// Key first: a crash between the writes leaves a pair that does not match, which the next
	// start re-issues, rather than a new certificate next to a key nobody has.
	if err := writeFileAtomic(keyPath, keyPEM, keyMode); err != nil {
		return err
	}
	return writeFileAtomic(certPath, certPEM, certMode)
}

// leafProblem says why the certificate at certPath/keyPath must be re-issued, or "" if it need
// not be. Damaged leaf files are a reason, not an error: re-issuing them loses nothing.
func (ca *authority) leafProblem(spec leafSpec, certPath, keyPath string) (string, error) {
	certPEM, ok, err := readOptional(certPath)
	if err != nil || !ok {
		return "no certificate yet", err
	}
	keyPEM, ok, err := readOptional(keyPath)
	if err != nil || !ok {
		return "its key " + keyPath + " is missing", err
	}
	return ca.pairProblem(spec, certPEM, keyPEM), nil
}

// pairProblem says why a certificate and its key must be re-issued, or "".
func (ca *authority) pairProblem(spec leafSpec, certPEM, keyPEM []byte) string {
	key, err := parseSigner(keyPEM)
	if err != nil {
		return "its key does not parse: " + err.Error()
	}
	certs, err := certutil.ParseCertsPEM(certPEM)
	if err != nil {
		return "it does not parse: " + err.Error()
	}
	cert := certs[0]
	if !publicKeysEqual(key.Public(), cert.PublicKey) {
		return "it does not match its key"
	}
	return ca.certProblem(spec, cert)
}

func (ca *authority) certProblem(spec leafSpec, cert *x509.Certificate) string {
	t := now()
	if _, err := cert.Verify(x509.VerifyOptions{
		Roots:       ca.pool,
		CurrentTime: t,
		KeyUsages:   []x509.ExtKeyUsage{spec.usage},
	}); err != nil {
		return "it does not verify against its CA: " + err.Error()
	}
	for _, u := range spec.alsoUsage {
		if !slices.Contains(cert.ExtKeyUsage, u) {
			return "it lacks a key usage it needs"
		}
	}
	if left := cert.NotAfter.Sub(t); left < renewBefore {
		return fmt.Sprintf("it expires in %s", left.Round(time.Hour))
	}
	if cert.Subject.CommonName != spec.commonName || !sameSet(cert.Subject.Organization, spec.orgs) {
		return fmt.Sprintf("its subject is %q, want CN=%s O=%v", cert.Subject, spec.commonName, spec.orgs)
	}
	for _, name := range spec.sans.DNSNames {
		if !slices.ContainsFunc(cert.DNSNames, func(n string) bool { return strings.EqualFold(n, name) }) {
			return "it lacks the name " + name
		}
	}
	for _, ip := range spec.sans.IPs {
		if !slices.ContainsFunc(cert.IPAddresses, ip.Equal) {
			return "it lacks the address " + ip.String()
		}
	}
	return ""
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(slices.Compact(a), slices.Compact(b))
}

// addSANs adds names to alt without duplicates; an IP literal becomes an IP SAN, as users
// expect of --tls-san 192.0.2.10.
func addSANs(alt *certutil.AltNames, names ...string) {
	for _, n := range names {
		if n == "" {
			continue
		}
		if ip := net.ParseIP(n); ip != nil {
			addIPs(alt, ip)
		} else if !slices.ContainsFunc(alt.DNSNames, func(d string) bool { return strings.EqualFold(d, n) }) {
			alt.DNSNames = append(alt.DNSNames, n)
		}
	}
}

func addIPs(alt *certutil.AltNames, ips ...net.IP) {
	for _, ip := range ips {
		if ip != nil && !slices.ContainsFunc(alt.IPs, ip.Equal) {
			alt.IPs = append(alt.IPs, ip)
		}
	}
}

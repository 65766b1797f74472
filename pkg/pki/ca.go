package pki

import (
	"crypto"
	"crypto/x509"
	"fmt"
	"time"

	certutil "k8s.io/client-go/util/cert"
	"k8s.io/client-go/util/keyutil"
)

// authority is a loaded CA, ready to sign.
type authority struct {
	cert    *x509.Certificate
	key     crypto.Signer
	certPEM []byte
	pool    *x509.CertPool
}

// loadOrCreateCA loads the CA at certPath/keyPath, creating it only when neither file exists.
//
// A key without its certificate is what a crash between the two writes of a new CA leaves;
// nothing can have been signed yet, so the certificate is made from that key. A certificate
// without its key, or any file that does not parse, is an error: a new CA would orphan every
// certificate the old one issued.
func loadOrCreateCA(certPath, keyPath, name string) (*authority, error) {
	certPEM, certExists, err := readOptional(certPath)
	if err != nil {
		return nil, err
	}
	keyPEM, keyExists, err := readOptional(keyPath)
	if err != nil {
		return nil, err
	}
	switch {
	case certExists && !keyExists:
		return nil, fmt.Errorf("CA certificate %s exists but its key %s does not; restore the key (ketch never replaces a CA)", certPath, keyPath)
	case certExists:
		return parseCA(certPath, keyPath, certPEM, keyPEM)
	}

	var key crypto.Signer
	if keyExists {
		if key, err = parseSigner(keyPEM); err != nil {
			return nil, fmt.Errorf("CA key %s: %w (ketch never replaces a CA)", keyPath, err)
		}
	} else {
		if keyPEM, key, err = newKeyPair(); err != nil {
			return nil, fmt.Errorf("generating key for CA %s: %w", certPath, err)
		}
		if err := writeFileAtomic(keyPath, keyPEM, keyMode); err != nil {
			return nil, err
		}
	}
	// The timestamp makes the CA's name unique per cluster, so a kubeconfig trusting another
	// ketch cluster's CA fails with a name mismatch that says so.
	cert, err := certutil.NewSelfSignedCACert(certutil.Config{
		CommonName: fmt.Sprintf("ketch-%s@%d", name, now().Unix()),
		NotBefore:  now().Add(-backdate),
	}, key)
	if err != nil {
		return nil, fmt.Errorf("creating CA certificate %s: %w", certPath, err)
	}
	certPEM, err = certutil.EncodeCertificates(cert)
	if err != nil {
		return nil, fmt.Errorf("encoding CA certificate %s: %w", certPath, err)
	}
	if err := writeFileAtomic(certPath, certPEM, certMode); err != nil {
		return nil, err
	}
	return newAuthority(cert, key, certPEM), nil
}

func parseCA(certPath, keyPath string, certPEM, keyPEM []byte) (*authority, error) {
	certs, err := certutil.ParseCertsPEM(certPEM)
	if err != nil {
		return nil, fmt.Errorf("CA certificate %s: %w (ketch never replaces a CA)", certPath, err)
	}
	cert := certs[0]
	if !cert.IsCA {
		return nil, fmt.Errorf("CA certificate %s is not a CA certificate (ketch never replaces a CA)", certPath)
	}
	key, err := parseSigner(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("CA key %s: %w (ketch never replaces a CA)", keyPath, err)
	}
	if !publicKeysEqual(key.Public(), cert.PublicKey) {
		return nil, fmt.Errorf("CA key %s does not belong to CA certificate %s (ketch never replaces a CA)", keyPath, certPath)
	}
	if t := now(); t.After(cert.NotAfter) {
		return nil, fmt.Errorf("CA certificate %s expired on %s; every certificate it signed is invalid and the cluster's PKI must be rotated by hand", certPath, cert.NotAfter.Format(time.RFC3339))
	}
	return newAuthority(cert, key, certPEM), nil
}

func newAuthority(cert *x509.Certificate, key crypto.Signer, certPEM []byte) *authority {
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &authority{cert: cert, key: key, certPEM: certPEM, pool: pool}
}

func parseSigner(keyPEM []byte) (crypto.Signer, error) {
	k, err := keyutil.ParsePrivateKeyPEM(keyPEM)
	if err != nil {
		return nil, err
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("private key of type %T cannot sign", k)
	}
	return s, nil
}

func publicKeysEqual(a, b crypto.PublicKey) bool {
	eq, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && eq.Equal(b)
}

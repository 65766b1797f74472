package pki

import (
	"crypto/x509"
	"errors"

	certutil "k8s.io/client-go/util/cert"
)

// EnsureServing returns a serving certificate and key for an in-cluster service that the
// server's own clients reach by one of dnsNames (the first is the subject): certPEM and keyPEM
// when they still do that job (signed by the server CA, not near expiry, with every name), and a
// new pair otherwise, with reissued saying so. It touches no files: the caller keeps the pair
// where the service reads it (a Secret).
func (s *ControlPlane) EnsureServing(dnsNames []string, certPEM, keyPEM []byte) (cert, key []byte, reissued string, err error) {
	if len(dnsNames) == 0 {
		return nil, nil, "", errors.New("pki: a serving certificate without a name")
	}
	var sans certutil.AltNames
	addSANs(&sans, dnsNames...)
	spec := leafSpec{commonName: dnsNames[0], usage: x509.ExtKeyUsageServerAuth, sans: sans}
	reason := "no certificate yet"
	if len(certPEM) > 0 {
		reason = s.serverCA.pairProblem(spec, certPEM, keyPEM)
	}
	if reason == "" {
		return certPEM, keyPEM, "", nil
	}
	keyPEM, signer, err := newKeyPair()
	if err != nil {
		return nil, nil, "", err
	}
	certPEM, err = s.serverCA.sign(spec, signer.Public())
	if err != nil {
		return nil, nil, "", err
	}
	return certPEM, keyPEM, reason, nil
}

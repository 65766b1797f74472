package pki

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"

	"k8s.io/client-go/util/keyutil"
)

// serviceAccountKeyBits: kube-apiserver signs tokens with RSA (RS256) or ECDSA keys, but RS256
// is the one algorithm every OIDC relying party must accept (OIDC Discovery 1.0), and the
// issuer's discovery document advertises whichever the key implies. RSA keeps service-account
// token federation (cloud workload identity, Vault, ...) working.
const serviceAccountKeyBits = 2048

// ensureServiceAccountKey keeps the token signing key like a CA: replacing it would invalidate
// every issued token. The public half is re-derived each time, so it cannot drift from the key.
func ensureServiceAccountKey(keyPath, pubPath string) error {
	keyPEM, exists, err := readOptional(keyPath)
	if err != nil {
		return err
	}
	if !exists {
		key, err := rsa.GenerateKey(rand.Reader, serviceAccountKeyBits)
		if err != nil {
			return fmt.Errorf("generating service-account key %s: %w", keyPath, err)
		}
		if keyPEM, err = keyutil.MarshalPrivateKeyToPEM(key); err != nil {
			return fmt.Errorf("encoding service-account key %s: %w", keyPath, err)
		}
		if err := writeFileAtomic(keyPath, keyPEM, keyMode); err != nil {
			return err
		}
	}
	key, err := parseSigner(keyPEM)
	if err != nil {
		return fmt.Errorf("service-account key %s: %w (ketch never replaces it: every token signed with it would stop working)", keyPath, err)
	}
	der, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		return fmt.Errorf("service-account key %s: %w", keyPath, err)
	}
	return writeIfChanged(pubPath, pem.EncodeToMemory(&pem.Block{Type: keyutil.PublicKeyBlockType, Bytes: der}), certMode)
}

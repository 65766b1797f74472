package token

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/kubernetes"
	bootstrapapi "k8s.io/cluster-bootstrap/token/api"
	bootstraputil "k8s.io/cluster-bootstrap/token/util"
)

// Agent tokens are bootstrap-token Secrets (kube-system/bootstrap-token-<id>), the format
// kubeadm uses, so that kube-controller-manager's tokencleaner deletes expired ones. They carry
// no bootstrap usages: kube-apiserver does not accept them, only the supervisor does.

// ErrRefused is any reason a credential is not accepted; callers must not tell the client which.
var ErrRefused = errors.New("token refused")

// Info describes a stored agent token, without its secret.
type Info struct {
	ID          string
	Description string
	Expires     time.Time // zero: never
}

// Create stores a new agent token and returns it; ttl 0 means it never expires.
func Create(ctx context.Context, client kubernetes.Interface, caBundle []byte, ttl time.Duration, description string) (Token, error) {
	raw, err := bootstraputil.GenerateBootstrapToken()
	if err != nil {
		return Token{}, fmt.Errorf("generating a token: %w", err)
	}
	t, err := parseCredential(raw)
	if err != nil {
		return Token{}, err
	}
	t.CAHash = CAHash(caBundle)
	data := map[string][]byte{
		bootstrapapi.BootstrapTokenIDKey:     []byte(t.Username),
		bootstrapapi.BootstrapTokenSecretKey: []byte(t.Password),
	}
	if description != "" {
		data[bootstrapapi.BootstrapTokenDescriptionKey] = []byte(description)
	}
	if ttl > 0 {
		data[bootstrapapi.BootstrapTokenExpirationKey] = []byte(time.Now().Add(ttl).UTC().Format(time.RFC3339))
	}
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: bootstraputil.BootstrapTokenSecretName(t.Username), Namespace: metav1.NamespaceSystem},
		Type:       bootstrapapi.SecretTypeBootstrapToken,
		Data:       data,
	}
	if _, err := client.CoreV1().Secrets(metav1.NamespaceSystem).Create(ctx, secret, metav1.CreateOptions{}); err != nil {
		return Token{}, fmt.Errorf("storing the token: %w", err)
	}
	return t, nil
}

// List returns the stored agent tokens, ordered by ID.
func List(ctx context.Context, client kubernetes.Interface) ([]Info, error) {
	list, err := client.CoreV1().Secrets(metav1.NamespaceSystem).List(ctx, metav1.ListOptions{
		FieldSelector: fields.OneTermEqualSelector("type", string(bootstrapapi.SecretTypeBootstrapToken)).String(),
	})
	if err != nil {
		return nil, fmt.Errorf("listing tokens: %w", err)
	}
	var out []Info
	for _, s := range list.Items {
		info := Info{ID: string(s.Data[bootstrapapi.BootstrapTokenIDKey]), Description: string(s.Data[bootstrapapi.BootstrapTokenDescriptionKey])}
		if exp := s.Data[bootstrapapi.BootstrapTokenExpirationKey]; len(exp) > 0 {
			info.Expires, _ = time.Parse(time.RFC3339, string(exp))
		}
		out = append(out, info)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// Delete removes an agent token; id may also be a whole token.
func Delete(ctx context.Context, client kubernetes.Interface, id string) error {
	if t, err := Parse(id); err == nil {
		id = t.Username
	}
	if !bootstraputil.IsValidBootstrapTokenID(id) {
		return fmt.Errorf("%q is not a token ID (6 lowercase letters or digits, as `ketch token list` shows)", id)
	}
	err := client.CoreV1().Secrets(metav1.NamespaceSystem).Delete(ctx, bootstraputil.BootstrapTokenSecretName(id), metav1.DeleteOptions{})
	if apierrors.IsNotFound(err) {
		return fmt.Errorf("no token with ID %s", id)
	}
	if err != nil {
		return fmt.Errorf("deleting token %s: %w", id, err)
	}
	return nil
}

// Validate checks an agent token's ID and secret against the stored Secret. Every refusal is
// ErrRefused wrapped with the reason, for the server's log only.
func Validate(ctx context.Context, client kubernetes.Interface, id, secret string, now time.Time) error {
	if !bootstraputil.IsValidBootstrapTokenID(id) {
		return fmt.Errorf("%w: malformed token ID", ErrRefused)
	}
	s, err := client.CoreV1().Secrets(metav1.NamespaceSystem).Get(ctx, bootstraputil.BootstrapTokenSecretName(id), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return fmt.Errorf("%w: no token with ID %s", ErrRefused, id)
	}
	if err != nil {
		return fmt.Errorf("looking up token %s: %w", id, err)
	}
	if s.Type != bootstrapapi.SecretTypeBootstrapToken || !Equal(string(s.Data[bootstrapapi.BootstrapTokenSecretKey]), secret) {
		return fmt.Errorf("%w: wrong secret for token %s", ErrRefused, id)
	}
	if exp := s.Data[bootstrapapi.BootstrapTokenExpirationKey]; len(exp) > 0 {
		t, err := time.Parse(time.RFC3339, string(exp))
		if err != nil || now.After(t) {
			return fmt.Errorf("%w: token %s expired at %s", ErrRefused, id, exp)
		}
	}
	return nil
}

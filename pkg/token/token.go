// Package token is the cluster's join tokens: their text format, the server token kept in
// <data-dir>/server/token, and agent tokens stored as bootstrap-token Secrets.
//
// A token reads K10<sha256 of the server CA bundle, hex>::<username>:<password> for the server
// token (username "server") and K10<hash>::<id>.<secret> for agent tokens, as with k3s. The
// hash lets a joining node check the CA it downloads before it sends any secret.
package token

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/google/renameio/v2"
	bootstraputil "k8s.io/cluster-bootstrap/token/util"
)

const (
	prefix = "K10"
	// ServerUser is the username part of the server token.
	ServerUser = "server"
)

// Token is a parsed join token. CAHash is empty for a bare secret (a server may be given one).
type Token struct {
	CAHash string
	// Username is "server", or the ID of an agent token.
	Username string
	Password string
}

var (
	hashPattern  = regexp.MustCompile(`^[0-9a-f]{64}$`)
	secretSyntax = regexp.MustCompile(`^[A-Za-z0-9._~+/=-]{8,256}$`)
)

// Parse reads a join token: a full one, K10<hash>::server:<secret> or K10<hash>::<id>.<secret>,
// or only the server's secret (as given to the server with --token). A bare secret names no CA:
// the server proves instead that it knows the secret (CAProof), so that a cluster whose
// nodes share one secret from the start (docker compose) needs no token copied after it.
func Parse(s string) (Token, error) {
	s = strings.TrimSpace(s)
	if !strings.HasPrefix(s, prefix) {
		if bootstraputil.IsValidBootstrapToken(s) {
			return Token{}, errors.New("an agent token starts with K10<hash>::; copy it whole from `ketch token create`")
		}
		if secretSyntax.MatchString(s) {
			return Token{Username: ServerUser, Password: s}, nil
		}
		return Token{}, errors.New("a join token starts with K10, or is the server's secret (8 to 256 letters, digits or ._~+/=-); copy it whole from the server's <data-dir>/server/token or from `ketch token create`")
	}
	hash, cred, ok := strings.Cut(strings.TrimPrefix(s, prefix), "::")
	if !ok || !hashPattern.MatchString(hash) {
		return Token{}, errors.New("the join token is damaged: after K10 it must have 64 hex digits and then ::")
	}
	t, err := parseCredential(cred)
	if err != nil {
		return Token{}, err
	}
	t.CAHash = hash
	return t, nil
}

// ParseServer reads a token given to a server: a full token, or only its secret.
func ParseServer(s string) (Token, error) {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, prefix) {
		t, err := Parse(s)
		if err == nil && t.Username != ServerUser {
			return Token{}, errors.New("an agent token cannot be a server's --token; give the server token or a new secret")
		}
		return t, err
	}
	if !secretSyntax.MatchString(s) {
		return Token{}, errors.New("a server --token must be a K10 token or a secret of 8 to 256 letters, digits or ._~+/=-")
	}
	return Token{Username: ServerUser, Password: s}, nil
}

func parseCredential(cred string) (Token, error) {
	if user, pass, ok := strings.Cut(cred, ":"); ok && user == ServerUser {
		if !secretSyntax.MatchString(pass) {
			return Token{}, errors.New("the join token's secret is damaged")
		}
		return Token{Username: user, Password: pass}, nil
	}
	if bootstraputil.IsValidBootstrapToken(cred) {
		id, secret, _ := strings.Cut(cred, ".")
		return Token{Username: id, Password: secret}, nil
	}
	return Token{}, errors.New("the join token's credential is neither server:<secret> nor <id>.<secret>")
}

// String is the token's text form.
func (t Token) String() string {
	return prefix + t.CAHash + "::" + t.Credential()
}

// Credential is the part after the hash.
func (t Token) Credential() string {
	if t.Username == ServerUser {
		return ServerUser + ":" + t.Password
	}
	return t.Username + "." + t.Password
}

// CAHash is the hash of a CA bundle as tokens carry it.
func CAHash(caBundle []byte) string {
	sum := sha256.Sum256(caBundle)
	return hex.EncodeToString(sum[:])
}

// MatchesCA is whether caBundle is the one the token names.
func (t Token) MatchesCA(caBundle []byte) bool {
	return subtle.ConstantTimeCompare([]byte(t.CAHash), []byte(CAHash(caBundle))) == 1
}

// CAProof is the server's proof, sent with its CA bundle, that it knows the server secret: an
// HMAC-SHA256 of the bundle keyed with the secret. A joining node that has only the secret checks
// the bundle with it, as it would check the hash of a full token. (Like any proof keyed with a
// secret, it lets a secret guessed offline be confirmed: a chosen --token must be long and
// random; the one ketch makes is 32 random characters.)
func CAProof(secret string, caBundle []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte("ketch cacerts\x00"))
	mac.Write(caBundle)
	return hex.EncodeToString(mac.Sum(nil))
}

// VerifyCA is whether caBundle is the CA the token names: by its hash for a full token, by the
// server's proof for a bare secret.
func (t Token) VerifyCA(caBundle []byte, proof string) bool {
	if t.CAHash == "" {
		return t.Username == ServerUser && hmac.Equal([]byte(proof), []byte(CAProof(t.Password, caBundle)))
	}
	return t.MatchesCA(caBundle)
}

// Equal compares two secrets in constant time.
func Equal(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }

// EnsureServerToken returns the server token, written to path: the given one if any (a full
// token must name this CA), else the one already in path, else a new one.
func EnsureServerToken(path string, caBundle []byte, given string) (Token, error) {
	hash := CAHash(caBundle)
	var t Token
	switch {
	case given != "":
		var err error
		if t, err = ParseServer(given); err != nil {
			return Token{}, fmt.Errorf("--token: %w", err)
		}
		if t.CAHash != "" && t.CAHash != hash {
			return Token{}, errors.New("--token names another cluster's CA: its hash does not match this server's CA; give only the secret part or this cluster's token")
		}
	default:
		data, err := os.ReadFile(path)
		if err == nil {
			if t, err = Parse(string(data)); err != nil {
				return Token{}, fmt.Errorf("%s: %w; delete it to get a new token", path, err)
			}
			if t.CAHash != hash {
				return Token{}, fmt.Errorf("%s names another CA than this server's; delete it to get a new token", path)
			}
			return t, nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return Token{}, fmt.Errorf("reading the server token: %w", err)
		}
		if t.Password, err = randomSecret(); err != nil {
			return Token{}, err
		}
		t.Username = ServerUser
	}
	t.CAHash = hash
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return Token{}, fmt.Errorf("writing the server token: %w", err)
	}
	if err := renameio.WriteFile(path, []byte(t.String()+"\n"), 0o600); err != nil {
		return Token{}, fmt.Errorf("writing the server token: %w", err)
	}
	return t, nil
}

// ReadFile reads a token file, as --token-file names it.
func ReadFile(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("reading the token file: %w", err)
	}
	return strings.TrimSpace(string(data)), nil
}

func randomSecret() (string, error) {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generating a token secret: %w", err)
	}
	return hex.EncodeToString(b), nil
}

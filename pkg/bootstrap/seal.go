package bootstrap

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Key is where servers on an external etcd keep the sealed bundle. One fixed key, not one per
// token (as k3s has): a server given another token finds the cluster's data and is refused,
// instead of starting a second set of CAs on the same data.
const Key = "/ketch/bootstrap"

// kdfIterations makes each guess at a token cost as much as OWASP advises for PBKDF2-SHA256;
// a server pays it once per start.
const kdfIterations = 600_000

// sealed is the stored form: the salt and nonce in the clear, the bundle encrypted and
// authenticated with AES-256-GCM under a key derived from the token's secret.
type sealed struct {
	Version    int    `json:"version"`
	Salt       []byte `json:"salt"`
	Nonce      []byte `json:"nonce"`
	Ciphertext []byte `json:"ciphertext"`
}

// ErrWrongToken is bootstrap data that the token given cannot open.
var ErrWrongToken = errors.New("the datastore holds this cluster's bootstrap data, but this server's token cannot decrypt it: give every server the token of the first one")

func aead(secret string, salt []byte) (cipher.AEAD, error) {
	key, err := pbkdf2.Key(sha256.New, secret, salt, kdfIterations, 32)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// Seal encrypts the bundle with a key derived from secret.
func Seal(b *Bundle, secret string) ([]byte, error) {
	plain, err := json.Marshal(b)
	if err != nil {
		return nil, err
	}
	s := sealed{Version: 1, Salt: make([]byte, 16)}
	if _, err := rand.Read(s.Salt); err != nil {
		return nil, err
	}
	gcm, err := aead(secret, s.Salt)
	if err != nil {
		return nil, err
	}
	s.Nonce = make([]byte, gcm.NonceSize())
	if _, err := rand.Read(s.Nonce); err != nil {
		return nil, err
	}
	s.Ciphertext = gcm.Seal(nil, s.Nonce, plain, []byte(Key))
	return json.Marshal(s)
}

// Open decrypts what Seal made; a wrong secret is ErrWrongToken.
func Open(data []byte, secret string) (*Bundle, error) {
	var s sealed
	if err := json.Unmarshal(data, &s); err != nil || s.Version != 1 {
		return nil, fmt.Errorf("the bootstrap data at %s is damaged or from a newer ketch (version %d): %v", Key, s.Version, err)
	}
	gcm, err := aead(secret, s.Salt)
	if err != nil {
		return nil, err
	}
	if len(s.Nonce) != gcm.NonceSize() {
		return nil, fmt.Errorf("the bootstrap data at %s is damaged", Key)
	}
	plain, err := gcm.Open(nil, s.Nonce, s.Ciphertext, []byte(Key))
	if err != nil {
		return nil, ErrWrongToken
	}
	var b Bundle
	if err := json.Unmarshal(plain, &b); err != nil {
		return nil, fmt.Errorf("the bootstrap data at %s: %w", Key, err)
	}
	return &b, b.check()
}

// Load reads and opens the cluster's bundle from the datastore; found is false if no server
// has stored one yet.
func Load(ctx context.Context, kv clientv3.KV, secret string) (b *Bundle, found bool, err error) {
	resp, err := kv.Get(ctx, Key)
	if err != nil {
		return nil, false, fmt.Errorf("reading the cluster's bootstrap data: %w", err)
	}
	if len(resp.Kvs) == 0 {
		return nil, false, nil
	}
	b, err = Open(resp.Kvs[0].Value, secret)
	return b, true, err
}

// StoreFirst stores b unless another server stored a bundle first, and returns the one that
// is stored: b, or the other server's (opened with secret).
func StoreFirst(ctx context.Context, kv clientv3.KV, secret string, b *Bundle) (*Bundle, error) {
	data, err := Seal(b, secret)
	if err != nil {
		return nil, err
	}
	resp, err := kv.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(Key), "=", 0)).
		Then(clientv3.OpPut(Key, string(data))).Else(clientv3.OpGet(Key)).Commit()
	if err != nil {
		return nil, fmt.Errorf("storing the cluster's bootstrap data: %w", err)
	}
	if resp.Succeeded {
		return b, nil
	}
	return Open(resp.Responses[0].GetResponseRange().Kvs[0].Value, secret)
}

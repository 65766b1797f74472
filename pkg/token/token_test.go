package token

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var ca = []byte("-----BEGIN CERTIFICATE-----\nnot really\n-----END CERTIFICATE-----\n")

func TestParseRoundTrip(t *testing.T) {
	hash := CAHash(ca)
	for _, s := range []string{
		"K10" + hash + "::server:0123456789abcdef",
		"K10" + hash + "::abcdef.0123456789abcdef",
	} {
		tok, err := Parse(s + "\n")
		if err != nil {
			t.Fatalf("Parse(%q): %v", s, err)
		}
		if tok.String() != s || !tok.MatchesCA(ca) {
			t.Errorf("Parse(%q) = %+v, String %q", s, tok, tok.String())
		}
	}
}

// A bare secret is the server token without a CA hash: the server's proof stands in for it.
func TestBareSecret(t *testing.T) {
	tok, err := Parse("my-cluster-secret-0123")
	if err != nil || tok.Username != ServerUser || tok.Password != "my-cluster-secret-0123" || tok.CAHash != "" {
		t.Fatalf("Parse of a bare secret = %+v, %v", tok, err)
	}
	proof := CAProof("my-cluster-secret-0123", ca)
	if !tok.VerifyCA(ca, proof) {
		t.Error("the server's proof does not verify")
	}
	for name, bad := range map[string]string{
		"no proof":                      "",
		"a proof with another secret":   CAProof("another-secret-0123", ca),
		"a proof for another CA bundle": CAProof("my-cluster-secret-0123", append([]byte("x"), ca...)),
	} {
		if tok.VerifyCA(ca, bad) {
			t.Errorf("%s verifies", name)
		}
	}
	full, err := Parse("K10" + CAHash(ca) + "::server:my-cluster-secret-0123")
	if err != nil || !full.VerifyCA(ca, "") || full.VerifyCA(append([]byte("x"), ca...), proof) {
		t.Errorf("a full token is checked by its hash alone: %+v, %v", full, err)
	}
}

func TestParseRejects(t *testing.T) {
	hash := CAHash(ca)
	for s, want := range map[string]string{
		"abcdef.0123456789abcdef":           "starts with K10",
		"short":                             "starts with K10",
		"K10abc::server:0123456789":         "64 hex digits",
		"K10" + hash + "server:0123456789":  "64 hex digits",
		"K10" + hash + "::node:0123456789":  "neither",
		"K10" + hash + "::ABCDEF.012345678": "neither",
		"K10" + hash + "::server:short":     "damaged",
	} {
		if _, err := Parse(s); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Parse(%q) = %v, want an error containing %q", s, err, want)
		}
	}
	if _, err := ParseServer("K10" + hash + "::abcdef.0123456789abcdef"); err == nil {
		t.Error("ParseServer accepted an agent token")
	}
	if tok, err := ParseServer("my-cluster-secret"); err != nil || tok.Password != "my-cluster-secret" || tok.CAHash != "" {
		t.Errorf("ParseServer(bare secret) = %+v, %v", tok, err)
	}
}

func TestEnsureServerToken(t *testing.T) {
	path := filepath.Join(t.TempDir(), "server", "token")
	first, err := EnsureServerToken(path, ca, "")
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("token file: %v, %v", fi, err)
	}
	again, err := EnsureServerToken(path, ca, "")
	if err != nil || again != first {
		t.Fatalf("second start: %+v, %v; want the same token %+v", again, err, first)
	}
	given, err := EnsureServerToken(path, ca, "a-secret-from-the-operator")
	if err != nil || given.Password != "a-secret-from-the-operator" || !given.MatchesCA(ca) {
		t.Fatalf("given secret: %+v, %v", given, err)
	}
	otherCA := []byte("another CA")
	if _, err := EnsureServerToken(path, otherCA, ""); err == nil || !strings.Contains(err.Error(), "another CA") {
		t.Errorf("token file of another CA: %v", err)
	}
	if _, err := EnsureServerToken(path, ca, "K10"+CAHash(otherCA)+"::server:0123456789"); err == nil || !strings.Contains(err.Error(), "another cluster") {
		t.Errorf("--token of another CA: %v", err)
	}
	// A refused --token leaves the stored one alone.
	if tok, err := EnsureServerToken(path, ca, ""); err != nil || tok != given {
		t.Errorf("after refusals: %+v, %v; want %+v", tok, err, given)
	}
}

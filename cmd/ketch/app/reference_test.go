package app

import (
	"os"
	"testing"
)

// TestReferenceIsCurrent fails when docs/reference.md no longer says what the flags are.
func TestReferenceIsCurrent(t *testing.T) {
	const path = "../../../docs/reference.md"
	have, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(have) != Reference(New()) {
		t.Fatalf("%s is stale: run `make docs` and commit the result", path)
	}
}

package mcpauth

import (
	"bytes"
	"testing"
)

// TestHashSecret: secrets have 256 bits and are stored as SHA-256.
func TestHashSecret(t *testing.T) {
	a, b := newSecret(), newSecret()
	if len(a) != 43 || a == b {
		t.Fatalf("newSecret: %q, %q", a, b)
	}
	if bytes.Contains(hashSecret(a), []byte(a)) || len(hashSecret(a)) != 32 {
		t.Fatal("hashSecret does not hash")
	}
}

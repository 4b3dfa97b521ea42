package mcpauth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
)

// Storage lives in package authstore; the server hands it only hashes.
// Every code, token and client secret is a random value made here, shown
// once to its owner, and stored as its SHA-256 hash.

// newSecret returns a random value with 256 bits of entropy, base64url
// encoded without padding (43 characters).
func newSecret() string {
	var b [32]byte
	rand.Read(b[:]) // never fails
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// newID returns a random identifier that people copy into commands (a
// grant ID for "grants revoke ID"): a secret that does not begin with "-",
// which a command line would take for a flag.
func newID() string {
	for {
		if id := newSecret(); id[0] != '-' {
			return id
		}
	}
}

// hashSecret is the stored form of a code, token or client secret.
func hashSecret(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

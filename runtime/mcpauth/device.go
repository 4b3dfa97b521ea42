package mcpauth

// Known devices: the per-user sign-in ceiling (loginUserLimit) stops
// password spraying from many addresses, but it would also let anyone with
// enough addresses lock the real user out. A browser in which the user has
// signed in before carries a device cookie for that user (OWASP's "device
// cookies"), signed with the deployment's rotation key so that every
// replica can check it; its sign-ins skip the per-user ceiling and count
// only against their own (user, address) and address limits.

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
	"time"
)

const (
	deviceCookie = "mcpauth_device"
	// deviceTTL is how long a browser stays known after a sign-in.
	deviceTTL = 90 * 24 * time.Hour
)

// deviceCookieName is the device cookie's name: with the __Host- prefix on
// https, as the browser cookie.
func (s *Server) deviceCookieName() string {
	if s.secureCookies {
		return "__Host-" + deviceCookie
	}
	return deviceCookie
}

// deviceMAC signs (username, expiry) with the rotation key, which every
// replica shares through the database.
func (s *Server) deviceMAC(username string, expires int64) string {
	m := hmac.New(sha256.New, s.store.RotationKey())
	m.Write([]byte("mcpauth device cookie\x00"))
	m.Write([]byte(username))
	m.Write([]byte{0})
	m.Write([]byte(strconv.FormatInt(expires, 10)))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// knownDevice reports whether the request carries a valid device cookie
// for username: the user signed in from this browser within deviceTTL.
func (s *Server) knownDevice(r *http.Request, username string, now time.Time) bool {
	c, err := r.Cookie(s.deviceCookieName())
	if err != nil || len(c.Value) > 512 {
		return false
	}
	// user (base64url) . expiry (unix seconds) . MAC
	user64, rest, _ := strings.Cut(c.Value, ".")
	exp, mac, _ := strings.Cut(rest, ".")
	user, err := base64.RawURLEncoding.DecodeString(user64)
	if err != nil || string(user) != username {
		return false
	}
	expires, err := strconv.ParseInt(exp, 10, 64)
	if err != nil || now.Unix() >= expires {
		return false
	}
	return hmac.Equal([]byte(mac), []byte(s.deviceMAC(username, expires)))
}

// rememberDevice sets the device cookie of username, after a sign-in.
func (s *Server) rememberDevice(w http.ResponseWriter, username string, now time.Time) {
	expires := now.Add(deviceTTL).Unix()
	http.SetCookie(w, &http.Cookie{
		Name:     s.deviceCookieName(),
		Value:    base64.RawURLEncoding.EncodeToString([]byte(username)) + "." + strconv.FormatInt(expires, 10) + "." + s.deviceMAC(username, expires),
		Path:     "/",
		MaxAge:   int(deviceTTL / time.Second),
		HttpOnly: true,
		Secure:   s.secureCookies,
		SameSite: http.SameSiteLaxMode,
	})
}

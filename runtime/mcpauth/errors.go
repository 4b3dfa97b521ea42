package mcpauth

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"

	"github.com/mcpgen/create-mcp-server/runtime/authstore"
)

// oauthError is an error response of the token, registration and revocation
// endpoints (RFC 6749 §5.2, RFC 7591 §3.2.2). The client sees Code and
// Description; the log gets Err.
type oauthError struct {
	Code        string // error, e.g. "invalid_grant"
	Description string // error_description, safe to show; never contains secrets
	Status      int    // HTTP status, 400 if zero
	Err         error  // cause, logged only
	// retryAfter, if set, is sent as Retry-After (seconds).
	retryAfter string
	// io marks a body that could not be read (the client aborted, stalled
	// past the read deadline or hung up): an I/O error, not a guess.
	io bool
}

func (e *oauthError) Error() string {
	msg := e.Code
	if e.Description != "" {
		msg += ": " + e.Description
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *oauthError) Unwrap() error { return e.Err }

// badRequestError returns a 400 oauthError with the RFC 6749 error code and a
// description.
func badRequestError(code, description string) *oauthError {
	return &oauthError{Code: code, Description: description, Status: http.StatusBadRequest}
}

// bodyError is the answer to a request body that could not be read: 413
// if it was too large, else an I/O error (the client aborted or stalled),
// which is never counted as a failed attempt.
func bodyError(err error) *oauthError {
	if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
		return &oauthError{Code: "invalid_request", Description: "the body is too large",
			Status: http.StatusRequestEntityTooLarge, Err: err}
	}
	return &oauthError{Code: "invalid_request", Description: "the body could not be read",
		Status: http.StatusRequestTimeout, Err: err, io: true}
}

// serverError turns a storage or internal failure into the generic error
// the client sees: 503 temporarily_unavailable when the database is busy,
// else 500 server_error. The cause is only logged.
func serverError(err error) *oauthError {
	if errors.Is(err, authstore.ErrUnavailable) {
		return &oauthError{Code: "temporarily_unavailable", Description: "the server is busy, try again",
			Status: http.StatusServiceUnavailable, Err: err, retryAfter: "1"}
	}
	return &oauthError{Code: "server_error", Description: "internal error",
		Status: http.StatusInternalServerError, Err: err}
}

// asOAuthError converts any error to an oauthError; anything that is not
// already one is a server fault.
func asOAuthError(err error) *oauthError {
	var oe *oauthError
	if errors.As(err, &oe) {
		return oe
	}
	return serverError(err)
}

// writeError writes err as an RFC 6749 §5.2 JSON error and logs its cause.
// It is the one place JSON errors are written.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	oe := asOAuthError(err)
	status := oe.Status
	if status == 0 {
		status = http.StatusBadRequest
	}
	level := slog.LevelInfo
	if status >= 500 {
		level = slog.LevelError
	}
	attrs := []any{"path", r.URL.Path, "status", status, "error", oe.Code}
	if oe.Err != nil {
		attrs = append(attrs, "cause", oe.Err.Error())
	}
	s.log.Log(r.Context(), level, "oauth error", attrs...)

	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	if status == http.StatusUnauthorized {
		// A 401 must carry a challenge (RFC 9110 §15.5.2), whichever way
		// the client authenticated: Basic is the method the metadata
		// advertises (RFC 6749 §5.2).
		h.Set("WWW-Authenticate", `Basic realm="oauth"`)
	}
	if oe.retryAfter != "" {
		h.Set("Retry-After", oe.retryAfter)
	}
	w.WriteHeader(status)
	body := struct {
		Error       string `json:"error"`
		Description string `json:"error_description,omitempty"`
	}{oe.Code, oe.Description}
	json.NewEncoder(w).Encode(body)
}

// writeJSON writes v as a JSON response with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

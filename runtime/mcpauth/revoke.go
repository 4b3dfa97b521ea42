package mcpauth

// RFC 7009 OAuth 2.0 Token Revocation.
//
// The client authenticates as at the token endpoint. The answer is 200 for
// any token, known or not, owned by the caller or not (no oracle); only the
// owning client's tokens are actually revoked. Revoking a refresh token
// revokes its whole grant (every access and refresh token from the same
// sign-in); revoking an access token revokes only that token, and the
// refresh token keeps working. token_type_hint is accepted and ignored (both
// kinds are looked up). A storage failure is 503, never a false 200.

import (
	"net/http"
)

func (s *Server) handleRevoke(w http.ResponseWriter, r *http.Request) {
	if err := s.revoke(w, r); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	w.WriteHeader(http.StatusOK)
}

func (s *Server) revoke(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	addr := s.clientKey(r)
	if err := s.guessThrottled(ctx, addr, ""); err != nil {
		return err
	}
	form, err := s.readForm(w, r, maxTokenBody)
	if err != nil {
		return err
	}
	cid := presentedClientID(r, form)
	if err := s.guessThrottled(ctx, addr, cid); err != nil {
		return err
	}
	c, err := s.authenticateClient(r, form)
	if err != nil {
		s.guessFailed(ctx, addr, cid, err)
		return err
	}
	token := form.Get("token")
	if token == "" {
		err := badRequestError("invalid_request", "token is required")
		s.guessFailed(ctx, addr, "", err)
		return err
	}
	// An unknown token is answered 200 like any other and is not a failure
	// (RFC 7009 §2.2): revoking gives nothing away, so there is nothing to
	// guess.
	if len(token) != 43 {
		return nil
	}
	grantID, err := s.store.RevokeToken(ctx, hashSecret(token), c.ID, s.now())
	if grantID != "" && err == nil {
		s.revoked(ctx) // answer once no replica accepts the token
	}
	if err != nil {
		s.invalidateCaches()
		oe := serverError(err)
		oe.Code, oe.Description, oe.Status = "temporarily_unavailable", "the token could not be revoked, try again", http.StatusServiceUnavailable
		return oe
	}
	if grantID != "" {
		s.audit.tokenRevoked(ctx, c.ID, grantID)
	}
	return nil
}

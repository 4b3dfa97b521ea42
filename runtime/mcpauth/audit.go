package mcpauth

// The audit log: one log/slog record for each event an operator may need
// to answer "who did what, when, from where" during an incident. Each event
// has a stable message and stable attribute names (listed in auditEvents,
// and checked against what the server logs by audit_test.go), so that logs
// can be searched and alerted on. With a JSON handler (--log-format json)
// every event is one JSON object; by default it is a logfmt-style line:
//
//	level=WARN msg="sign-in failed" user=alice client_id=Zk3… addr=203.0.113.7 via=authorize
//
// No event ever carries a password, an authorization code, an access or
// refresh token, a client secret or a database password: people, clients and
// grants are named by username, client_id and grant_id only; a failed
// sign-in with a name that is not a user is logged as "unknown-" and a hash
// of it, since people type passwords into the username field. Values a
// client chose (client names) are cut to a bounded length; the handler
// quotes or escapes them, so they cannot forge a line.
//
// Each event also counts in the Prometheus metrics (metrics.go), so a
// dashboard and the log agree. An event is one slog record with at most
// five attributes, which slog builds without allocating; it carries no
// source location (see logEvent).

import (
	"context"
	"log/slog"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// Audit event messages.
const (
	evSignInSucceeded  = "sign-in succeeded"
	evSignInFailed     = "sign-in failed"
	evSignInThrottled  = "sign-in throttled"
	evConsentGranted   = "consent granted"
	evConsentDenied    = "consent denied"
	evClientRegistered = "client registered"
	evCodeIssued       = "code issued"
	evTokensIssued     = "tokens issued"
	evTokenRefreshed   = "token refreshed"
	evTokenRevoked     = "token revoked"
	evGrantRevoked     = "grant revoked"
	evRefreshReuse     = "refresh reuse detected"
	evCodeReplay       = "code replay detected"
	evToolCall         = "tool call"
)

// Audit attribute names.
const (
	attrUser       = "user"        // the username; for a failed sign-in with a name not in the users file, "unknown-" and a hash
	attrClientID   = "client_id"   // the OAuth client
	attrClientName = "client_name" // the name the client registered (unverified)
	attrAddr       = "addr"        // the client address sign-in throttling sees
	attrVia        = "via"         // which page a sign-in came from: authorize or account
	attrLimit      = "limit"       // which throttle refused a sign-in
	attrScope      = "scope"       // granted scope
	attrGrantID    = "grant_id"    // the grant (one sign-in of one user in one client)
	attrBy         = "by"          // who revoked: client, account
	attrTool       = "tool"        // the MCP tool name
	attrDuration   = "duration_seconds"
	attrOutcome    = "outcome" // ok, error (the handler failed) or tool_error (the tool reported an error)
)

// auditEvents lists every audit event and its attributes, in order. It is
// the contract the operations guide documents; audit_test.go checks that
// the server logs exactly these.
var auditEvents = map[string][]string{
	evSignInSucceeded:  {attrUser, attrClientID, attrAddr, attrVia},
	evSignInFailed:     {attrUser, attrClientID, attrAddr, attrVia},
	evSignInThrottled:  {attrUser, attrClientID, attrAddr, attrVia, attrLimit},
	evConsentGranted:   {attrUser, attrClientID, attrScope},
	evConsentDenied:    {attrUser, attrClientID},
	evClientRegistered: {attrClientID, attrClientName, attrAddr},
	evCodeIssued:       {attrUser, attrClientID, attrGrantID},
	evTokensIssued:     {attrUser, attrClientID, attrGrantID, attrScope},
	evTokenRefreshed:   {attrUser, attrClientID, attrGrantID},
	evTokenRevoked:     {attrClientID, attrGrantID},
	evGrantRevoked:     {attrUser, attrClientID, attrGrantID, attrBy},
	evRefreshReuse:     {attrUser, attrClientID, attrGrantID},
	evCodeReplay:       {attrUser, attrClientID, attrGrantID},
	evToolCall:         {attrUser, attrClientID, attrTool, attrDuration, attrOutcome},
}

// Sign-in outcomes (the outcome label of mcp_sign_ins_total).
const (
	signInSucceeded = "succeeded"
	signInFailed    = "failed"
	signInThrottled = "throttled"
)

// Where a sign-in came from (the via attribute).
const (
	viaAuthorize = "authorize"
	viaAccount   = "account"
)

// Tool call outcomes.
const (
	outcomeOK        = "ok"
	outcomeError     = "error"
	outcomeToolError = "tool_error"
)

// maxLoggedLen bounds values a client chose (usernames typed into the
// form, client names): enough for any real one, too little to flood a log.
const maxLoggedLen = 200

// untrusted cuts a client-chosen value to maxLoggedLen bytes, on a rune
// boundary.
func untrusted(v string) string {
	if len(v) <= maxLoggedLen {
		return v
	}
	i := maxLoggedLen
	for i > maxLoggedLen-utf8.UTFMax && !utf8.RuneStart(v[i]) {
		i--
	}
	return v[:i] + "…"
}

// auditor writes audit events and counts them. The zero value is not
// usable; a Server builds one from its Config.
type auditor struct {
	log *slog.Logger
	m   *Metrics
}

// event writes one audit event.
func (a auditor) event(ctx context.Context, level slog.Level, msg string, attrs ...slog.Attr) {
	logEvent(ctx, a.log, time.Now(), level, msg, attrs...)
}

// logEvent writes a record at time t to log's handler, as log.LogAttrs
// would, but without the source location: finding the caller
// (runtime.Callers) would cost as much as formatting the rest of the record,
// on every tool call, and the message already says where the event comes
// from. A handler with AddSource set prints no source for these records.
func logEvent(ctx context.Context, log *slog.Logger, t time.Time, level slog.Level, msg string, attrs ...slog.Attr) {
	h := log.Handler()
	if !h.Enabled(ctx, level) {
		return
	}
	r := slog.NewRecord(t, level, msg, 0)
	r.AddAttrs(attrs...)
	_ = h.Handle(ctx, r) // like slog.Logger: a handler's error has nowhere to go
}

// signIn records a sign-in attempt at the authorization or account page.
// limit names the throttle that refused it ("" unless outcome is throttled).
func (a auditor) signIn(ctx context.Context, outcome, user, clientID, addr, via, limit string) {
	a.m.signIns[signInOutcomeIndex(outcome)].Inc()
	user = untrusted(user)
	switch outcome {
	case signInSucceeded:
		a.event(ctx, slog.LevelInfo, evSignInSucceeded,
			slog.String(attrUser, user), slog.String(attrClientID, clientID),
			slog.String(attrAddr, addr), slog.String(attrVia, via))
	case signInFailed:
		a.event(ctx, slog.LevelWarn, evSignInFailed,
			slog.String(attrUser, user), slog.String(attrClientID, clientID),
			slog.String(attrAddr, addr), slog.String(attrVia, via))
	case signInThrottled:
		a.m.throttled(throttleSignIn)
		a.event(ctx, slog.LevelWarn, evSignInThrottled,
			slog.String(attrUser, user), slog.String(attrClientID, clientID),
			slog.String(attrAddr, addr), slog.String(attrVia, via), slog.String(attrLimit, limit))
	}
}

// signInRefused counts a sign-in refused by a throttle, as signIn does,
// without a log line: the lockout's first refusal was logged (refusalLog).
func (a auditor) signInRefused() {
	a.m.signIns[signInOutcomeIndex(signInThrottled)].Inc()
	a.m.throttled(throttleSignIn)
}

// refusalLog remembers the refusals logged recently, so that a stranger
// repeating a refused request (a sign-in during a lockout, a metadata
// document while the address's fetches are under way) costs one log line,
// not one per request: at WARN the buffered log is written out at once,
// and one address could fill the disk. The first refusal of a key is
// logged and the key stays quiet until the time given; the metrics count
// every refusal. At most maxQuietKeys keys are remembered: when full, the
// ones no longer quiet go; if none has, a new key is logged at most once
// per fullLogQuiet, so that a stranger with more keys than that (many IPv6
// networks) still costs one line per interval, and the lockouts already
// remembered stay quiet.
type refusalLog struct {
	mu        sync.Mutex
	quiet     map[string]time.Time // key: quiet until
	fullQuiet time.Time            // when full: no new key is logged until then
}

const (
	maxQuietKeys = 4096
	fullLogQuiet = time.Minute
)

// first reports whether the refusal key is to be logged at now; if so, the
// key is quiet until until.
func (l *refusalLog) first(key string, now, until time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if t, ok := l.quiet[key]; ok && now.Before(t) {
		return false
	}
	if l.quiet == nil {
		l.quiet = make(map[string]time.Time)
	}
	if _, ok := l.quiet[key]; !ok && len(l.quiet) >= maxQuietKeys {
		for k, t := range l.quiet {
			if !now.Before(t) {
				delete(l.quiet, k)
			}
		}
		if len(l.quiet) >= maxQuietKeys {
			if now.Before(l.fullQuiet) {
				return false
			}
			l.fullQuiet = now.Add(fullLogQuiet)
			return true
		}
	}
	l.quiet[key] = until
	return true
}

func signInOutcomeIndex(outcome string) int {
	switch outcome {
	case signInSucceeded:
		return 0
	case signInFailed:
		return 1
	}
	return 2
}

// consent records the user's answer on the consent page.
func (a auditor) consent(ctx context.Context, granted bool, user, clientID, scope string) {
	if granted {
		a.m.consents[0].Inc()
		a.event(ctx, slog.LevelInfo, evConsentGranted,
			slog.String(attrUser, user), slog.String(attrClientID, clientID), slog.String(attrScope, scope))
		return
	}
	a.m.consents[1].Inc()
	a.event(ctx, slog.LevelInfo, evConsentDenied,
		slog.String(attrUser, user), slog.String(attrClientID, clientID))
}

// clientRegistered records a dynamic client registration.
func (a auditor) clientRegistered(ctx context.Context, clientID, clientName, addr string) {
	a.m.clientsRegistered.Inc()
	a.event(ctx, slog.LevelInfo, evClientRegistered,
		slog.String(attrClientID, clientID), slog.String(attrClientName, untrusted(clientName)),
		slog.String(attrAddr, addr))
}

// codeIssued records an authorization code sent to a client.
func (a auditor) codeIssued(ctx context.Context, user, clientID, grantID string) {
	a.m.codesIssued.Inc()
	a.event(ctx, slog.LevelInfo, evCodeIssued,
		slog.String(attrUser, user), slog.String(attrClientID, clientID), slog.String(attrGrantID, grantID))
}

// tokensIssued records a code redeemed for tokens.
func (a auditor) tokensIssued(ctx context.Context, user, clientID, grantID, scope string) {
	a.m.tokensIssued.Inc()
	a.event(ctx, slog.LevelInfo, evTokensIssued,
		slog.String(attrUser, user), slog.String(attrClientID, clientID),
		slog.String(attrGrantID, grantID), slog.String(attrScope, scope))
}

// tokenRefreshed records a refresh token exchanged for new tokens.
func (a auditor) tokenRefreshed(ctx context.Context, user, clientID, grantID string) {
	a.m.tokensRefreshed.Inc()
	a.event(ctx, slog.LevelInfo, evTokenRefreshed,
		slog.String(attrUser, user), slog.String(attrClientID, clientID), slog.String(attrGrantID, grantID))
}

// tokenRevoked records a client's RFC 7009 revocation that revoked a token.
func (a auditor) tokenRevoked(ctx context.Context, clientID, grantID string) {
	a.m.tokensRevoked[revokedByClient].Inc()
	a.event(ctx, slog.LevelInfo, evTokenRevoked,
		slog.String(attrClientID, clientID), slog.String(attrGrantID, grantID))
}

// grantRevoked records a grant revoked by someone other than its client:
// the user on the account page.
func (a auditor) grantRevoked(ctx context.Context, user, clientID, grantID string, by int) {
	a.m.tokensRevoked[by].Inc()
	a.event(ctx, slog.LevelInfo, evGrantRevoked,
		slog.String(attrUser, user), slog.String(attrClientID, clientID),
		slog.String(attrGrantID, grantID), slog.String(attrBy, revokedByNames[by]))
}

// refreshReuse records a rotated refresh token presented again: the grant
// has been revoked.
func (a auditor) refreshReuse(ctx context.Context, user, clientID, grantID string) {
	a.m.refreshReuse.Inc()
	a.event(ctx, slog.LevelWarn, evRefreshReuse,
		slog.String(attrUser, user), slog.String(attrClientID, clientID), slog.String(attrGrantID, grantID))
}

// codeReplay records a used authorization code redeemed again by its
// client: the grant it created has been revoked.
func (a auditor) codeReplay(ctx context.Context, user, clientID, grantID string) {
	a.m.codeReplays.Inc()
	a.event(ctx, slog.LevelWarn, evCodeReplay,
		slog.String(attrUser, user), slog.String(attrClientID, clientID), slog.String(attrGrantID, grantID))
}

// ToolAudit returns the mcp-go tool middleware that logs a "tool call"
// audit event for every tool call (user, client_id, tool, duration_seconds,
// outcome) and counts it in m's mcp_tool_calls_total and
// mcp_tool_call_duration_seconds. Install it once, when creating the MCP
// server:
//
//	m := mcpauth.NewMetrics()
//	s := server.NewMCPServer(name, version,
//		server.WithToolHandlerMiddleware(mcpauth.ToolAudit(logger, m)))
//	cfg.Logger, cfg.Metrics = logger, m
//
// user and client_id come from the caller's Identity (empty when the call
// did not come through a Server, e.g. over stdio without WithIdentity). The
// outcome is "ok", "tool_error" (the tool returned a result with IsError)
// or "error" (the handler returned an error). Neither arguments nor results
// are logged: they may hold anything. The record has no source location
// (a handler's AddSource prints none), which keeps it cheap. A nil logger means slog.Default(); a
// nil m counts nowhere.
func ToolAudit(logger *slog.Logger, m *Metrics) server.ToolHandlerMiddleware {
	if logger == nil {
		logger = slog.Default()
	}
	if m == nil {
		m = NewMetrics()
	}
	return func(next server.ToolHandlerFunc) server.ToolHandlerFunc {
		return func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			// The tool runs on top of this frame: the record is built in
			// another one (toolCalled), so that the stack a call needs
			// stays small.
			start := time.Now()
			res, err := next(ctx, req)
			toolCalled(ctx, logger, m, req.Params.Name, start, res, err)
			return res, err
		}
	}
}

// toolCalled counts and logs a finished tool call.
func toolCalled(ctx context.Context, logger *slog.Logger, m *Metrics, tool string, start time.Time, res *mcp.CallToolResult, err error) {
	end := time.Now()
	d := end.Sub(start)
	outcome := outcomeOK
	switch {
	case err != nil:
		outcome = outcomeError
	case res != nil && res.IsError:
		outcome = outcomeToolError
	}
	m.toolCall(tool, outcome, d)
	var user, clientID string
	if id, ok := ctx.Value(identityKey{}).(*Identity); ok && id != nil {
		user, clientID = id.User, id.ClientID
	}
	logEvent(ctx, logger, end, slog.LevelInfo, evToolCall,
		slog.String(attrUser, user), slog.String(attrClientID, clientID),
		slog.String(attrTool, tool), slog.Float64(attrDuration, d.Seconds()),
		slog.String(attrOutcome, outcome))
}

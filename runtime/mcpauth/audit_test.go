package mcpauth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/mark3labs/mcp-go/mcp"
)

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// jsonRecords parses JSON log lines.
func jsonRecords(t *testing.T, logs string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for line := range strings.Lines(logs) {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line is not JSON: %q: %v", line, err)
		}
		out = append(out, rec)
	}
	return out
}

// checkAuditRecord fails unless rec, if it is an audit event, carries
// exactly the attributes auditEvents lists for it. It reports whether rec
// is an audit event.
func checkAuditRecord(t *testing.T, rec map[string]any) bool {
	t.Helper()
	msg, _ := rec["msg"].(string)
	want, ok := auditEvents[msg]
	if !ok {
		return false
	}
	var got []string
	for k := range rec {
		if k != "time" && k != "level" && k != "msg" {
			got = append(got, k)
		}
	}
	if len(got) != len(want) {
		t.Errorf("event %q has attributes %v, want %v", msg, got, want)
		return true
	}
	for _, k := range want {
		if _, ok := rec[k]; !ok {
			t.Errorf("event %q lacks %q: %v", msg, k, rec)
		}
	}
	return true
}

// TestToolAudit: every tool call is one "tool call" event with the caller,
// the tool, its duration and outcome, and never its arguments or result.
func TestToolAudit(t *testing.T) {
	for _, tc := range []struct {
		name    string
		handler func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error)
		outcome string
	}{
		{"ok", func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return mcp.NewToolResultText("result-text"), nil
		}, outcomeOK},
		{"tool error", func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return mcp.NewToolResultError("result-text"), nil
		}, outcomeToolError},
		{"handler error", func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return nil, errors.New("result-text")
		}, outcomeError},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			m := NewMetrics()
			call := ToolAudit(slog.New(slog.NewJSONHandler(&buf, nil)), m)(tc.handler)
			ctx := WithIdentity(context.Background(), Identity{User: "alice", ClientID: "client-1", Scopes: []string{"mcp"}})
			req := mcp.CallToolRequest{Params: mcp.CallToolParams{Name: "search", Arguments: map[string]any{"q": "argument-text"}}}
			call(ctx, req)
			recs := jsonRecords(t, buf.String())
			if len(recs) != 1 {
				t.Fatalf("%d records, want 1:\n%s", len(recs), buf.String())
			}
			rec := recs[0]
			if !checkAuditRecord(t, rec) || rec["msg"] != evToolCall {
				t.Fatalf("not a tool call event: %v", rec)
			}
			if rec["user"] != "alice" || rec["client_id"] != "client-1" || rec["tool"] != "search" || rec["outcome"] != tc.outcome {
				t.Errorf("event %v, want alice, client-1, search, %s", rec, tc.outcome)
			}
			if d, ok := rec[attrDuration].(float64); !ok || d < 0 {
				t.Errorf("duration_seconds = %v", rec[attrDuration])
			}
			if strings.Contains(buf.String(), "argument-text") || strings.Contains(buf.String(), "result-text") {
				t.Errorf("the event shows the arguments or the result: %s", buf.String())
			}
		})
	}
}

// TestUntrusted: client-chosen values are cut to a bounded length on a rune
// boundary.
func TestUntrusted(t *testing.T) {
	for _, v := range []string{
		"alice",
		strings.Repeat("a", maxLoggedLen),
		strings.Repeat("a", maxLoggedLen+1),
		strings.Repeat("é", maxLoggedLen),
		"x" + strings.Repeat("€", maxLoggedLen),
		strings.Repeat("a", maxLoggedLen-1) + "\xff\xff\xff",
	} {
		got := untrusted(v)
		if len(v) <= maxLoggedLen {
			if got != v {
				t.Errorf("untrusted(%q) = %q, want it unchanged", v, got)
			}
			continue
		}
		if len(got) > maxLoggedLen+len("…") || !strings.HasSuffix(got, "…") || !strings.HasPrefix(v, strings.TrimSuffix(got, "…")) {
			t.Errorf("untrusted(%d bytes) = %q", len(v), got)
		}
		if utf8.ValidString(v) && !utf8.ValidString(got) {
			t.Errorf("untrusted(%q) = %q cuts a rune", v, got)
		}
	}
}

// BenchmarkToolAudit is the cost of auditing one tool call (event and
// metrics) with the default text handler, compared with
// BenchmarkToolBare.
func BenchmarkToolAudit(b *testing.B) {
	for _, h := range []struct {
		name string
		h    slog.Handler
	}{
		{"text", slog.NewTextHandler(io.Discard, nil)},
		{"json", slog.NewJSONHandler(io.Discard, nil)},
	} {
		b.Run(h.name, func(b *testing.B) {
			call := ToolAudit(slog.New(h.h), NewMetrics())(benchTool)
			benchCall(b, call)
		})
	}
}

func BenchmarkToolBare(b *testing.B) { benchCall(b, benchTool) }

var benchResult = mcp.NewToolResultText("ok")

func benchTool(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	return benchResult, nil
}

func benchCall(b *testing.B, call func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error)) {
	ctx := WithIdentity(context.Background(), Identity{User: "alice", ClientID: "Zk3xQ0v9aLrT2pWm8sYd1", Scopes: []string{"mcp"}})
	req := mcp.CallToolRequest{Params: mcp.CallToolParams{Name: "echo"}}
	b.ReportAllocs()
	for b.Loop() {
		call(ctx, req)
	}
}

// BenchmarkAuditEvent is the cost of one OAuth audit event (a sign-in)
// with the default text handler.
func BenchmarkAuditEvent(b *testing.B) {
	a := auditor{log: slog.New(slog.NewTextHandler(io.Discard, nil)), m: NewMetrics()}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		a.signIn(ctx, signInFailed, "alice", "Zk3xQ0v9aLrT2pWm8sYd1", "203.0.113.7", viaAuthorize, "")
	}
}

// The table of recent refusals is bounded, and a stranger with more keys
// than it holds (many IPv6 networks) gets one line per interval, without
// making the remembered keys loud again.
func TestRefusalLogBounded(t *testing.T) {
	var l refusalLog
	now := time.Now()
	hour := now.Add(time.Hour)
	logged := 0
	for i := range maxQuietKeys {
		if l.first(fmt.Sprint("k", i), now, hour) {
			logged++
		}
	}
	if logged != maxQuietKeys {
		t.Fatalf("%d of the first %d keys logged, want all", logged, maxQuietKeys)
	}
	for _, tc := range []struct {
		name string
		key  string
		at   time.Time
		want bool
	}{
		{"a new key, table full", "new-1", now, true},
		{"another new key, same minute", "new-2", now, false},
		{"a new key again, same minute", "new-1", now.Add(time.Second), false},
		{"a remembered key", "k7", now.Add(2 * time.Second), false},
		{"a new key, a minute later", "new-3", now.Add(fullLogQuiet), true},
		{"a new key, once the others are no longer quiet", "new-4", hour, true},
		{"that key again", "new-4", hour.Add(time.Second), false},
	} {
		if got := l.first(tc.key, tc.at, tc.at.Add(time.Hour)); got != tc.want {
			t.Errorf("%s: first(%q) = %v, want %v", tc.name, tc.key, got, tc.want)
		}
	}
	if n := len(l.quiet); n > maxQuietKeys {
		t.Errorf("%d keys remembered, more than %d", n, maxQuietKeys)
	}
}

package mcpserver

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// lockedBuffer is the stderr a logBuffer writes to.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestLogBuffer: INFO lines wait in the buffer; a WARN or ERROR line, a
// full buffer and Close write everything out, in order and in whole lines.
// The timer is an hour here, so nothing depends on timing.
func TestLogBuffer(t *testing.T) {
	long := strings.Repeat("x", 1000)
	tests := []struct {
		name string
		log  func(log *slog.Logger)
		// what stderr holds before Close: these messages, in order, or
		// with atLeast, at least these first
		written []string
		atLeast bool
		total   int // messages on stderr after Close
	}{
		{"INFO waits", func(log *slog.Logger) { log.Info("one"); log.Info("two") }, nil, false, 2},
		{"WARN writes out the lines before it", func(log *slog.Logger) {
			log.Info("one")
			log.Warn("two")
			log.Info("three")
		}, []string{"one", "two"}, false, 3},
		{"ERROR too, from a derived logger", func(log *slog.Logger) {
			log.Info("one")
			log.With("k", "v").WithGroup("g").Error("two")
		}, []string{"one", "two"}, false, 2},
		{"the standard library's logger logs errors", func(log *slog.Logger) {
			slogLogger(log).Print("one")
		}, []string{"one"}, false, 1},
		{"a full buffer is written out", func(log *slog.Logger) {
			for range logBufferSize/len(long) + 1 {
				log.Info("line", "v", long)
			}
		}, []string{"line"}, true, logBufferSize/len(long) + 1},
		{"a line longer than the buffer goes straight through", func(log *slog.Logger) {
			log.Info("one")
			log.Info("big", "v", strings.Repeat(long, 40))
		}, []string{"one", "big"}, false, 2},
	}
	for _, tt := range tests {
		for _, format := range []string{"text", "json"} {
			t.Run(tt.name+"/"+format, func(t *testing.T) {
				var stderr lockedBuffer
				b := newLogBuffer(&stderr, time.Hour)
				log := newLogger(format, b, Env{})
				tt.log(log)
				got := messages(t, format, stderr.String())
				if tt.atLeast && (len(got) < len(tt.written) || !slices.Equal(got[:len(tt.written)], tt.written)) ||
					!tt.atLeast && !slices.Equal(got, tt.written) {
					t.Errorf("before Close, stderr holds %q, want %q", got, tt.written)
				}
				b.Close()
				if all := messages(t, format, stderr.String()); len(all) != tt.total {
					t.Errorf("after Close, stderr holds %d lines, want %d", len(all), tt.total)
				}
				log.Info("later")
				if got := messages(t, format, stderr.String()); got[len(got)-1] != "later" {
					t.Errorf("a line logged after Close is not written at once: %q", got)
				}
			})
		}
	}
}

// TestLogBufferTimer: an INFO line is written out on its own, a little
// later (waited for with a deadline; nothing asserts how soon).
func TestLogBufferTimer(t *testing.T) {
	var stderr lockedBuffer
	b := newLogBuffer(&stderr, time.Millisecond)
	defer b.Close()
	log := newLogger("text", b, Env{})
	for _, msg := range []string{"one", "two"} {
		log.Info(msg)
		for deadline := time.Now().Add(10 * time.Second); !strings.Contains(stderr.String(), "msg="+msg); time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not written within 10 s", msg)
			}
		}
	}
}

// messages returns the msg of each line of a text or JSON log, and fails
// on a partial line.
func messages(t *testing.T, format, log string) []string {
	t.Helper()
	if log == "" {
		return nil
	}
	if !strings.HasSuffix(log, "\n") {
		t.Fatalf("the log ends in a partial line: %q", log[max(0, len(log)-80):])
	}
	var msgs []string
	for _, line := range strings.Split(strings.TrimSuffix(log, "\n"), "\n") {
		if format == "json" {
			var rec struct{ Msg string }
			if err := json.Unmarshal([]byte(line), &rec); err != nil {
				t.Fatalf("%v: %q", err, line)
			}
			msgs = append(msgs, rec.Msg)
			continue
		}
		m := textMsg.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("no msg in %q", line)
		}
		msgs = append(msgs, m[1])
	}
	return msgs
}

var textMsg = regexp.MustCompile(` msg=(\S+)`)

package mcpserver

// Logging: slog lines on stderr, text or JSON. serve writes them through a
// buffer, so that a busy server makes one write(2) per 32 KiB of log lines
// (or per 100 ms) rather than one per line: on a virtual machine each
// system call costs several microseconds, as much as the rest of an
// authenticated tool call's overhead.

import (
	"context"
	"io"
	stdlog "log"
	"log/slog"
	"sync"
	"time"
)

// addLogFlag defines --log-format.
func addLogFlag(fs *flagSet, format *string) {
	fs.Var(choiceFlag{format, []string{"text", "json"}}, "log-format", "log `FORMAT` on stderr: text, or json (one object per line)")
}

// newLogger returns the logger of a command: text or JSON lines on w.
// Run from Main, it also becomes slog's default, so that tools logging with
// slog.InfoContext write in the same format.
func newLogger(format string, w io.Writer, env Env) *slog.Logger {
	var h slog.Handler
	if format == "json" {
		h = slog.NewJSONHandler(w, nil)
	} else {
		h = slog.NewTextHandler(w, nil)
	}
	if b, ok := w.(*logBuffer); ok {
		h = flushingHandler{h, b}
	}
	log := slog.New(h)
	if env.process {
		slog.SetDefault(log)
	}
	return log
}

// slogLogger adapts log to the standard library's *log.Logger, for code
// that wants one; its lines are logged at level ERROR.
func slogLogger(log *slog.Logger) *stdlog.Logger {
	return slog.NewLogLogger(log.Handler(), slog.LevelError)
}

// Buffering of serve's log.
const (
	logBufferSize = 32 << 10
	logFlushAfter = 100 * time.Millisecond
)

// logBuffer is an io.Writer that holds what is written to it and writes it
// to w in one piece: logFlushAfter after the first line it holds, when
// logBufferSize would overflow, on Flush (after every WARN or ERROR line,
// see flushingHandler), and on Close. After Close it writes through. A
// process killed with SIGKILL loses what it holds: at most the last
// logFlushAfter of INFO lines.
type logBuffer struct {
	mu      sync.Mutex
	w       io.Writer
	buf     []byte
	after   time.Duration
	timer   *time.Timer // flushes after the first line held; armed while pending
	pending bool
	closed  bool
}

func newLogBuffer(w io.Writer, after time.Duration) *logBuffer {
	b := &logBuffer{w: w, buf: make([]byte, 0, logBufferSize), after: after}
	b.timer = time.AfterFunc(time.Hour, b.timerFlush)
	b.timer.Stop()
	return b
}

// Write holds p (one log line: slog's handlers write each record in one
// call). Errors of the underlying writer are dropped, as slog would have
// nowhere to report them either.
func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return b.w.Write(p)
	}
	if len(b.buf)+len(p) > cap(b.buf) {
		b.flushLocked()
		if len(p) > cap(b.buf) {
			b.w.Write(p)
			return len(p), nil
		}
	}
	b.buf = append(b.buf, p...)
	if !b.pending {
		b.pending = true
		b.timer.Reset(b.after)
	}
	return len(p), nil
}

// Flush writes out what b holds.
func (b *logBuffer) Flush() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.flushLocked()
}

func (b *logBuffer) timerFlush() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.pending = false
	b.flushLocked()
}

func (b *logBuffer) flushLocked() {
	if len(b.buf) > 0 {
		b.w.Write(b.buf)
		b.buf = b.buf[:0]
	}
}

// Close flushes b; later writes go straight to the underlying writer.
func (b *logBuffer) Close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.timer.Stop()
	b.flushLocked()
	b.closed = true
}

// flushingHandler flushes its logBuffer after each record at level WARN
// or above, so that warnings and errors are out at once, with the lines
// before them.
type flushingHandler struct {
	slog.Handler
	b *logBuffer
}

func (h flushingHandler) Handle(ctx context.Context, r slog.Record) error {
	err := h.Handler.Handle(ctx, r)
	if r.Level >= slog.LevelWarn {
		h.b.Flush()
	}
	return err
}

func (h flushingHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return flushingHandler{h.Handler.WithAttrs(attrs), h.b}
}

func (h flushingHandler) WithGroup(name string) slog.Handler {
	return flushingHandler{h.Handler.WithGroup(name), h.b}
}

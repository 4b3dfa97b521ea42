package mcpserver

import (
	stdlog "log"
	"log/slog"
)

// addLogFlag defines --log-format.
func addLogFlag(fs *flagSet, format *string) {
	fs.Var(choiceFlag{format, []string{"text", "json"}}, "log-format", "log `FORMAT` on stderr: text, or json (one object per line)")
}

// newLogger returns the logger of a command: text or JSON lines on stderr.
// Run from Main, it also becomes slog's default, so that tools logging with
// slog.InfoContext write in the same format.
func newLogger(format string, env Env) *slog.Logger {
	var h slog.Handler
	if format == "json" {
		h = slog.NewJSONHandler(env.Stderr, nil)
	} else {
		h = slog.NewTextHandler(env.Stderr, nil)
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

package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/redis/go-redis/v9"
)

// newLogger returns the process logger: text or JSON on stderr at the
// configured level. Logs go to stderr; stdout is for command results.
func newLogger(cfg *config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// redisLogger sends go-redis's internal messages (pool dial failures and
// the like) to slog at debug level: each failure already reaches the log
// as the 503 it caused.
type redisLogger struct{ log *slog.Logger }

func (l redisLogger) Printf(ctx context.Context, format string, v ...any) {
	if l.log.Enabled(ctx, slog.LevelDebug) {
		l.log.DebugContext(ctx, "redis: "+fmt.Sprintf(format, v...))
	}
}

// routeRedisLogs points go-redis's package-wide logger at log.
func routeRedisLogs(log *slog.Logger) { redis.SetLogger(redisLogger{log}) }

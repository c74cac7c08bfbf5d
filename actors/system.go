package actors

import (
	"context"
	"encoding/json"
	"log/slog"
	"reflect"
	"slices"
	"strings"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/rs/zerolog"
)

// Inbox defaults of HandlerOptions and DialOptions.
const (
	defaultInboxLimit = 64
	defaultInboxBytes = 4 << 20
)

// NewSystem returns an actor system whose own logs (protoactor logs through
// log/slog) go to logger, with dead-letter logging of requests turned off.
// Handlers and dialed connections on this system whose options leave Logger
// zero log to logger too. Pass zerolog.Nop() to silence it.
func NewSystem(logger zerolog.Logger, opts ...actor.ConfigOption) *actor.ActorSystem {
	opts = append([]actor.ConfigOption{LoggerFactory(logger), actor.WithDeadLetterRequestLogging(false)}, opts...)
	return actor.NewActorSystem(opts...)
}

// LoggerFactory returns an actor.ConfigOption that sends protoactor's logs to
// l, so one zerolog stream carries everything. Handlers and dialed
// connections on the system whose options leave Logger zero log to l too.
func LoggerFactory(l zerolog.Logger) actor.ConfigOption {
	return actor.WithLoggerFactory(func(s *actor.ActorSystem) *slog.Logger {
		return slog.New(renameReserved{zerolog.NewSlogHandler(l.With().Str("lib", "protoactor").Logger()), l})
	})
}

// isZeroLogger reports whether l is the zero zerolog.Logger (an options
// field left unset), as opposed to zerolog.Nop() or a real logger.
func isZeroLogger(l zerolog.Logger) bool { return reflect.DeepEqual(l, zerolog.Logger{}) }

// systemLogger returns the logger system was built with by [NewSystem] or
// [LoggerFactory]; for any other system, a logger writing to the system's
// slog logger (protoactor's default writes text to stderr).
func systemLogger(system *actor.ActorSystem) zerolog.Logger {
	sl := system.Logger()
	if h, ok := sl.Handler().(renameReserved); ok {
		return h.base
	}
	l := zerolog.New(slogWriter{sl})
	for _, lv := range []zerolog.Level{zerolog.DebugLevel, zerolog.InfoLevel, zerolog.WarnLevel, zerolog.ErrorLevel} {
		if sl.Enabled(context.Background(), slogLevel(lv)) {
			return l.Level(lv) // below lv nothing would be written: skip encoding it
		}
	}
	return l.Level(zerolog.Disabled)
}

// slogWriter turns zerolog's JSON events back into slog records.
type slogWriter struct{ l *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) { return w.WriteLevel(zerolog.NoLevel, p) }

func (w slogWriter) WriteLevel(level zerolog.Level, p []byte) (int, error) {
	var fields map[string]any
	if err := json.Unmarshal(p, &fields); err != nil {
		w.l.Log(context.Background(), slogLevel(level), strings.TrimSpace(string(p)))
		return len(p), nil
	}
	msg, _ := fields[zerolog.MessageFieldName].(string)
	delete(fields, zerolog.MessageFieldName)
	delete(fields, zerolog.LevelFieldName)
	attrs := make([]slog.Attr, 0, len(fields))
	for k, v := range fields {
		attrs = append(attrs, slog.Any(k, v))
	}
	slices.SortFunc(attrs, func(a, b slog.Attr) int { return strings.Compare(a.Key, b.Key) })
	w.l.LogAttrs(context.Background(), slogLevel(level), msg, attrs...)
	return len(p), nil
}

func slogLevel(l zerolog.Level) slog.Level {
	switch {
	case l == zerolog.NoLevel:
		return slog.LevelInfo
	case l <= zerolog.DebugLevel:
		return slog.LevelDebug
	case l == zerolog.InfoLevel:
		return slog.LevelInfo
	case l == zerolog.WarnLevel:
		return slog.LevelWarn
	default:
		return slog.LevelError
	}
}

// renameReserved renames slog attributes whose keys collide with zerolog's
// own fields (protoactor's dead-letter line has an attribute named "message"),
// which would otherwise produce JSON with duplicate keys. It changes no
// zerolog globals. base is the logger the system was built with.
type renameReserved struct {
	slog.Handler
	base zerolog.Logger
}

func (h renameReserved) Handle(ctx context.Context, r slog.Record) error {
	clash := false
	r.Attrs(func(a slog.Attr) bool {
		if reserved(a.Key) {
			clash = true
			return false
		}
		return true
	})
	if !clash {
		return h.Handler.Handle(ctx, r)
	}
	nr := slog.NewRecord(r.Time, r.Level, r.Message, r.PC)
	r.Attrs(func(a slog.Attr) bool {
		if reserved(a.Key) {
			a.Key = "attr_" + a.Key
		}
		nr.AddAttrs(a)
		return true
	})
	return h.Handler.Handle(ctx, nr)
}

func (h renameReserved) WithAttrs(as []slog.Attr) slog.Handler {
	for i := range as {
		if reserved(as[i].Key) {
			as[i].Key = "attr_" + as[i].Key
		}
	}
	return renameReserved{h.Handler.WithAttrs(as), h.base}
}

func (h renameReserved) WithGroup(name string) slog.Handler {
	return renameReserved{h.Handler.WithGroup(name), h.base}
}

func reserved(k string) bool {
	return k == zerolog.MessageFieldName || k == zerolog.LevelFieldName || k == zerolog.TimestampFieldName || k == zerolog.ErrorFieldName
}

package actors

import (
	"context"
	"log/slog"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/rs/zerolog"
)

// NewSystem returns an actor system whose own logs (protoactor logs through
// log/slog) go to logger, with dead-letter logging of requests turned off. Pass
// zerolog.Nop() to silence it.
func NewSystem(logger zerolog.Logger, opts ...actor.ConfigOption) *actor.ActorSystem {
	opts = append([]actor.ConfigOption{LoggerFactory(logger), actor.WithDeadLetterRequestLogging(false)}, opts...)
	return actor.NewActorSystem(opts...)
}

// LoggerFactory returns an actor.ConfigOption that sends protoactor's logs to
// l, so one zerolog stream carries everything.
func LoggerFactory(l zerolog.Logger) actor.ConfigOption {
	return actor.WithLoggerFactory(func(s *actor.ActorSystem) *slog.Logger {
		return slog.New(renameReserved{zerolog.NewSlogHandler(l.With().Str("lib", "protoactor").Logger())})
	})
}

// renameReserved renames slog attributes whose keys collide with zerolog's
// own fields (protoactor's dead-letter line has an attribute named "message"),
// which would otherwise produce JSON with duplicate keys. It changes no
// zerolog globals.
type renameReserved struct{ slog.Handler }

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
	return renameReserved{h.Handler.WithAttrs(as)}
}

func (h renameReserved) WithGroup(name string) slog.Handler {
	return renameReserved{h.Handler.WithGroup(name)}
}

func reserved(k string) bool {
	return k == zerolog.MessageFieldName || k == zerolog.LevelFieldName || k == zerolog.TimestampFieldName || k == zerolog.ErrorFieldName
}

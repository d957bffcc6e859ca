package audit

import (
	"context"
	"log/slog"
)

// SlogSink writes each event as one log/slog record at level Info with the
// message "audit event". The record's time is the event's Time; its
// attributes are id, type, subject, actor (when set), details (when set),
// sequence, keyId, prevHash and hash. Events reach it already
// pseudonymised, so the line holds no raw user ID. It is not a Reader.
type SlogSink struct {
	logger *slog.Logger
}

var _ Sink = (*SlogSink)(nil)

// NewSlogSink returns a SlogSink writing to logger (slog.Default() when
// nil).
func NewSlogSink(logger *slog.Logger) *SlogSink {
	if logger == nil {
		logger = slog.Default()
	}
	return &SlogSink{logger: logger}
}

// Write logs every event in order. It fails only when ctx is done before
// it starts, or when the handler fails (events before that one are
// logged: a log stream cannot take lines back).
func (s *SlogSink) Write(ctx context.Context, events []Event) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	h := s.logger.Handler()
	if !h.Enabled(ctx, slog.LevelInfo) {
		return nil
	}
	for i := range events {
		e := &events[i]
		r := slog.NewRecord(e.Time, slog.LevelInfo, "audit event", 0)
		r.AddAttrs(
			slog.String("id", e.ID),
			slog.String("type", string(e.Type)),
			slog.String("subject", e.Subject),
		)
		if e.Actor != "" {
			r.AddAttrs(slog.String("actor", e.Actor))
		}
		if len(e.Details) > 0 {
			r.AddAttrs(slog.Any("details", e.Details))
		}
		r.AddAttrs(
			slog.Uint64("sequence", e.Sequence),
			slog.String("keyId", e.KeyID),
			slog.String("prevHash", e.PrevHash),
			slog.String("hash", e.Hash),
		)
		if err := h.Handle(ctx, r); err != nil {
			return err
		}
	}
	return nil
}

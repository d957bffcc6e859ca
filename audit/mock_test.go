package audit_test

import (
	"context"
	"errors"
	"testing"

	"go.uber.org/mock/gomock"

	"github.com/stewardlabs/steward/audit"
	"github.com/stewardlabs/steward/audit/mocks"
)

// TestLoggerWithMockSink shows the write the Logger makes: one batch per
// Log call when calls do not overlap, chained from the previous event, and
// a refused batch taken back out of the chain.
func TestLoggerWithMockSink(t *testing.T) {
	ctrl := gomock.NewController(t)
	sink := mocks.NewMockSink(ctrl)
	var first audit.Event
	gomock.InOrder(
		sink.EXPECT().Write(gomock.Any(), gomock.Len(1)).DoAndReturn(func(_ context.Context, ev []audit.Event) error {
			first = ev[0]
			if ev[0].Sequence != 1 || ev[0].PrevHash != "" {
				t.Errorf("first event: sequence %d, prevHash %q", ev[0].Sequence, ev[0].PrevHash)
			}
			return nil
		}),
		sink.EXPECT().Write(gomock.Any(), gomock.Len(1)).Return(errDown),
		sink.EXPECT().Write(gomock.Any(), gomock.Len(1)).DoAndReturn(func(_ context.Context, ev []audit.Event) error {
			if ev[0].Sequence != 2 || ev[0].PrevHash != first.Hash {
				t.Errorf("after a refused batch: sequence %d, prevHash %q; want 2, %q", ev[0].Sequence, ev[0].PrevHash, first.Hash)
			}
			return nil
		}),
	)
	l := newLogger(t, sink) // a MockSink is not a Reader: nothing to resume
	ctx := context.Background()
	if err := l.Log(ctx, audit.Event{Type: audit.DataAccess, Subject: "u"}); err != nil {
		t.Fatal(err)
	}
	if err := l.Log(ctx, audit.Event{Type: audit.DataAccess, Subject: "u"}); !errors.Is(err, errDown) {
		t.Fatalf("err = %v", err)
	}
	if err := l.Log(ctx, audit.Event{Type: audit.DataAccess, Subject: "u"}); err != nil {
		t.Fatal(err)
	}
}

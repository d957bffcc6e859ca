package audit_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/stewardlabs/steward/audit"
)

// chainOf logs n events and returns them as stored.
func chainOf(t *testing.T, n int) []audit.Event {
	t.Helper()
	sink := audit.NewMemorySink()
	logN(t, newLogger(t, sink), n)
	return sink.Snapshot()
}

func TestVerifyFindsTampering(t *testing.T) {
	const n = 6
	rehash := func(t *testing.T, e *audit.Event) {
		h, err := audit.Hash(*e)
		if err != nil {
			t.Fatal(err)
		}
		e.Hash = h
	}
	tests := []struct {
		name   string
		tamper func(t *testing.T, ev []audit.Event) []audit.Event
		want   uint64 // 0: intact
	}{
		{"an intact chain verifies", func(_ *testing.T, ev []audit.Event) []audit.Event { return ev }, 0},
		{"an empty stream verifies", func(_ *testing.T, ev []audit.Event) []audit.Event { return nil }, 0},
		{"an edited detail is found at the edited event", func(_ *testing.T, ev []audit.Event) []audit.Event {
			ev[3].Details = map[string]any{"i": 99}
			return ev
		}, 4},
		{"an edited type is found at the edited event", func(_ *testing.T, ev []audit.Event) []audit.Event {
			ev[2].Type = audit.DataAccess + "x"
			return ev
		}, 3},
		{"an edited time is found at the edited event", func(_ *testing.T, ev []audit.Event) []audit.Event {
			ev[0].Time = ev[0].Time.Add(1e3)
			return ev
		}, 1},
		{"an edited subject is found at the edited event", func(_ *testing.T, ev []audit.Event) []audit.Event {
			ev[5].Subject = "hmac-sha256:k1:00"
			return ev
		}, 6},
		{"an edit with its hash recomputed is found at the next event", func(t *testing.T, ev []audit.Event) []audit.Event {
			ev[3].Details = map[string]any{"i": 99}
			rehash(t, &ev[3])
			return ev
		}, 5},
		{"an inserted event is found where it was inserted", func(t *testing.T, ev []audit.Event) []audit.Event {
			forged := ev[2]
			forged.ID, forged.Details = "forged", map[string]any{"i": -1}
			forged.Sequence, forged.PrevHash = 4, ev[2].Hash
			rehash(t, &forged)
			out := slices.Insert(slices.Clone(ev[:3]), 3, forged)
			for _, e := range ev[3:] { // renumbered, but the links cannot be forged
				e.Sequence++
				out = append(out, e)
			}
			return out
		}, 5},
		{"an inserted copy of an event is found where it was inserted", func(_ *testing.T, ev []audit.Event) []audit.Event {
			return slices.Insert(ev, 2, ev[1])
		}, 3},
		{"a deleted event is found at its sequence", func(_ *testing.T, ev []audit.Event) []audit.Event {
			return slices.Delete(ev, 2, 3)
		}, 3},
		{"a deleted first event is found at sequence 1", func(_ *testing.T, ev []audit.Event) []audit.Event {
			return ev[1:]
		}, 1},
		{"a deleted event with the rest renumbered is found at its sequence", func(_ *testing.T, ev []audit.Event) []audit.Event {
			ev = slices.Delete(ev, 2, 3)
			for i := 2; i < len(ev); i++ {
				ev[i].Sequence--
			}
			return ev
		}, 3},
		{"swapped events are found at the first swapped sequence", func(_ *testing.T, ev []audit.Event) []audit.Event {
			ev[1], ev[2] = ev[2], ev[1]
			return ev
		}, 2},
		{"swapped events with swapped numbers are found at the first", func(_ *testing.T, ev []audit.Event) []audit.Event {
			ev[1], ev[2] = ev[2], ev[1]
			ev[1].Sequence, ev[2].Sequence = 2, 3
			return ev
		}, 2},
		{"a chain that does not start at the beginning is found at sequence 1", func(_ *testing.T, ev []audit.Event) []audit.Event {
			ev[0].PrevHash = ev[5].Hash
			return ev
		}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			events := tt.tamper(t, chainOf(t, n))
			err := audit.Verify(seqOf(events))
			if tt.want == 0 {
				if err != nil {
					t.Fatalf("Verify = %v, want nil", err)
				}
				return
			}
			var ce *audit.ChainError
			if !errors.As(err, &ce) || !errors.Is(err, audit.ErrTampered) {
				t.Fatalf("Verify = %v, want a *ChainError matching ErrTampered", err)
			}
			if ce.Sequence != tt.want {
				t.Errorf("Verify names sequence %d (%s), want %d", ce.Sequence, ce.Reason, tt.want)
			}
		})
	}
}

func TestVerifyPassesOnReadErrors(t *testing.T) {
	errRead := errors.New("read failed")
	events := chainOf(t, 2)
	err := audit.Verify(func(yield func(audit.Event, error) bool) {
		if yield(events[0], nil) {
			yield(audit.Event{}, errRead)
		}
	})
	if !errors.Is(err, errRead) || errors.Is(err, audit.ErrTampered) {
		t.Fatalf("Verify = %v, want the read error and not ErrTampered", err)
	}
}

func TestKeyRotationKeepsOldEventsVerifiable(t *testing.T) {
	ctx := context.Background()
	k1 := audit.Key{ID: "k1", Secret: testKey}
	k2 := audit.Key{ID: "k2", Secret: []byte("a completely different key......")}
	sink := audit.NewMemorySink()

	l1, err := audit.NewLogger(sink, audit.WithKey(k1.ID, k1.Secret))
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"user_a", "user_b"} {
		if err := l1.Log(ctx, audit.Event{Type: audit.DataAccess, Subject: u, Actor: "user_admin"}); err != nil {
			t.Fatal(err)
		}
	}
	l2, err := audit.NewLogger(sink, audit.WithKey(k2.ID, k2.Secret)) // restart with the new key
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"user_a", "user_c"} {
		if err := l2.Log(ctx, audit.Event{Type: audit.DataExport, Subject: u}); err != nil {
			t.Fatal(err)
		}
	}

	if err := audit.Verify(sink.Events(ctx, 0)); err != nil {
		t.Fatalf("the chain across the rotation must verify: %v", err)
	}
	var keys []string
	for _, e := range sink.Snapshot() {
		keys = append(keys, e.KeyID)
	}
	if !slices.Equal(keys, []string{"k1", "k1", "k2", "k2"}) {
		t.Errorf("KeyIDs = %v", keys)
	}

	p, err := audit.NewPseudonymizer(k2, k1)
	if err != nil {
		t.Fatal(err)
	}
	var found []uint64
	for e, err := range p.Lookup(sink.Events(ctx, 0), "user_a") {
		if err != nil {
			t.Fatal(err)
		}
		found = append(found, e.Sequence)
	}
	if !slices.Equal(found, []uint64{1, 3}) {
		t.Errorf("events of user_a under both keys = %v, want [1 3]", found)
	}
	var byActor []uint64
	for e := range p.Lookup(sink.Events(ctx, 0), "user_admin") {
		byActor = append(byActor, e.Sequence)
	}
	if !slices.Equal(byActor, []uint64{1, 2}) {
		t.Errorf("events with user_admin as actor = %v, want [1 2]", byActor)
	}
	onlyNew, _ := audit.NewPseudonymizer(k2)
	if n := len(collect(t, onlyNew.Lookup(sink.Events(ctx, 0), "user_a"))); n != 1 {
		t.Errorf("without the old key only the new event is found; found %d", n)
	}
}

func collect(t *testing.T, s func(func(audit.Event, error) bool)) []audit.Event {
	t.Helper()
	var out []audit.Event
	for e, err := range s {
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	return out
}

func TestPseudonymizer(t *testing.T) {
	k1 := audit.Key{ID: "k1", Secret: testKey}
	k2 := audit.Key{ID: "k2", Secret: []byte("a completely different key......")}
	p, err := audit.NewPseudonymizer(k2, k1)
	if err != nil {
		t.Fatal(err)
	}
	got := p.Pseudonym("user_123")
	// HMAC-SHA256("a completely different key......", "user_123"), computed independently.
	const want = "hmac-sha256:k2:8874a8b579d632d274093b2a422a7accd10a6accdc48aa30e09e96c8312e6155"
	if got != want {
		t.Fatalf("Pseudonym = %q, want %q", got, want)
	}
	if p.Pseudonym("user_123") != got {
		t.Error("pseudonyms must be stable")
	}
	if p.Pseudonym("user_124") == got {
		t.Error("different IDs must differ")
	}
	if p.Pseudonym("") != "" {
		t.Error("the empty ID must stay empty")
	}
	all := p.Pseudonyms("user_123")
	if len(all) != 2 || all[0] != got || all[1][:15] != "hmac-sha256:k1:" {
		t.Errorf("Pseudonyms = %v", all)
	}
	for _, ps := range all {
		if !p.Match(ps, "user_123") || p.Match(ps, "user_124") {
			t.Errorf("Match(%q) wrong", ps)
		}
	}
	if p.Match("sha256:abc", "user_123") || p.Match("hmac-sha256:k9:00", "user_123") {
		t.Error("Match accepts a foreign value")
	}
	if _, err := audit.NewPseudonymizer(k1, k1); err == nil {
		t.Error("duplicate key IDs must be refused")
	}
	if p.KeyID() != "k2" {
		t.Errorf("KeyID = %q", p.KeyID())
	}
}

package privacycenter_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stewardlabs/steward/privacy"
	"github.com/stewardlabs/steward/privacycenter"
)

func TestDaysLeft(t *testing.T) {
	rcv := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	due := rcv.Add(40 * 24 * time.Hour)
	req := func(s privacy.Status) privacy.Request {
		return privacy.Request{Status: s, ReceivedAt: rcv, DueAt: due}
	}
	tests := []struct {
		name string
		r    privacy.Request
		now  time.Time
		want privacycenter.Badge
	}{
		{"just received", req(privacy.StatusPending), rcv, privacycenter.Badge{Text: "40 days left", Class: "badge-ok"}},
		{"exactly a quarter left is not red", req(privacy.StatusPending), due.Add(-10 * 24 * time.Hour), privacycenter.Badge{Text: "10 days left", Class: "badge-ok"}},
		{"under a quarter left is red", req(privacy.StatusPartial), due.Add(-10*24*time.Hour + time.Minute), privacycenter.Badge{Text: "10 days left", Red: true, Class: "badge-red"}},
		{"one day left", req(privacy.StatusPending), due.Add(-time.Hour), privacycenter.Badge{Text: "1 day left", Red: true, Class: "badge-red"}},
		{"overdue", req(privacy.StatusPending), due.Add(49 * time.Hour), privacycenter.Badge{Text: "3 days overdue", Red: true, Class: "badge-red"}},
		{"held", req(privacy.StatusHeld), due.Add(49 * time.Hour), privacycenter.Badge{Text: "on hold", Class: "badge-held"}},
		{"answered", req(privacy.StatusCompleted), due.Add(49 * time.Hour), privacycenter.Badge{Text: "answered", Class: "badge-done"}},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, privacycenter.DaysLeft(tt.r, tt.now)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.name, diff)
		}
	}
}

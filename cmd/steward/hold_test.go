package main

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/stewardlabs/steward/retention"
)

// TestHoldsAreAudited: placing and releasing a legal hold from the
// command line each write a legal-hold audit event first, naming the
// user and the actor by pseudonym.
func TestHoldsAreAudited(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, fx *fixture) {
		if res := fx.run("", "hold", "place", "user_zed", "--reason", "tax audit", "--actor", "user_admin"); res.code != exitOK {
			t.Fatalf("hold place: exit %d, %s", res.code, res.stderr)
		}
		if res := fx.run("", "hold", "release", "user_zed", "--yes", "--actor", "user_admin"); res.code != exitOK {
			t.Fatalf("hold release: exit %d, %s", res.code, res.stderr)
		}
		type ev struct{ Action, Subject, Actor string }
		var got []ev
		for e, err := range fx.store.AuditSink().Events(t.Context(), 0) {
			if err != nil {
				t.Fatal(err)
			}
			if e.Type == retention.LegalHoldEvent {
				action, _ := e.Details["action"].(string)
				got = append(got, ev{action, e.Subject, e.Actor})
			}
		}
		zed, admin := pseudonym(t, "user_zed"), pseudonym(t, "user_admin")
		if diff := cmp.Diff([]ev{{"place", zed, admin}, {"release", zed, admin}}, got); diff != "" {
			t.Errorf("legal-hold audit events (-want +got):\n%s", diff)
		}
	})
}

package clerkadapter_test

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/stewardlabs/steward/clerkadapter"
	"github.com/stewardlabs/steward/clerkadapter/clerktest"
)

func TestLoggedValuesHoldNoIdentifiers(t *testing.T) {
	f := newSessionFixture(t, nil)
	claims, err := f.auth.Verify(t.Context(), f.srv.SessionToken(f.user.ID))
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := claims.Claim("metadata.role"); !ok || v != "admin" {
		t.Errorf(`Claim("metadata.role") = %v, %v; want admin`, v, ok)
	}
	if _, ok := claims.Claim("metadata.missing"); ok {
		t.Error(`Claim("metadata.missing") found something`)
	}
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	log.Info("verified", "claims", claims)
	log.Info("event", "event", clerkadapter.UserEvent{MessageID: "msg_1", Type: clerkadapter.UserDeleted, UserID: f.user.ID})
	for _, secret := range []string{f.user.ID, claims.SessionID, "ada@example.com"} {
		if strings.Contains(buf.String(), secret) {
			t.Errorf("the log holds an identifier:\n%s", buf.String())
		}
	}
	if !strings.Contains(buf.String(), clerktest.DefaultIssuer) {
		t.Errorf("the log lacks the issuer:\n%s", buf.String())
	}
}

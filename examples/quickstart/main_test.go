package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestRun(t *testing.T) {
	var out bytes.Buffer
	if err := run(t.Context(), &out, config{dir: t.TempDir()}); err != nil {
		t.Fatalf("run: %v\noutput so far:\n%s", err, out.String())
	}
	for _, want := range []string{
		"1. Role checks",
		"Ada    role=admin verified=true   chat:send=true  profile:edit=true  admin:users=true",
		"Bob    role=user  verified=true   chat:send=true  profile:edit=true  admin:users=false",
		"Carol  role=user  verified=false  chat:send=false",
		"Bob allows marketing: true",
		`"marketing":true`,
		"user-data.json",
		`"success": true`,
		"Bob is gone",
		"inactive_users",
		"would notify 1",
		"activity_logs",
		"audit chain verified:",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "bob@example.com") {
		t.Error("the output shows a raw email address")
	}
}

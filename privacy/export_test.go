package privacy_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stewardlabs/steward"
	"github.com/stewardlabs/steward/audit"
	"github.com/stewardlabs/steward/privacy"
	"github.com/stewardlabs/steward/privacy/privacytest"
	"github.com/stewardlabs/steward/rbac"
)

var testSanitizer = privacy.Sanitizer{Drop: map[string][]string{
	"orders": {"internalNotes"},
	"*":      {"adminFlags"},
}}

func decodeDoc(t *testing.T, b []byte) privacy.ExportDocument {
	t.Helper()
	if !json.Valid(b) {
		t.Fatalf("export is not valid JSON:\n%s", b)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var doc privacy.ExportDocument
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("decoding the export: %v", err)
	}
	return doc
}

func ptr[T any](v T) *T { return &v }

func TestExportDocument(t *testing.T) {
	w := newWorld(t)
	svc := w.service(privacy.WithSanitizer(testSanitizer))
	ctx := rbac.WithPrincipal(context.Background(), rbac.Principal{UserID: testUser, Role: "user"})
	var buf bytes.Buffer
	if err := svc.Export(ctx, testUser, &buf); err != nil {
		t.Fatalf("Export: %v", err)
	}
	want := privacy.ExportDocument{
		FormatVersion: 1,
		ExportedAt:    t0,
		Identity: privacy.ExportedIdentity{
			ID:             testUser,
			Email:          "ada@example.com",
			EmailAddresses: []privacy.ExportedEmail{{Address: "ada@example.com", Verified: true, Primary: true}},
			FirstName:      ptr("Ada"),
			LastName:       ptr("Lovelace"),
			CreatedAt:      t0.AddDate(-1, 0, 0),
			LastSignIn:     ptr(t0.Add(-time.Hour)),
			Metadata:       privacy.ExportedUserMetadata{Public: map[string]any{"role": "user"}},
		},
		Data: map[string][]privacy.ExportGroup{
			"orders": {
				{Category: "orders", Records: []map[string]any{{"id": "ord_1", "total": 42.0}, {"id": "ord_2", "total": 7.5}}},
				{Category: "activityLog", Records: []map[string]any{{"action": "login"}}},
			},
			"preferences": {
				{Category: "preferences", Records: []map[string]any{{"theme": "dark"}}},
			},
		},
		Complete: true,
	}
	if diff := cmp.Diff(want, decodeDoc(t, buf.Bytes())); diff != "" {
		t.Errorf("export (-want +got):\n%s", diff)
	}
	// The stores still hold the dropped fields: sanitizing copies.
	for r := range w.orders.Export(ctx, testUser) {
		if r.Category == "orders" && r.Data["id"] == "ord_1" && r.Data["internalNotes"] != "VIP" {
			t.Errorf("the sanitizer changed the stored record: %v", r.Data)
		}
	}

	evs := w.events()
	if len(evs) != 1 || evs[0].Type != audit.DataExport {
		t.Fatalf("events %+v; want one data_export", evs)
	}
	if want := w.log.Pseudonymizer().Pseudonym(testUser); evs[0].Actor != want {
		t.Errorf("actor %q; want the principal's pseudonym", evs[0].Actor)
	}
	if diff := cmp.Diff(map[string]any{"mode": "inline", "stores": []any{"orders", "preferences"}, "formatVersion": 1}, evs[0].Details); diff != "" {
		t.Errorf("event details (-want +got):\n%s", diff)
	}
}

func TestExportIdentityShape(t *testing.T) {
	// The data-handling guide's shape: unknown names and sign-in are null,
	// the user without email has no "email" member.
	idp := steward.NewMemoryIdentity()
	idp.Put(steward.User{ID: "user_bare", CreatedAt: t0, PrivateMetadata: map[string]any{"note": "x"}})
	for _, tt := range []struct {
		name string
		opts []privacy.Option
		want string
	}{
		{"default", nil,
			`{"id":"user_bare","emailAddresses":[],"firstName":null,"lastName":null,"createdAt":"2025-01-31T10:00:00Z","lastSignIn":null,"metadata":{"public":{}}}`},
		{"WithPrivateMetadata", []privacy.Option{privacy.WithPrivateMetadata()},
			`{"id":"user_bare","emailAddresses":[],"firstName":null,"lastName":null,"createdAt":"2025-01-31T10:00:00Z","lastSignIn":null,"metadata":{"public":{},"private":{"note":"x"}}}`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			svc, err := privacy.NewService(idp, append(tt.opts, privacy.WithNow(func() time.Time { return t0 }))...)
			if err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			if err := svc.Export(context.Background(), "user_bare", &buf); err != nil {
				t.Fatal(err)
			}
			var raw struct {
				Identity json.RawMessage `json:"identity"`
				Data     json.RawMessage `json:"data"`
			}
			if err := json.Unmarshal(buf.Bytes(), &raw); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, string(raw.Identity)); diff != "" {
				t.Errorf("identity (-want +got):\n%s", diff)
			}
			if string(raw.Data) != "{}" {
				t.Errorf("data = %s; want {}", raw.Data)
			}
		})
	}
}

func TestExportFailures(t *testing.T) {
	ctx := context.Background()
	t.Run("unknown user: nothing written, no event", func(t *testing.T) {
		w := newWorld(t)
		var buf bytes.Buffer
		err := w.service().Export(ctx, "user_nobody", &buf)
		if !errors.Is(err, steward.ErrUserNotFound) || buf.Len() != 0 {
			t.Errorf("Export = %v with %d bytes; want ErrUserNotFound and nothing", err, buf.Len())
		}
		if n := len(w.events()); n != 0 {
			t.Errorf("%d audit events; want none", n)
		}
	})
	t.Run("invalid user ID", func(t *testing.T) {
		w := newWorld(t)
		if err := w.service().Export(ctx, "a b", &bytes.Buffer{}); !errors.Is(err, steward.ErrInvalidUserID) {
			t.Errorf("Export = %v; want ErrInvalidUserID", err)
		}
	})
	t.Run("audit refuses: nothing written", func(t *testing.T) {
		w := newWorld(t)
		var buf bytes.Buffer
		err := w.service(privacy.WithAudit(failingAudit{})).Export(ctx, testUser, &buf)
		if !errors.Is(err, audit.ErrNotRecorded) || buf.Len() != 0 {
			t.Errorf("Export = %v with %d bytes; want ErrNotRecorded and nothing", err, buf.Len())
		}
	})
	t.Run("store fails mid-stream: invalid document, redacted error", func(t *testing.T) {
		w := newWorld(t)
		bad := brokenStore(2)
		var buf bytes.Buffer
		err := w.service(privacy.WithStores(bad)).Export(ctx, testUser, &buf)
		if err == nil || !strings.Contains(err.Error(), `store "broken"`) {
			t.Fatalf("Export = %v; want the store's error", err)
		}
		noUserID(t, "error", err.Error())
		if json.Valid(buf.Bytes()) {
			t.Errorf("a failed export is valid JSON:\n%s", buf.Bytes())
		}
	})
}

// brokenStore is a store whose Export yields after records, then an
// error naming the user, as a connection lost mid-stream would.
func brokenStore(after int) privacy.DataStore {
	f := privacytest.NewFaultyStore(genStore{n: after + 1, name: "broken"})
	f.FailAfter(after, errors.New("connection reset while reading rows of "+testUser))
	return f
}

func TestStartExport(t *testing.T) {
	w := newWorld(t)
	blobs := &memBlobs{failN: 2}
	done := make(chan privacy.Request, 1)
	svc := w.service(privacy.WithBlobWriter(blobs), privacy.WithNotifier(notifier{done}))
	ctx := rbac.WithPrincipal(context.Background(), rbac.Principal{UserID: testUser})
	id, err := svc.StartExport(ctx, testUser)
	if err != nil {
		t.Fatal(err)
	}
	var got privacy.Request
	select {
	case got = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("no notification")
	}
	if got.ID != id || got.Status != privacy.StatusCompleted || got.Location != id+".json" || got.Steps[0].Attempts != 3 {
		t.Errorf("notified %+v; want request %s completed at %s.json after 3 attempts", got, id, id)
	}
	stored, err := svc.Request(ctx, id)
	if err != nil || stored.Status != privacy.StatusCompleted {
		t.Errorf("polled %+v, %v", stored, err)
	}
	b, ok := blobs.get(id + ".json")
	if !ok {
		t.Fatal("no blob written")
	}
	if doc := decodeDoc(t, b); doc.Identity.ID != testUser || !doc.Complete {
		t.Errorf("blob holds %+v", doc)
	}
	evs := w.events()
	if len(evs) != 1 || evs[0].Details["mode"] != "queued" || evs[0].Details["requestId"] != id {
		t.Errorf("events %+v; want one queued data_export naming the request", evs)
	}
}

func TestStartExportFailsThenResumes(t *testing.T) {
	w := newWorld(t)
	blobs := &memBlobs{failN: -1}
	done := make(chan privacy.Request, 2)
	svc := w.service(privacy.WithBlobWriter(blobs), privacy.WithNotifier(notifier{done}))
	ctx := context.Background()
	id, err := svc.StartExport(ctx, testUser)
	if err != nil {
		t.Fatal(err)
	}
	if r := <-done; r.Status != privacy.StatusPartial || r.Steps[0].Error == "" {
		t.Errorf("notified %+v; want partial with the error", r)
	}
	var attention []string
	for r := range svc.NeedsAttention(ctx) {
		attention = append(attention, r.ID)
	}
	if diff := cmp.Diff([]string{id}, attention); diff != "" {
		t.Errorf("NeedsAttention (-want +got):\n%s", diff)
	}
	blobs.mu.Lock()
	blobs.failN = 0
	blobs.mu.Unlock()
	if n, err := svc.ResumePending(ctx); n != 1 || err != nil {
		t.Fatalf("ResumePending = %d, %v", n, err)
	}
	if r := <-done; r.Status != privacy.StatusCompleted {
		t.Errorf("second notification %+v; want completed", r)
	}
	if _, ok := blobs.get(id + ".json"); !ok {
		t.Error("no blob after resume")
	}
}

func TestStartExportErrors(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	if _, err := w.service().StartExport(ctx, testUser); !errors.Is(err, privacy.ErrAsyncUnavailable) {
		t.Errorf("without a BlobWriter: %v; want ErrAsyncUnavailable", err)
	}
	svc := w.service(privacy.WithBlobWriter(&memBlobs{}))
	if _, err := svc.StartExport(ctx, "user_nobody"); !errors.Is(err, steward.ErrUserNotFound) {
		t.Errorf("unknown user: %v; want ErrUserNotFound", err)
	}
	if err := svc.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.StartExport(ctx, testUser); !errors.Is(err, privacy.ErrClosed) {
		t.Errorf("after Close: %v; want ErrClosed", err)
	}
}

func TestSanitizer(t *testing.T) {
	in := privacy.Record{Category: "orders", Data: map[string]any{"id": 1, "internalNotes": "x", "adminFlags": true}}
	got := testSanitizer.Sanitize(in)
	if diff := cmp.Diff(privacy.Record{Category: "orders", Data: map[string]any{"id": 1}}, got); diff != "" {
		t.Errorf("Sanitize (-want +got):\n%s", diff)
	}
	if len(in.Data) != 3 {
		t.Errorf("Sanitize changed its input: %v", in.Data)
	}
	other := privacy.Record{Category: "profile", Data: map[string]any{"internalNotes": "kept", "adminFlags": 1}}
	if diff := cmp.Diff(privacy.Record{Category: "profile", Data: map[string]any{"internalNotes": "kept"}}, testSanitizer.Sanitize(other)); diff != "" {
		t.Errorf("Sanitize of another category (-want +got):\n%s", diff)
	}
	if err := (privacy.Sanitizer{Drop: map[string][]string{"": {"x"}}}).Validate(); !errors.Is(err, privacy.ErrInvalidConfig) {
		t.Errorf("empty category: %v; want ErrInvalidConfig", err)
	}
}

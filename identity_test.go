package steward_test

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stewardlabs/steward"
)

func TestValidateUserID(t *testing.T) {
	tests := []struct {
		name    string
		id      string
		wantErr string // "" means valid
	}{
		{"Clerk ID", "user_2NNEqL2nrIRdJ194ndJqAHwEfxC", ""},
		{"one character", "a", ""},
		{"hyphens and upper case", "USER-42-x", ""},
		{"longest allowed", strings.Repeat("u", steward.MaxUserIDLen), ""},
		{"empty", "", "steward: invalid user ID: empty"},
		{"one byte too long", strings.Repeat("u", steward.MaxUserIDLen+1), "steward: invalid user ID: 129 bytes long (max 128)"},
		{"space", "user 1", "steward: invalid user ID: disallowed character at byte 4"},
		{"path traversal", "user_1/../../v1/users", "steward: invalid user ID: disallowed character at byte 6"},
		{"dot", "user.1", "steward: invalid user ID: disallowed character at byte 4"},
		{"query string", "user_1?limit=500", "steward: invalid user ID: disallowed character at byte 6"},
		{"percent-encoding", "%2e%2e", "steward: invalid user ID: disallowed character at byte 0"},
		{"SQL quote", "x' OR '1'='1", "steward: invalid user ID: disallowed character at byte 1"},
		{"SQL statement", "1;DROP TABLE users;--", "steward: invalid user ID: disallowed character at byte 1"},
		{"log line injection", "user_1\nlevel=ERROR", "steward: invalid user ID: disallowed character at byte 6"},
		{"NUL byte", "user_1\x00", "steward: invalid user ID: disallowed character at byte 6"},
		{"non-ASCII letter", "usér", "steward: invalid user ID: disallowed character at byte 2"},
		{"HTML", "<script>", "steward: invalid user ID: disallowed character at byte 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := steward.ValidateUserID(tt.id)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("ValidateUserID(%q) = %v, want nil", tt.id, err)
				}
				return
			}
			if !errors.Is(err, steward.ErrInvalidUserID) {
				t.Fatalf("ValidateUserID(%q) = %v, want an error wrapping ErrInvalidUserID", tt.id, err)
			}
			if diff := cmp.Diff(tt.wantErr, err.Error()); diff != "" {
				t.Errorf("error text (-want +got):\n%s", diff)
			}
			if len(tt.id) > 1 && strings.Contains(err.Error(), tt.id) {
				t.Errorf("error %q contains the ID", err)
			}
		})
	}
}

func TestMergeMetadata(t *testing.T) {
	tests := []struct {
		name       string
		dst, patch map[string]any
		want       map[string]any
	}{
		{
			name:  "into nil",
			patch: map[string]any{"role": "admin"},
			want:  map[string]any{"role": "admin"},
		},
		{
			name: "nil patch keeps dst",
			dst:  map[string]any{"role": "user"},
			want: map[string]any{"role": "user"},
		},
		{
			name:  "new keys are added, others kept",
			dst:   map[string]any{"role": "user"},
			patch: map[string]any{"plan": "pro"},
			want:  map[string]any{"role": "user", "plan": "pro"},
		},
		{
			name:  "nested objects merge key by key, at any depth",
			dst:   map[string]any{"a": map[string]any{"b": map[string]any{"c": 1, "d": 2}, "e": 3}},
			patch: map[string]any{"a": map[string]any{"b": map[string]any{"c": 10, "f": 4}}},
			want:  map[string]any{"a": map[string]any{"b": map[string]any{"c": 10, "d": 2, "f": 4}, "e": 3}},
		},
		{
			name:  "nil removes a top-level key",
			dst:   map[string]any{"role": "user", "plan": "pro"},
			patch: map[string]any{"role": nil},
			want:  map[string]any{"plan": "pro"},
		},
		{
			name:  "nil removes a nested key",
			dst:   map[string]any{"profile": map[string]any{"theme": "dark", "lang": "en"}},
			patch: map[string]any{"profile": map[string]any{"lang": nil}},
			want:  map[string]any{"profile": map[string]any{"theme": "dark"}},
		},
		{
			name:  "removing a missing key is a no-op",
			dst:   map[string]any{"role": "user", "profile": map[string]any{"theme": "dark"}},
			patch: map[string]any{"gone": nil, "profile": map[string]any{"gone": nil}},
			want:  map[string]any{"role": "user", "profile": map[string]any{"theme": "dark"}},
		},
		{
			name:  "an object patch on a missing key creates it, as JSON Merge Patch does",
			dst:   map[string]any{"role": "user"},
			patch: map[string]any{"profile": map[string]any{"gone": nil, "theme": "dark"}},
			want:  map[string]any{"role": "user", "profile": map[string]any{"theme": "dark"}},
		},
		{
			name:  "a scalar replaces an object",
			dst:   map[string]any{"profile": map[string]any{"theme": "dark"}},
			patch: map[string]any{"profile": "none"},
			want:  map[string]any{"profile": "none"},
		},
		{
			name:  "an object replaces a scalar",
			dst:   map[string]any{"role": "user"},
			patch: map[string]any{"role": map[string]any{"name": "admin"}},
			want:  map[string]any{"role": map[string]any{"name": "admin"}},
		},
		{
			name:  "arrays are replaced, not merged",
			dst:   map[string]any{"tags": []any{"a", "b"}},
			patch: map[string]any{"tags": []any{"c"}},
			want:  map[string]any{"tags": []any{"c"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := steward.CloneMetadata(tt.dst)
			got := steward.MergeMetadata(tt.dst, tt.patch)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("MergeMetadata (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(before, tt.dst); diff != "" {
				t.Errorf("MergeMetadata modified dst (-before +after):\n%s", diff)
			}
		})
	}
}

func TestMergeMetadataSharesNothing(t *testing.T) {
	dst := map[string]any{"profile": map[string]any{"theme": "dark"}, "tags": []any{"a"}}
	patch := map[string]any{"extra": map[string]any{"k": "v"}, "list": []any{map[string]any{"x": 1}}}
	got := steward.MergeMetadata(dst, patch)

	// Changing the result must not reach either argument.
	got["profile"].(map[string]any)["theme"] = "changed"
	got["tags"].([]any)[0] = "changed"
	got["extra"].(map[string]any)["k"] = "changed"
	got["list"].([]any)[0].(map[string]any)["x"] = "changed"

	wantDst := map[string]any{"profile": map[string]any{"theme": "dark"}, "tags": []any{"a"}}
	wantPatch := map[string]any{"extra": map[string]any{"k": "v"}, "list": []any{map[string]any{"x": 1}}}
	if diff := cmp.Diff(wantDst, dst); diff != "" {
		t.Errorf("dst shares memory with the result (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(wantPatch, patch); diff != "" {
		t.Errorf("patch shares memory with the result (-want +got):\n%s", diff)
	}
}

func TestCloneMetadata(t *testing.T) {
	if got := steward.CloneMetadata(nil); got != nil {
		t.Errorf("CloneMetadata(nil) = %v, want nil", got)
	}
	m := map[string]any{"a": map[string]any{"b": []any{map[string]any{"c": 1}}}}
	c := steward.CloneMetadata(m)
	c["a"].(map[string]any)["b"].([]any)[0].(map[string]any)["c"] = 2
	if diff := cmp.Diff(map[string]any{"a": map[string]any{"b": []any{map[string]any{"c": 1}}}}, m); diff != "" {
		t.Errorf("CloneMetadata shares memory (-want +got):\n%s", diff)
	}
}

func TestMetadataPatchValidate(t *testing.T) {
	tests := []struct {
		name    string
		p       *steward.MetadataPatch
		wantErr string
	}{
		{"nil patch", nil, "steward: invalid metadata patch: patch is nil"},
		{"zero patch", &steward.MetadataPatch{}, "steward: invalid metadata patch: patch changes neither public nor private metadata"},
		{"empty maps", &steward.MetadataPatch{Public: map[string]any{}, Private: map[string]any{}}, "steward: invalid metadata patch: patch changes neither public nor private metadata"},
		{"public only", &steward.MetadataPatch{Public: map[string]any{"role": "admin"}}, ""},
		{"private only", &steward.MetadataPatch{Private: map[string]any{"note": nil}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.p.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, steward.ErrInvalidPatch) {
				t.Fatalf("Validate() = %v, want an error wrapping ErrInvalidPatch", err)
			}
			if diff := cmp.Diff(tt.wantErr, err.Error()); diff != "" {
				t.Errorf("error text (-want +got):\n%s", diff)
			}
		})
	}
}

func TestUserQueryValidate(t *testing.T) {
	tests := []struct {
		name    string
		q       steward.UserQuery
		wantErr string
	}{
		{"zero", steward.UserQuery{}, ""},
		{"all set", steward.UserQuery{CreatedBefore: time.Now(), LastActiveBefore: time.Now(), Limit: 10, PageSize: 500}, ""},
		{"negative Limit", steward.UserQuery{Limit: -1}, "steward: invalid user query: Limit is negative (-1)"},
		{"negative PageSize", steward.UserQuery{PageSize: -3}, "steward: invalid user query: PageSize is negative (-3)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.q.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, steward.ErrInvalidQuery) {
				t.Fatalf("Validate() = %v, want an error wrapping ErrInvalidQuery", err)
			}
			if diff := cmp.Diff(tt.wantErr, err.Error()); diff != "" {
				t.Errorf("error text (-want +got):\n%s", diff)
			}
		})
	}
}

func TestUserQueryMatches(t *testing.T) {
	day := func(n int) time.Time { return time.Date(2025, 1, n, 0, 0, 0, 0, time.UTC) }
	created5 := steward.User{CreatedAt: day(5)}
	active8 := steward.User{CreatedAt: day(5), LastActiveAt: day(8)}
	tests := []struct {
		name string
		q    steward.UserQuery
		u    steward.User
		want bool
	}{
		{"zero query matches everyone", steward.UserQuery{}, created5, true},
		{"Limit does not filter", steward.UserQuery{Limit: 1}, created5, true},
		{"created before the cutoff", steward.UserQuery{CreatedBefore: day(6)}, created5, true},
		{"created at the cutoff is not before it", steward.UserQuery{CreatedBefore: day(5)}, created5, false},
		{"created after the cutoff", steward.UserQuery{CreatedBefore: day(4)}, created5, false},
		{"never active counts from creation", steward.UserQuery{LastActiveBefore: day(6)}, created5, true},
		{"never active, created at the cutoff", steward.UserQuery{LastActiveBefore: day(5)}, created5, false},
		{"active after the cutoff", steward.UserQuery{LastActiveBefore: day(7)}, active8, false},
		{"active before the cutoff", steward.UserQuery{LastActiveBefore: day(9)}, active8, true},
		{"both filters must hold", steward.UserQuery{LastActiveBefore: day(9), CreatedBefore: day(5)}, active8, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.q.Matches(tt.u); got != tt.want {
				t.Errorf("Matches = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestUserLogValueHidesPersonalData(t *testing.T) {
	u := steward.User{
		ID:              "user_2SecretIdentifier",
		EmailAddresses:  []steward.EmailAddress{{ID: "idn_SecretEmailID", Address: "ada.secret@example.com", Verified: true}},
		PrimaryEmailID:  "idn_SecretEmailID",
		FirstName:       "Adasecret",
		LastName:        "Lovelacesecret",
		ImageURL:        "https://img.example.com/secret.png",
		PublicMetadata:  map[string]any{"role": "admin", "nickname": "secretnick"},
		PrivateMetadata: map[string]any{"stripe": "cus_secret"},
		Banned:          true,
	}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("loaded", "user", u)
	line := buf.Bytes()

	for _, secret := range []string{u.ID, "SecretEmailID", "ada.secret", "example.com", "Adasecret", "Lovelacesecret", "secret.png", "secretnick", "cus_secret"} {
		if bytes.Contains(line, []byte(secret)) {
			t.Errorf("log line contains %q: %s", secret, line)
		}
	}
	for _, want := range []string{`"hasID":true`, `"emails":1`, `"banned":true`, `"locked":false`} {
		if !bytes.Contains(line, []byte(want)) {
			t.Errorf("log line lacks %s: %s", want, line)
		}
	}
}

func TestUserPrimaryEmail(t *testing.T) {
	a := steward.EmailAddress{ID: "idn_a", Address: "a@example.com", Verified: false}
	b := steward.EmailAddress{ID: "idn_b", Address: "b@example.com", Verified: true}
	tests := []struct {
		name         string
		u            steward.User
		want         steward.EmailAddress
		wantOK       bool
		wantVerified bool
	}{
		{"no addresses", steward.User{}, steward.EmailAddress{}, false, false},
		{"primary is the second", steward.User{EmailAddresses: []steward.EmailAddress{a, b}, PrimaryEmailID: "idn_b"}, b, true, true},
		{"unverified primary", steward.User{EmailAddresses: []steward.EmailAddress{a, b}, PrimaryEmailID: "idn_a"}, a, true, false},
		{"no primary set: the first", steward.User{EmailAddresses: []steward.EmailAddress{b, a}}, b, true, true},
		{"primary ID matches no address", steward.User{EmailAddresses: []steward.EmailAddress{a, b}, PrimaryEmailID: "idn_gone"}, steward.EmailAddress{}, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := tt.u.PrimaryEmail()
			if diff := cmp.Diff(tt.want, got); diff != "" || ok != tt.wantOK {
				t.Errorf("PrimaryEmail() = %+v, %v; want %+v, %v", got, ok, tt.want, tt.wantOK)
			}
			if v := tt.u.EmailVerified(); v != tt.wantVerified {
				t.Errorf("EmailVerified() = %v, want %v", v, tt.wantVerified)
			}
		})
	}
}

func TestUserClone(t *testing.T) {
	u := steward.User{
		ID:              "user_1",
		EmailAddresses:  []steward.EmailAddress{{ID: "idn_1", Address: "a@example.com"}},
		PublicMetadata:  map[string]any{"profile": map[string]any{"theme": "dark"}},
		PrivateMetadata: map[string]any{"tags": []any{"x"}},
	}
	want := u.Clone()
	c := u.Clone()
	c.EmailAddresses[0].Address = "changed"
	c.PublicMetadata["profile"].(map[string]any)["theme"] = "changed"
	c.PrivateMetadata["tags"].([]any)[0] = "changed"
	if diff := cmp.Diff(want, u); diff != "" {
		t.Errorf("changing a clone changed the original (-want +got):\n%s", diff)
	}
	if got := (steward.User{}).Clone(); got.EmailAddresses != nil || got.PublicMetadata != nil {
		t.Errorf("clone of a zero User = %+v, want nil slices and maps", got)
	}
}

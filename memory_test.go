package steward_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/stewardlabs/steward"
	"github.com/stewardlabs/steward/identitytest"
)

// memoryHarness runs the conformance suite on a MemoryIdentity.
type memoryHarness struct{ m *steward.MemoryIdentity }

func (h memoryHarness) Provider() steward.IdentityProvider { return h.m }

func (h memoryHarness) CreateUser(ctx context.Context, u steward.User) (steward.User, error) {
	h.m.Put(u)
	return h.m.GetUser(ctx, u.ID)
}

func (h memoryHarness) Capabilities() identitytest.Capabilities {
	return identitytest.Capabilities{KeepsCreatedAt: true, KeepsLastActiveAt: true}
}

func (h memoryHarness) Close() {}

func TestMemoryIdentityConformance(t *testing.T) {
	identitytest.RunConformance(t, func(ctx context.Context, t *testing.T) (identitytest.Harness, error) {
		return memoryHarness{steward.NewMemoryIdentity()}, nil
	})
}

func TestMemoryIdentityZeroValueConformance(t *testing.T) {
	identitytest.RunConformance(t, func(ctx context.Context, t *testing.T) (identitytest.Harness, error) {
		return memoryHarness{new(steward.MemoryIdentity)}, nil
	})
}

// stepClock returns a clock that starts at start and advances by one
// second on each call.
func stepClock(start time.Time) func() time.Time {
	var mu sync.Mutex
	now := start
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		t := now
		now = now.Add(time.Second)
		return t
	}
}

var t0 = time.Date(2025, time.January, 2, 3, 4, 5, 0, time.UTC)

func TestMemoryIdentityPutTimestamps(t *testing.T) {
	ctx := t.Context()
	m := steward.NewMemoryIdentity(steward.WithNow(stepClock(t0)))

	m.Put(steward.User{ID: "user_new"}) // clock: t0
	m.Put(steward.User{ID: "user_old", CreatedAt: t0.Add(-time.Hour)})
	m.Put(steward.User{ID: "user_set", CreatedAt: t0.Add(-2 * time.Hour), UpdatedAt: t0.Add(-time.Minute)})

	tests := []struct {
		id                   string
		wantCreated, wantUpd time.Time
	}{
		{"user_new", t0, t0},
		{"user_old", t0.Add(-time.Hour), t0.Add(-time.Hour)},
		{"user_set", t0.Add(-2 * time.Hour), t0.Add(-time.Minute)},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			u, err := m.GetUser(ctx, tt.id)
			if err != nil {
				t.Fatal(err)
			}
			if !u.CreatedAt.Equal(tt.wantCreated) || !u.UpdatedAt.Equal(tt.wantUpd) {
				t.Errorf("CreatedAt, UpdatedAt = %v, %v; want %v, %v", u.CreatedAt, u.UpdatedAt, tt.wantCreated, tt.wantUpd)
			}
		})
	}
}

func TestMemoryIdentityPutReplaces(t *testing.T) {
	ctx := t.Context()
	m := steward.NewMemoryIdentity(steward.WithNow(stepClock(t0)))
	m.Put(steward.User{ID: "user_a", CreatedAt: t0, FirstName: "Ada"})
	m.Put(steward.User{ID: "user_b", CreatedAt: t0.Add(time.Hour)})
	// Replacing user_a with a later creation time moves it after user_b.
	m.Put(steward.User{ID: "user_a", CreatedAt: t0.Add(2 * time.Hour), FirstName: "Grace"})

	var got []string
	for u, err := range m.ListUsers(ctx, steward.UserQuery{}) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, u.ID+":"+u.FirstName)
	}
	if diff := cmp.Diff([]string{"user_b:", "user_a:Grace"}, got); diff != "" {
		t.Errorf("ListUsers after replacing (-want +got):\n%s", diff)
	}
	a, err := m.GetUser(ctx, "user_a")
	if err != nil {
		t.Fatal(err)
	}
	// The replacement had no UpdatedAt, so it is the time of the Put
	// (the clock's first reading was used by the first Put).
	if want := t0.Add(2 * time.Second); !a.UpdatedAt.Equal(want) {
		t.Errorf("UpdatedAt of a replaced user = %v, want %v", a.UpdatedAt, want)
	}
}

func TestMemoryIdentityPutCopies(t *testing.T) {
	ctx := t.Context()
	m := steward.NewMemoryIdentity()
	u := steward.User{
		ID:             "user_1",
		EmailAddresses: []steward.EmailAddress{{ID: "idn_1", Address: "a@example.com"}},
		PublicMetadata: map[string]any{"profile": map[string]any{"theme": "dark"}},
	}
	m.Put(u)
	u.EmailAddresses[0].Address = "changed@example.com"
	u.PublicMetadata["profile"].(map[string]any)["theme"] = "changed"

	got, err := m.GetUser(ctx, "user_1")
	if err != nil {
		t.Fatal(err)
	}
	if got.EmailAddresses[0].Address != "a@example.com" || got.PublicMetadata["profile"].(map[string]any)["theme"] != "dark" {
		t.Errorf("Put kept a reference to the caller's user: %+v", got)
	}
}

func TestMemoryIdentityPutStoresJSONMetadata(t *testing.T) {
	ctx := t.Context()
	type plan struct {
		Name  string `json:"name"`
		Seats int    `json:"seats"`
	}
	m := steward.NewMemoryIdentity()
	m.Put(steward.User{
		ID:              "user_1",
		PublicMetadata:  map[string]any{"count": 3, "plan": plan{"pro", 5}},
		PrivateMetadata: map[string]any{"bad": make(chan int), "kept": "yes"},
	})
	got, err := m.GetUser(ctx, "user_1")
	if err != nil {
		t.Fatal(err)
	}
	wantPublic := map[string]any{"count": 3.0, "plan": map[string]any{"name": "pro", "seats": 5.0}}
	if diff := cmp.Diff(wantPublic, got.PublicMetadata); diff != "" {
		t.Errorf("public metadata is not stored in its JSON form (-want +got):\n%s", diff)
	}
	// Metadata that JSON cannot hold is kept as a copy rather than lost.
	if got.PrivateMetadata["kept"] != "yes" || got.PrivateMetadata["bad"] == nil {
		t.Errorf("private metadata that cannot be encoded was not kept: %v", got.PrivateMetadata)
	}
}

func TestMemoryIdentityPutInvalidID(t *testing.T) {
	ctx := t.Context()
	m := steward.NewMemoryIdentity()
	m.Put(steward.User{ID: "not a valid id"})

	n := 0
	for _, err := range m.ListUsers(ctx, steward.UserQuery{}) {
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	if n != 1 {
		t.Errorf("ListUsers yielded %d users, want the 1 stored with an invalid ID", n)
	}
	if _, err := m.GetUser(ctx, "not a valid id"); !errors.Is(err, steward.ErrInvalidUserID) {
		t.Errorf("GetUser of an invalid ID: %v, want ErrInvalidUserID", err)
	}
}

func TestMemoryIdentityUpdateMetadataBumpsUpdatedAt(t *testing.T) {
	ctx := t.Context()
	m := steward.NewMemoryIdentity(steward.WithNow(stepClock(t0)))
	m.Put(steward.User{ID: "user_1", CreatedAt: t0.Add(-time.Hour)})
	if err := m.UpdateMetadata(ctx, "user_1", steward.MetadataPatch{Public: map[string]any{"role": "admin"}}); err != nil {
		t.Fatal(err)
	}
	u, err := m.GetUser(ctx, "user_1")
	if err != nil {
		t.Fatal(err)
	}
	// The first clock reading went to Put; the update got the second.
	if want := t0.Add(time.Second); !u.UpdatedAt.Equal(want) {
		t.Errorf("UpdatedAt = %v, want %v", u.UpdatedAt, want)
	}
}

func TestMemoryIdentityErrors(t *testing.T) {
	ctx := t.Context()
	m := steward.NewMemoryIdentity()
	m.Put(steward.User{ID: "user_1"})
	patch := steward.MetadataPatch{Public: map[string]any{"role": "admin"}}

	tests := []struct {
		name string
		err  error
		want error
		text string
	}{
		{"GetUser empty ID", get(m, ctx, ""), steward.ErrInvalidUserID,
			"memory identity: get user: steward: invalid user ID: empty"},
		{"GetUser unknown", get(m, ctx, "user_2"), steward.ErrUserNotFound,
			"memory identity: get user: steward: user not found"},
		{"UpdateMetadata nil-free empty patch", m.UpdateMetadata(ctx, "user_1", steward.MetadataPatch{}), steward.ErrInvalidPatch,
			"memory identity: update metadata: steward: invalid metadata patch: patch changes neither public nor private metadata"},
		{"UpdateMetadata NaN", m.UpdateMetadata(ctx, "user_1", steward.MetadataPatch{Private: map[string]any{"x": math.NaN()}}), steward.ErrInvalidPatch,
			"memory identity: update metadata: steward: invalid metadata patch: Private: json: unsupported value: NaN"},
		{"UpdateMetadata unknown", m.UpdateMetadata(ctx, "user_2", patch), steward.ErrUserNotFound,
			"memory identity: update metadata: steward: user not found"},
		{"DeleteUser bad ID", m.DeleteUser(ctx, "user/1"), steward.ErrInvalidUserID,
			"memory identity: delete user: steward: invalid user ID: disallowed character at byte 4"},
		{"DeleteUser cancelled", m.DeleteUser(cancelledCtx(ctx), "user_1"), context.Canceled,
			"memory identity: delete user: context canceled"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !errors.Is(tt.err, tt.want) {
				t.Errorf("error %v does not wrap %v", tt.err, tt.want)
			}
			if tt.err == nil || tt.err.Error() != tt.text {
				t.Errorf("error text = %q, want %q", tt.err, tt.text)
			}
		})
	}
}

func get(m *steward.MemoryIdentity, ctx context.Context, id string) error {
	_, err := m.GetUser(ctx, id)
	return err
}

func cancelledCtx(ctx context.Context) context.Context {
	ctx, cancel := context.WithCancel(ctx)
	cancel()
	return ctx
}

// TestMemoryIdentityPaging checks that every combination of page size,
// limit and filter yields the same users as one unpaged pass would.
func TestMemoryIdentityPaging(t *testing.T) {
	ctx := t.Context()
	m := steward.NewMemoryIdentity()
	var all []steward.User
	for i := range 25 {
		u := steward.User{
			ID:        fmt.Sprintf("user_%02d", (i*7)%25),     // IDs out of creation order
			CreatedAt: t0.Add(time.Duration(i/2) * time.Hour), // pairs of ties
		}
		m.Put(u)
		all = append(all, u)
	}
	wantIDs := func(q steward.UserQuery) []string {
		var out []string
		for _, u := range sortUsers(all) {
			if q.Matches(u) && (q.Limit == 0 || len(out) < q.Limit) {
				out = append(out, u.ID)
			}
		}
		return out
	}
	for _, size := range []int{0, 1, 2, 5, 24, 25, 26, 1000} {
		for _, limit := range []int{0, 1, 3, 25, 30} {
			for _, before := range []time.Time{{}, t0.Add(5 * time.Hour), t0} {
				q := steward.UserQuery{PageSize: size, Limit: limit, CreatedBefore: before}
				var got []string
				for u, err := range m.ListUsers(ctx, q) {
					if err != nil {
						t.Fatalf("ListUsers(%+v): %v", q, err)
					}
					got = append(got, u.ID)
				}
				if diff := cmp.Diff(wantIDs(q), got, cmpopts.EquateEmpty()); diff != "" {
					t.Errorf("ListUsers(%+v) (-want +got):\n%s", q, diff)
				}
			}
		}
	}
}

func sortUsers(users []steward.User) []steward.User {
	out := append([]steward.User(nil), users...)
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && less(out[j], out[j-1]); j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

func less(a, b steward.User) bool {
	if !a.CreatedAt.Equal(b.CreatedAt) {
		return a.CreatedAt.Before(b.CreatedAt)
	}
	return a.ID < b.ID
}

package identitytest

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/stewardlabs/steward"
	"github.com/stewardlabs/steward/internal/conformance"
)

// maker is HarnessMaker over tb.
type maker func(ctx context.Context, t tb) (Harness, error)

// testCase is one rule of the suite.
type testCase = conformance.Case[*env]

// run runs every case as a subtest of t.
func run(t tb, mk maker, cfg config) {
	conformance.RunCases(t, cases(), func(ctx context.Context, t tb) *env {
		h, err := mk(ctx, t)
		if err != nil {
			t.Fatalf("making the harness: %v", err)
		}
		t.Cleanup(h.Close)
		return &env{tb: t, cfg: cfg, ctx: ctx, h: h, p: h.Provider(), caps: h.Capabilities()}
	})
}

func cases() []testCase {
	return []testCase{
		// GetUser
		{Name: "GetUser returns the user as CreateUser stored it", Run: getReturnsStored},
		{Name: "GetUser returns the fields the user was created with", Run: getKeepsFields},
		{Name: "GetUser of an unknown ID returns ErrUserNotFound", Run: getUnknown},
		{Name: "GetUser returns a copy: changing it changes nothing stored", Run: getReturnsCopy},
		{Name: "GetUser with a cancelled context returns the context's error", Run: getCancelled},

		// UpdateMetadata
		{Name: "UpdateMetadata adds keys and keeps the others", Run: updateAddsKeys},
		{Name: "UpdateMetadata deep-merges nested objects key by key", Run: updateDeepMerges},
		{Name: "a nil value removes a key, at the top level and inside nested objects", Run: updateNilRemoves},
		{Name: "removing a key that does not exist changes nothing", Run: updateRemoveMissing},
		{Name: "a non-object value replaces an object, and an object replaces a non-object", Run: updateReplaces},
		{Name: "arrays are replaced, not merged", Run: updateArraysReplaced},
		{Name: "a patch of public metadata leaves private metadata alone, and the reverse", Run: updateSidesIndependent},
		{Name: "metadata reads back as JSON values: numbers are float64", Run: updateJSONNumbers},
		{Name: "UpdateMetadata changes no other field and does not move UpdatedAt backwards", Run: updateOtherFields},
		{Name: "UpdateMetadata keeps no reference to the patch", Run: updateNoAliasing},
		{Name: "UpdateMetadata of an unknown ID returns ErrUserNotFound", Run: updateUnknown},
		{Name: "an empty patch returns ErrInvalidPatch and changes nothing", Run: updateEmptyPatch},
		{Name: "a patch that cannot be encoded as JSON returns ErrInvalidPatch and changes nothing", Run: updateNonJSONPatch},
		{Name: "UpdateMetadata with a cancelled context returns the context's error and changes nothing", Run: updateCancelled},

		// DeleteUser
		{Name: "DeleteUser removes the user from GetUser and ListUsers", Run: deleteRemoves},
		{Name: "DeleteUser of a user that never existed is not an error", Run: deleteMissing},
		{Name: "DeleteUser of an already deleted user is not an error", Run: deleteTwice},
		{Name: "DeleteUser leaves other users untouched", Run: deleteOthersUntouched},
		{Name: "DeleteUser with a cancelled context returns the context's error and deletes nothing", Run: deleteCancelled},

		// ListUsers
		{Name: "ListUsers of an empty provider yields nothing", Run: listEmpty},
		{Name: "ListUsers yields every user once, oldest first, ties broken by ID, whatever the PageSize", Run: listOrder},
		{Name: "ListUsers honours Limit", Run: listLimit},
		{Name: "ListUsers stops when the consumer stops", Run: listStops},
		{Name: "ListUsers can be ranged over more than once", Run: listTwice},
		{Name: "ListUsers with CreatedBefore yields only users created strictly before it", Run: listCreatedBefore},
		{Name: "ListUsers with LastActiveBefore counts a never-active user from its creation", Run: listLastActiveBefore},
		{Name: "Limit counts matching users only", Run: listFilterLimit},
		{Name: "ListUsers yields copies: changing them changes nothing stored", Run: listReturnsCopies},
		{Name: "the consumer may update and delete each user while ListUsers yields", Run: listConsumerCalls},
		{Name: "a negative Limit or PageSize yields ErrInvalidQuery", Run: listInvalidQuery},
		{Name: "ListUsers with a cancelled context yields the context's error", Run: listCancelled},
		{Name: "cancelling the context during ListUsers ends it with the context's error", Run: listCancelledDuring},

		// Across methods
		{Name: "every method rejects a malformed ID with ErrInvalidUserID", Run: invalidIDs},
		{Name: "errors never contain the user ID", Run: errorsHideID},
		{Name: "concurrent UpdateMetadata calls on different keys are all applied", Run: concurrentUpdates},
		{Name: "concurrent calls of every method are safe", Run: concurrentMixed},
	}
}

// env is what a case works with.
type env struct {
	tb
	cfg  config
	ctx  context.Context
	h    Harness
	p    steward.IdentityProvider
	caps Capabilities
	next int
}

// base is the first fixture creation time, at millisecond precision like
// Clerk's timestamps.
var base = time.Date(2024, time.March, 1, 9, 30, 0, 0, time.UTC)

func day(n int) time.Time { return base.Add(time.Duration(n) * 24 * time.Hour) }

// fixture returns a new user with every field the suite sets filled in.
func (e *env) fixture() steward.User {
	e.next++
	i := e.next
	return steward.User{
		ID: fmt.Sprintf("user_conformance%03d", i),
		EmailAddresses: []steward.EmailAddress{
			{ID: fmt.Sprintf("idn_conformance%03da", i), Address: fmt.Sprintf("person%03d@example.com", i), Verified: true},
			{ID: fmt.Sprintf("idn_conformance%03db", i), Address: fmt.Sprintf("person%03d@example.org", i)},
		},
		PrimaryEmailID: fmt.Sprintf("idn_conformance%03da", i),
		FirstName:      "Ada",
		LastName:       fmt.Sprintf("Tester%03d", i),
		ImageURL:       fmt.Sprintf("https://img.example.com/%03d.png", i),
		CreatedAt:      day(i),
		PublicMetadata: map[string]any{
			"role":    "user",
			"profile": map[string]any{"theme": "dark", "lang": "en"},
			"tags":    []any{"a", "b"},
		},
		PrivateMetadata: map[string]any{
			"note":    "vip",
			"billing": map[string]any{"plan": "free", "seats": 1.0},
		},
	}
}

// create stores u through the harness and returns the stored user.
func (e *env) create(u steward.User) steward.User {
	e.Helper()
	got, err := e.h.CreateUser(e.ctx, u)
	if err != nil {
		e.Fatalf("Harness.CreateUser: %v", err)
	}
	if err := steward.ValidateUserID(got.ID); err != nil {
		e.Fatalf("Harness.CreateUser returned a user whose ID is not valid: %v", err)
	}
	if e.caps.KeepsCreatedAt && !got.CreatedAt.Equal(u.CreatedAt) {
		e.Fatalf("Harness.CreateUser returned CreatedAt %v, want %v (Capabilities.KeepsCreatedAt is set)", got.CreatedAt, u.CreatedAt)
	}
	if e.caps.KeepsLastActiveAt && !got.LastActiveAt.Equal(u.LastActiveAt) {
		e.Fatalf("Harness.CreateUser returned LastActiveAt %v, want %v (Capabilities.KeepsLastActiveAt is set)", got.LastActiveAt, u.LastActiveAt)
	}
	return got
}

// createN creates n fixture users, letting edit change each first.
func (e *env) createN(n int, edit func(i int, u *steward.User)) []steward.User {
	e.Helper()
	users := make([]steward.User, n)
	for i := range users {
		u := e.fixture()
		if edit != nil {
			edit(i, &u)
		}
		users[i] = e.create(u)
	}
	return users
}

// get returns the user or stops the case.
func (e *env) get(id string) steward.User {
	e.Helper()
	u, err := e.p.GetUser(e.ctx, id)
	if err != nil {
		e.Fatalf("GetUser of an existing user: %v", err)
	}
	return u
}

// update applies p or stops the case.
func (e *env) update(id string, p steward.MetadataPatch) {
	e.Helper()
	if err := e.p.UpdateMetadata(e.ctx, id, p); err != nil {
		e.Fatalf("UpdateMetadata(%v): %v", p, err)
	}
}

// wantErr reports when err does not wrap target.
func (e *env) wantErr(op string, err, target error) {
	e.Helper()
	if !errors.Is(err, target) {
		e.Errorf("%s: got error %v, want one wrapping %v", op, err, target)
	}
}

// wantUnchanged reports when the stored user differs from want.
func (e *env) wantUnchanged(what string, want steward.User) {
	e.Helper()
	got, err := e.p.GetUser(e.ctx, want.ID)
	if err != nil {
		e.Errorf("%s: GetUser afterwards: %v", what, err)
		return
	}
	if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
		e.Errorf("%s changed the stored user (-before +after):\n%s", what, diff)
	}
}

// wantMetadata reports when the stored metadata differs from want.
func (e *env) wantMetadata(id string, wantPublic, wantPrivate map[string]any) {
	e.Helper()
	got := e.get(id)
	if diff := cmp.Diff(wantPublic, got.PublicMetadata, cmpopts.EquateEmpty()); diff != "" {
		e.Errorf("public metadata (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(wantPrivate, got.PrivateMetadata, cmpopts.EquateEmpty()); diff != "" {
		e.Errorf("private metadata (-want +got):\n%s", diff)
	}
}

// maxYields bounds how many users the suite accepts from one ListUsers,
// so a sequence that never ends fails instead of hanging.
const maxYields = 10_000

// collect ranges over seq the way a careful consumer would, checking the
// iterator protocol: no yield after the consumer stopped, none after an
// error, and errors come with a zero User.
func (e *env) collect(seq iter.Seq2[steward.User, error]) ([]steward.User, error) {
	e.Helper()
	var (
		users   []steward.User
		listErr error
		stopped bool
	)
	seq(func(u steward.User, err error) bool {
		switch {
		case stopped:
			e.Errorf("ListUsers called yield again after it returned false")
			return false
		case listErr != nil:
			e.Errorf("ListUsers yielded again after an error: iteration must end at the first error")
			stopped = true
			return false
		case err != nil:
			listErr = err
			if !cmp.Equal(u, steward.User{}) {
				e.Errorf("ListUsers yielded a non-zero User with its error")
			}
			return true // the sequence must end on its own
		}
		users = append(users, u)
		if len(users) > maxYields {
			e.Errorf("ListUsers yielded more than %d users: it does not seem to end", maxYields)
			stopped = true
			return false
		}
		return true
	})
	return users, listErr
}

// list collects ListUsers(q) and stops the case on error.
func (e *env) list(q steward.UserQuery) []steward.User {
	e.Helper()
	users, err := e.collect(e.p.ListUsers(e.ctx, q))
	if err != nil {
		e.Fatalf("ListUsers(%s): %v", describe(q), err)
	}
	return users
}

// within runs f and stops the case when it does not return within the
// block timeout, which means the provider deadlocked.
func (e *env) within(what string, f func()) {
	e.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	select {
	case <-done:
	case <-time.After(e.cfg.blockTimeout):
		e.Fatalf("%s did not finish within %v: the provider seems to deadlock", what, e.cfg.blockTimeout)
	}
}

// byCreation returns users sorted as ListUsers must yield them.
func byCreation(users []steward.User) []steward.User {
	out := slices.Clone(users)
	slices.SortStableFunc(out, func(a, b steward.User) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out
}

// describe prints the non-zero fields of q.
func describe(q steward.UserQuery) string {
	var parts []string
	if !q.LastActiveBefore.IsZero() {
		parts = append(parts, "LastActiveBefore: "+q.LastActiveBefore.Format(time.RFC3339Nano))
	}
	if !q.CreatedBefore.IsZero() {
		parts = append(parts, "CreatedBefore: "+q.CreatedBefore.Format(time.RFC3339Nano))
	}
	if q.Limit != 0 {
		parts = append(parts, fmt.Sprintf("Limit: %d", q.Limit))
	}
	if q.PageSize != 0 {
		parts = append(parts, fmt.Sprintf("PageSize: %d", q.PageSize))
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

func ids(users []steward.User) []string {
	out := make([]string, len(users))
	for i, u := range users {
		out[i] = u.ID
	}
	return out
}

// wantUsers reports when got differs from want, naming the query.
func (e *env) wantUsers(q steward.UserQuery, want, got []steward.User) {
	e.Helper()
	if diff := cmp.Diff(ids(want), ids(got)); diff != "" {
		e.Errorf("ListUsers(%s) yielded the wrong users or order (-want +got IDs):\n%s", describe(q), diff)
		return
	}
	if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
		e.Errorf("ListUsers(%s) yielded users that differ from GetUser's (-want +got):\n%s", describe(q), diff)
	}
}

// mutate changes every part of u a careless caller might change in place.
func mutate(u steward.User) {
	for i := range u.EmailAddresses {
		u.EmailAddresses[i].Address = "changed@example.net"
	}
	for _, m := range []map[string]any{u.PublicMetadata, u.PrivateMetadata} {
		for k, v := range m {
			switch x := v.(type) {
			case map[string]any:
				x["changed"] = true
			case []any:
				if len(x) > 0 {
					x[0] = "changed"
				}
			default:
				m[k] = "changed"
			}
		}
		if m != nil {
			m["added"] = true
		}
	}
}

func cancelled(ctx context.Context) context.Context {
	ctx, cancel := context.WithCancel(ctx)
	cancel()
	return ctx
}

// ---- GetUser ----

func getReturnsStored(e *env) {
	for _, u := range e.createN(3, nil) {
		got := e.get(u.ID)
		if diff := cmp.Diff(u, got, cmpopts.EquateEmpty()); diff != "" {
			e.Errorf("GetUser differs from the user CreateUser returned (-created +got):\n%s", diff)
		}
	}
}

func getKeepsFields(e *env) {
	in := e.fixture()
	in.LastActiveAt = day(40)
	got := e.get(e.create(in).ID)

	type view struct {
		Emails          []string
		Verified        []bool
		Primary         string
		First, Last     string
		ImageURL        string
		Public, Private map[string]any
	}
	see := func(u steward.User) view {
		v := view{First: u.FirstName, Last: u.LastName, ImageURL: u.ImageURL, Public: u.PublicMetadata, Private: u.PrivateMetadata}
		for _, a := range u.EmailAddresses {
			v.Emails = append(v.Emails, a.Address)
			v.Verified = append(v.Verified, a.Verified)
		}
		if p, ok := u.PrimaryEmail(); ok {
			v.Primary = p.Address
		}
		return v
	}
	if diff := cmp.Diff(see(in), see(got)); diff != "" {
		e.Errorf("GetUser lost or changed fields given to CreateUser (-given +got):\n%s", diff)
	}
	if e.caps.KeepsCreatedAt && !got.CreatedAt.Equal(in.CreatedAt) {
		e.Errorf("CreatedAt = %v, want %v", got.CreatedAt, in.CreatedAt)
	}
	if e.caps.KeepsLastActiveAt && !got.LastActiveAt.Equal(in.LastActiveAt) {
		e.Errorf("LastActiveAt = %v, want %v", got.LastActiveAt, in.LastActiveAt)
	}
	if got.CreatedAt.IsZero() || got.UpdatedAt.IsZero() {
		e.Errorf("CreatedAt (%v) and UpdatedAt (%v) must be set", got.CreatedAt, got.UpdatedAt)
	}
}

func getUnknown(e *env) {
	e.createN(1, nil)
	_, err := e.p.GetUser(e.ctx, "user_2unknownConformanceID")
	e.wantErr("GetUser of an unknown ID", err, steward.ErrUserNotFound)
}

func getReturnsCopy(e *env) {
	u := e.createN(1, nil)[0]
	mutate(e.get(u.ID))
	e.wantUnchanged("changing the user GetUser returned", u)
}

func getCancelled(e *env) {
	u := e.createN(1, nil)[0]
	_, err := e.p.GetUser(cancelled(e.ctx), u.ID)
	e.wantErr("GetUser with a cancelled context", err, context.Canceled)
}

// ---- UpdateMetadata ----

func updateAddsKeys(e *env) {
	u := e.createN(1, nil)[0]
	e.update(u.ID, steward.MetadataPatch{
		Public:  map[string]any{"plan": "pro"},
		Private: map[string]any{"stripe": "cus_123"},
	})
	e.wantMetadata(u.ID,
		map[string]any{
			"role":    "user",
			"profile": map[string]any{"theme": "dark", "lang": "en"},
			"tags":    []any{"a", "b"},
			"plan":    "pro",
		},
		map[string]any{
			"note":    "vip",
			"billing": map[string]any{"plan": "free", "seats": 1.0},
			"stripe":  "cus_123",
		})
}

func updateDeepMerges(e *env) {
	u := e.createN(1, func(_ int, u *steward.User) {
		u.PublicMetadata["deep"] = map[string]any{"a": map[string]any{"b": "keep", "c": "old"}}
	})[0]
	e.update(u.ID, steward.MetadataPatch{
		Public: map[string]any{
			"profile": map[string]any{"theme": "light", "tz": "UTC"},
			"deep":    map[string]any{"a": map[string]any{"c": "new", "d": "added"}},
		},
		Private: map[string]any{"billing": map[string]any{"seats": 5.0}},
	})
	e.wantMetadata(u.ID,
		map[string]any{
			"role":    "user",
			"profile": map[string]any{"theme": "light", "lang": "en", "tz": "UTC"},
			"tags":    []any{"a", "b"},
			"deep":    map[string]any{"a": map[string]any{"b": "keep", "c": "new", "d": "added"}},
		},
		map[string]any{
			"note":    "vip",
			"billing": map[string]any{"plan": "free", "seats": 5.0},
		})
}

func updateNilRemoves(e *env) {
	u := e.createN(1, nil)[0]
	e.update(u.ID, steward.MetadataPatch{
		Public:  map[string]any{"role": nil, "profile": map[string]any{"lang": nil}},
		Private: map[string]any{"note": nil, "billing": map[string]any{"seats": nil}},
	})
	e.wantMetadata(u.ID,
		map[string]any{
			"profile": map[string]any{"theme": "dark"},
			"tags":    []any{"a", "b"},
		},
		map[string]any{
			"billing": map[string]any{"plan": "free"},
		})
}

func updateRemoveMissing(e *env) {
	u := e.createN(1, nil)[0]
	if err := e.p.UpdateMetadata(e.ctx, u.ID, steward.MetadataPatch{
		Public: map[string]any{"absent": nil, "profile": map[string]any{"absent": nil}},
	}); err != nil {
		e.Fatalf("UpdateMetadata removing absent keys: %v", err)
	}
	e.wantMetadata(u.ID, u.PublicMetadata, u.PrivateMetadata)
}

func updateReplaces(e *env) {
	u := e.createN(1, nil)[0]
	e.update(u.ID, steward.MetadataPatch{
		Public: map[string]any{"profile": "none", "role": map[string]any{"name": "admin"}},
	})
	e.wantMetadata(u.ID,
		map[string]any{
			"role":    map[string]any{"name": "admin"},
			"profile": "none",
			"tags":    []any{"a", "b"},
		},
		u.PrivateMetadata)
}

func updateArraysReplaced(e *env) {
	u := e.createN(1, nil)[0]
	e.update(u.ID, steward.MetadataPatch{Public: map[string]any{"tags": []any{"c"}}})
	want := steward.CloneMetadata(u.PublicMetadata)
	want["tags"] = []any{"c"}
	e.wantMetadata(u.ID, want, u.PrivateMetadata)
}

func updateSidesIndependent(e *env) {
	u := e.createN(1, nil)[0]
	e.update(u.ID, steward.MetadataPatch{Public: map[string]any{"role": "admin"}})
	got := e.get(u.ID)
	if diff := cmp.Diff(u.PrivateMetadata, got.PrivateMetadata, cmpopts.EquateEmpty()); diff != "" {
		e.Errorf("a public-only patch changed private metadata (-before +after):\n%s", diff)
	}
	e.update(u.ID, steward.MetadataPatch{Private: map[string]any{"note": "regular"}})
	got2 := e.get(u.ID)
	if diff := cmp.Diff(got.PublicMetadata, got2.PublicMetadata, cmpopts.EquateEmpty()); diff != "" {
		e.Errorf("a private-only patch changed public metadata (-before +after):\n%s", diff)
	}
}

func updateJSONNumbers(e *env) {
	u := e.createN(1, nil)[0]
	e.update(u.ID, steward.MetadataPatch{Public: map[string]any{
		"count":  3,
		"big":    int64(1) << 40,
		"ratio":  float32(0.5),
		"nested": map[string]any{"n": uint8(7)},
		"list":   []any{1, 2.5},
	}})
	got := e.get(u.ID).PublicMetadata
	want := map[string]any{
		"count":  3.0,
		"big":    float64(int64(1) << 40),
		"ratio":  0.5,
		"nested": map[string]any{"n": 7.0},
		"list":   []any{1.0, 2.5},
	}
	for k, w := range want {
		if diff := cmp.Diff(w, got[k]); diff != "" {
			e.Errorf("public metadata %q does not read back as JSON would store it (-want +got):\n%s", k, diff)
		}
	}
}

func updateOtherFields(e *env) {
	u := e.createN(1, nil)[0]
	e.update(u.ID, steward.MetadataPatch{Public: map[string]any{"role": "admin"}})
	got := e.get(u.ID)
	ignore := cmpopts.IgnoreFields(steward.User{}, "UpdatedAt", "PublicMetadata", "PrivateMetadata")
	if diff := cmp.Diff(u, got, ignore, cmpopts.EquateEmpty()); diff != "" {
		e.Errorf("UpdateMetadata changed fields other than metadata (-before +after):\n%s", diff)
	}
	if got.UpdatedAt.Before(u.UpdatedAt) {
		e.Errorf("UpdatedAt moved backwards: %v, was %v", got.UpdatedAt, u.UpdatedAt)
	}
}

func updateNoAliasing(e *env) {
	u := e.createN(1, nil)[0]
	p := steward.MetadataPatch{
		Public:  map[string]any{"profile": map[string]any{"theme": "light"}, "list": []any{"x"}},
		Private: map[string]any{"billing": map[string]any{"plan": "pro"}},
	}
	e.update(u.ID, p)
	before := e.get(u.ID)
	p.Public["profile"].(map[string]any)["theme"] = "changed"
	p.Public["list"].([]any)[0] = "changed"
	p.Public["new"] = "changed"
	p.Private["billing"].(map[string]any)["plan"] = "changed"
	e.wantUnchanged("changing the patch after UpdateMetadata returned", before)
}

func updateUnknown(e *env) {
	e.createN(1, nil)
	err := e.p.UpdateMetadata(e.ctx, "user_2unknownConformanceID", steward.MetadataPatch{Public: map[string]any{"role": "admin"}})
	e.wantErr("UpdateMetadata of an unknown ID", err, steward.ErrUserNotFound)
}

func updateEmptyPatch(e *env) {
	u := e.createN(1, nil)[0]
	for _, p := range []steward.MetadataPatch{
		{},
		{Public: map[string]any{}},
		{Public: map[string]any{}, Private: map[string]any{}},
	} {
		err := e.p.UpdateMetadata(e.ctx, u.ID, p)
		e.wantErr(fmt.Sprintf("UpdateMetadata(%+v)", p), err, steward.ErrInvalidPatch)
	}
	e.wantUnchanged("an empty patch", u)
}

func updateNonJSONPatch(e *env) {
	u := e.createN(1, nil)[0]
	for name, p := range map[string]steward.MetadataPatch{
		"a channel":                  {Public: map[string]any{"role": "admin", "bad": make(chan int)}},
		"a function":                 {Private: map[string]any{"bad": func() {}}},
		"NaN":                        {Public: map[string]any{"profile": map[string]any{"bad": math.NaN()}}},
		"a good public, bad private": {Public: map[string]any{"role": "admin"}, Private: map[string]any{"bad": math.Inf(1)}},
	} {
		err := e.p.UpdateMetadata(e.ctx, u.ID, p)
		e.wantErr("UpdateMetadata with "+name, err, steward.ErrInvalidPatch)
	}
	e.wantUnchanged("a patch that cannot be encoded as JSON", u)
}

func updateCancelled(e *env) {
	u := e.createN(1, nil)[0]
	err := e.p.UpdateMetadata(cancelled(e.ctx), u.ID, steward.MetadataPatch{Public: map[string]any{"role": "admin"}})
	e.wantErr("UpdateMetadata with a cancelled context", err, context.Canceled)
	e.wantUnchanged("UpdateMetadata with a cancelled context", u)
}

// ---- DeleteUser ----

func deleteRemoves(e *env) {
	u := e.createN(1, nil)[0]
	if err := e.p.DeleteUser(e.ctx, u.ID); err != nil {
		e.Fatalf("DeleteUser: %v", err)
	}
	_, err := e.p.GetUser(e.ctx, u.ID)
	e.wantErr("GetUser after DeleteUser", err, steward.ErrUserNotFound)
	if got := e.list(steward.UserQuery{}); len(got) != 0 {
		e.Errorf("ListUsers after DeleteUser yielded %v, want nothing", ids(got))
	}
}

func deleteMissing(e *env) {
	e.createN(1, nil)
	if err := e.p.DeleteUser(e.ctx, "user_2unknownConformanceID"); err != nil {
		e.Errorf("DeleteUser of a user that never existed: %v, want nil", err)
	}
}

func deleteTwice(e *env) {
	u := e.createN(1, nil)[0]
	for i := range 2 {
		if err := e.p.DeleteUser(e.ctx, u.ID); err != nil {
			e.Errorf("DeleteUser, call %d: %v, want nil", i+1, err)
		}
	}
}

func deleteOthersUntouched(e *env) {
	users := e.createN(3, nil)
	if err := e.p.DeleteUser(e.ctx, users[1].ID); err != nil {
		e.Fatalf("DeleteUser: %v", err)
	}
	for _, u := range []steward.User{users[0], users[2]} {
		e.wantUnchanged("deleting another user", u)
	}
	q := steward.UserQuery{}
	e.wantUsers(q, byCreation([]steward.User{users[0], users[2]}), e.list(q))
}

func deleteCancelled(e *env) {
	u := e.createN(1, nil)[0]
	err := e.p.DeleteUser(cancelled(e.ctx), u.ID)
	e.wantErr("DeleteUser with a cancelled context", err, context.Canceled)
	e.wantUnchanged("DeleteUser with a cancelled context", u)
}

// ---- ListUsers ----

func listEmpty(e *env) {
	if got := e.list(steward.UserQuery{}); len(got) != 0 {
		e.Errorf("ListUsers of an empty provider yielded %v", ids(got))
	}
	if got := e.list(steward.UserQuery{PageSize: 1, Limit: 3}); len(got) != 0 {
		e.Errorf("ListUsers of an empty provider yielded %v", ids(got))
	}
}

// orderFixture creates users whose creation times (when the backend keeps
// them) are out of insertion order and include a tie whose IDs sort
// against insertion order.
func (e *env) orderFixture() []steward.User {
	plan := []struct {
		id  string
		day int
	}{
		{"user_order_g", 3}, {"user_order_d", 1}, {"user_order_e", 4}, {"user_order_b", 1},
		{"user_order_f", 5}, {"user_order_a", 9}, {"user_order_c", 2},
	}
	return e.createN(len(plan), func(i int, u *steward.User) {
		u.ID = plan[i].id
		u.CreatedAt = day(plan[i].day)
	})
}

func listOrder(e *env) {
	want := byCreation(e.orderFixture())
	for _, size := range []int{0, 1, 2, 3, 6, 7, 8, 500} {
		q := steward.UserQuery{PageSize: size}
		e.wantUsers(q, want, e.list(q))
	}
}

func listLimit(e *env) {
	want := byCreation(e.orderFixture())
	for _, size := range []int{0, 1, 2, 3} {
		for _, limit := range []int{1, 2, 3, 4, 6, 7, 8, 100} {
			q := steward.UserQuery{PageSize: size, Limit: limit}
			e.wantUsers(q, want[:min(limit, len(want))], e.list(q))
		}
	}
}

func listStops(e *env) {
	e.orderFixture()
	for _, size := range []int{0, 1, 2, 3} {
		for _, stopAfter := range []int{1, 2, 3, 5} {
			q := steward.UserQuery{PageSize: size}
			calls := 0
			e.p.ListUsers(e.ctx, q)(func(u steward.User, err error) bool {
				calls++
				if err != nil {
					e.Errorf("ListUsers(%s): %v", describe(q), err)
					return false
				}
				return calls < stopAfter
			})
			if calls != stopAfter {
				e.Errorf("ListUsers(%s) called yield %d times; the consumer returned false at call %d", describe(q), calls, stopAfter)
			}
		}
	}
}

func listTwice(e *env) {
	want := byCreation(e.createN(3, nil))
	q := steward.UserQuery{PageSize: 2}
	seq := e.p.ListUsers(e.ctx, q)
	for i := range 2 {
		got, err := e.collect(seq)
		if err != nil {
			e.Fatalf("ListUsers, range %d: %v", i+1, err)
		}
		e.wantUsers(q, want, got)
	}
}

// filterFixture creates users with creation and last-activity times that
// straddle day 5, including a user created exactly at day 5 and one last
// active exactly at day 5. A zero activity day means never active.
func (e *env) filterFixture() []steward.User {
	plan := []struct{ created, active int }{
		{5, 0}, {0, 6}, {8, 9}, {2, 3}, {7, 0}, {3, 10}, {1, 0}, {4, 5}, {6, 0}, {0, 0},
	}
	return e.createN(len(plan), func(i int, u *steward.User) {
		u.CreatedAt = day(plan[i].created)
		if plan[i].active != 0 {
			u.LastActiveAt = day(plan[i].active)
		}
	})
}

// cutoff returns day 5 when the backend keeps the times the suite gave,
// else the median of times, so filters split the users either way.
func cutoff(keeps bool, times []time.Time) time.Time {
	if keeps {
		return day(5)
	}
	sorted := slices.SortedFunc(slices.Values(times), time.Time.Compare)
	return sorted[len(sorted)/2]
}

// lastActivity is the time LastActiveBefore compares: the last activity,
// or the creation time of a user who was never active.
func lastActivity(u steward.User) time.Time {
	if u.LastActiveAt.IsZero() {
		return u.CreatedAt
	}
	return u.LastActiveAt
}

func filtered(users []steward.User, keep func(steward.User) bool) []steward.User {
	var out []steward.User
	for _, u := range byCreation(users) {
		if keep(u) {
			out = append(out, u)
		}
	}
	return out
}

func (e *env) nonTrivial(what string, n, of int) {
	e.Helper()
	if n == 0 || n == of {
		e.Fatalf("%s keeps %d of %d users; the fixture is broken", what, n, of)
	}
}

func listCreatedBefore(e *env) {
	users := e.filterFixture()
	var times []time.Time
	for _, u := range users {
		times = append(times, u.CreatedAt)
	}
	before := cutoff(e.caps.KeepsCreatedAt, times)
	want := filtered(users, func(u steward.User) bool { return u.CreatedAt.Before(before) })
	if e.caps.KeepsCreatedAt {
		e.nonTrivial("CreatedBefore", len(want), len(users))
	}
	for _, size := range []int{0, 1, 3} {
		q := steward.UserQuery{CreatedBefore: before, PageSize: size}
		e.wantUsers(q, want, e.list(q))
	}
}

func listLastActiveBefore(e *env) {
	users := e.filterFixture()
	var times []time.Time
	for _, u := range users {
		times = append(times, lastActivity(u))
	}
	keeps := e.caps.KeepsCreatedAt && e.caps.KeepsLastActiveAt
	before := cutoff(keeps, times)
	want := filtered(users, func(u steward.User) bool { return lastActivity(u).Before(before) })
	if keeps {
		e.nonTrivial("LastActiveBefore", len(want), len(users))
	}
	for _, size := range []int{0, 1, 3} {
		q := steward.UserQuery{LastActiveBefore: before, PageSize: size}
		e.wantUsers(q, want, e.list(q))
	}
	q := steward.UserQuery{LastActiveBefore: before, CreatedBefore: before}
	both := filtered(want, func(u steward.User) bool { return u.CreatedAt.Before(before) })
	e.wantUsers(q, both, e.list(q))
}

func listFilterLimit(e *env) {
	users := e.filterFixture()
	var times []time.Time
	for _, u := range users {
		times = append(times, u.CreatedAt)
	}
	before := cutoff(e.caps.KeepsCreatedAt, times)
	want := filtered(users, func(u steward.User) bool { return u.CreatedAt.Before(before) })
	for _, size := range []int{0, 1, 2} {
		for _, limit := range []int{1, 2, 3} {
			q := steward.UserQuery{CreatedBefore: before, PageSize: size, Limit: limit}
			e.wantUsers(q, want[:min(limit, len(want))], e.list(q))
		}
	}
}

func listReturnsCopies(e *env) {
	users := byCreation(e.createN(3, nil))
	for _, u := range e.list(steward.UserQuery{PageSize: 2}) {
		mutate(u)
	}
	for _, u := range users {
		e.wantUnchanged("changing a user ListUsers yielded", u)
	}
}

func listConsumerCalls(e *env) {
	users := byCreation(e.createN(7, nil))
	for _, size := range []int{1, 2, 3, 0} {
		if size != 1 { // the first round deleted them all; start again
			users = byCreation(e.createN(7, nil))
		}
		q := steward.UserQuery{PageSize: size}
		var (
			seen []string
			errs []error
		)
		e.within(fmt.Sprintf("ListUsers(%s) whose consumer calls GetUser, UpdateMetadata and DeleteUser", describe(q)), func() {
			e.p.ListUsers(e.ctx, q)(func(u steward.User, err error) bool {
				if err != nil {
					errs = append(errs, fmt.Errorf("ListUsers: %w", err))
					return false
				}
				seen = append(seen, u.ID)
				if _, err := e.p.GetUser(e.ctx, u.ID); err != nil {
					errs = append(errs, fmt.Errorf("GetUser: %w", err))
				}
				if err := e.p.UpdateMetadata(e.ctx, u.ID, steward.MetadataPatch{Private: map[string]any{"seen": true}}); err != nil {
					errs = append(errs, fmt.Errorf("UpdateMetadata: %w", err))
				}
				if err := e.p.DeleteUser(e.ctx, u.ID); err != nil {
					errs = append(errs, fmt.Errorf("DeleteUser: %w", err))
				}
				return len(seen) <= 2*len(users)
			})
		})
		for _, err := range errs {
			e.Errorf("during ListUsers(%s): %v", describe(q), err)
		}
		if diff := cmp.Diff(ids(users), seen); diff != "" {
			e.Errorf("ListUsers(%s) whose consumer deletes each user did not yield every user exactly once, in order (-want +got):\n%s", describe(q), diff)
		}
		if left := e.list(steward.UserQuery{}); len(left) != 0 {
			e.Errorf("after deleting every yielded user, ListUsers still yields %v", ids(left))
		}
	}
}

func listInvalidQuery(e *env) {
	e.createN(2, nil)
	for _, q := range []steward.UserQuery{{Limit: -1}, {PageSize: -1}, {Limit: -5, PageSize: -5}} {
		users, err := e.collect(e.p.ListUsers(e.ctx, q))
		e.wantErr(fmt.Sprintf("ListUsers(%s)", describe(q)), err, steward.ErrInvalidQuery)
		if len(users) != 0 {
			e.Errorf("ListUsers(%s) yielded users %v before its error", describe(q), ids(users))
		}
	}
}

func listCancelled(e *env) {
	e.createN(2, nil)
	users, err := e.collect(e.p.ListUsers(cancelled(e.ctx), steward.UserQuery{}))
	e.wantErr("ListUsers with a cancelled context", err, context.Canceled)
	if len(users) != 0 {
		e.Errorf("ListUsers with a cancelled context yielded users %v", ids(users))
	}
}

func listCancelledDuring(e *env) {
	e.createN(4, nil)
	ctx, cancel := context.WithCancel(e.ctx)
	defer cancel()
	seq := e.p.ListUsers(ctx, steward.UserQuery{PageSize: 1})
	users, err := e.collect(func(yield func(steward.User, error) bool) {
		seq(func(u steward.User, err error) bool {
			cancel()
			return yield(u, err)
		})
	})
	e.wantErr("ListUsers whose context was cancelled after the first user", err, context.Canceled)
	if len(users) > 2 {
		e.Errorf("ListUsers(PageSize 1) yielded %d users after its context was cancelled, want at most one more page", len(users)-1)
	}
}

// ---- across methods ----

// badIDs are malformed IDs, several of them attempts to escape a URL
// path, a SQL string or a log line.
var badIDs = []string{
	"",
	"user_" + strings.Repeat("x", steward.MaxUserIDLen),
	"user 1",
	"user_1/../../v1/users",
	"user_1?limit=500",
	"user_%2e%2e",
	"user_1' OR '1'='1",
	"user_1\nlevel=INFO msg=forged",
	"user_1\x00",
	"usér_1",
}

func invalidIDs(e *env) {
	u := e.createN(1, nil)[0]
	patch := steward.MetadataPatch{Public: map[string]any{"role": "admin"}}
	for _, id := range badIDs {
		_, err := e.p.GetUser(e.ctx, id)
		e.wantErr(fmt.Sprintf("GetUser(%q)", id), err, steward.ErrInvalidUserID)
		err = e.p.UpdateMetadata(e.ctx, id, patch)
		e.wantErr(fmt.Sprintf("UpdateMetadata(%q)", id), err, steward.ErrInvalidUserID)
		err = e.p.DeleteUser(e.ctx, id)
		e.wantErr(fmt.Sprintf("DeleteUser(%q)", id), err, steward.ErrInvalidUserID)
	}
	e.wantUnchanged("calls with malformed IDs", u)
}

func errorsHideID(e *env) {
	u := e.createN(1, nil)[0]
	if err := e.p.DeleteUser(e.ctx, u.ID); err != nil {
		e.Fatalf("DeleteUser: %v", err)
	}
	check := func(op, id string, err error) {
		e.Helper()
		if err == nil {
			e.Errorf("%s: got no error", op)
			return
		}
		if id != "" && strings.Contains(err.Error(), id) {
			e.Errorf("%s: error %q contains the user ID", op, err)
		}
	}
	patch := steward.MetadataPatch{Public: map[string]any{"role": "admin"}}
	for _, id := range []string{u.ID, "user_2xSecretUnknownZ"} {
		_, err := e.p.GetUser(e.ctx, id)
		check("GetUser of a missing user", id, err)
		check("UpdateMetadata of a missing user", id, e.p.UpdateMetadata(e.ctx, id, patch))
		_, err = e.p.GetUser(cancelled(e.ctx), id)
		check("GetUser with a cancelled context", id, err)
	}
	for _, id := range badIDs[2:] { // long enough not to match by chance
		_, err := e.p.GetUser(e.ctx, id)
		check("GetUser of a malformed ID", id, err)
		check("UpdateMetadata of a malformed ID", id, e.p.UpdateMetadata(e.ctx, id, patch))
		check("DeleteUser of a malformed ID", id, e.p.DeleteUser(e.ctx, id))
	}
}

func concurrentUpdates(e *env) {
	u := e.createN(1, nil)[0]
	const n = 16
	wantPub := steward.CloneMetadata(u.PublicMetadata)
	wantPriv := steward.CloneMetadata(u.PrivateMetadata)
	errs := make(chan error, n)
	e.within("concurrent UpdateMetadata calls", func() {
		var wg sync.WaitGroup
		for i := range n {
			key := fmt.Sprintf("k%02d", i)
			wantPub[key] = float64(i)
			wantPriv[key] = map[string]any{"by": key}
			wg.Go(func() {
				errs <- e.p.UpdateMetadata(e.ctx, u.ID, steward.MetadataPatch{
					Public:  map[string]any{key: float64(i)},
					Private: map[string]any{key: map[string]any{"by": key}},
				})
			})
		}
		wg.Wait()
	})
	close(errs)
	for err := range errs {
		if err != nil {
			e.Errorf("concurrent UpdateMetadata: %v", err)
		}
	}
	e.wantMetadata(u.ID, wantPub, wantPriv)
}

func concurrentMixed(e *env) {
	users := e.createN(8, nil)
	errs := make(chan error, 64)
	e.within("concurrent calls", func() {
		var wg sync.WaitGroup
		for i, u := range users {
			wg.Go(func() {
				if _, err := e.p.GetUser(e.ctx, u.ID); err != nil && !errors.Is(err, steward.ErrUserNotFound) {
					errs <- fmt.Errorf("GetUser: %w", err)
				}
			})
			wg.Go(func() {
				err := e.p.UpdateMetadata(e.ctx, u.ID, steward.MetadataPatch{Public: map[string]any{"n": float64(i)}})
				if err != nil && !errors.Is(err, steward.ErrUserNotFound) {
					errs <- fmt.Errorf("UpdateMetadata: %w", err)
				}
			})
			wg.Go(func() {
				e.p.ListUsers(e.ctx, steward.UserQuery{PageSize: 3})(func(_ steward.User, err error) bool {
					if err != nil {
						errs <- fmt.Errorf("ListUsers: %w", err)
						return false
					}
					return true
				})
			})
			if i%2 == 0 {
				wg.Go(func() {
					if err := e.p.DeleteUser(e.ctx, u.ID); err != nil {
						errs <- fmt.Errorf("DeleteUser: %w", err)
					}
				})
			}
		}
		wg.Wait()
	})
	close(errs)
	for err := range errs {
		e.Errorf("concurrent call: %v", err)
	}
	var want []steward.User
	for i, u := range users {
		if i%2 == 1 {
			want = append(want, u)
		}
	}
	got := e.list(steward.UserQuery{})
	if diff := cmp.Diff(ids(byCreation(want)), ids(got)); diff != "" {
		e.Errorf("after concurrent calls, ListUsers yields the wrong users (-want +got):\n%s", diff)
	}
}

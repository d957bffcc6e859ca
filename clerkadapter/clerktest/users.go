package clerktest

import (
	"cmp"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/clerk/clerk-sdk-go/v2"

	"github.com/stewardlabs/steward"
)

// record is a user as the server holds it. Times are Unix milliseconds,
// as in the Backend API; 0 means unset.
type record struct {
	id             string
	emails         []email
	primaryEmailID string
	firstName      string
	lastName       string
	username       string
	externalID     string
	imageURL       string
	hasImage       bool
	createdAt      int64
	updatedAt      int64
	lastSignInAt   int64
	lastActiveAt   int64
	banned         bool
	locked         bool
	public         map[string]any
	private        map[string]any
	unsafe         map[string]any
}

type email struct {
	id       string
	address  string
	verified bool
}

// DefaultImageURL is the image_url the server gives users without a
// profile image, as Clerk gives a default avatar.
const DefaultImageURL = "https://img.clerk.com/default-avatar.png"

// AddUser stores u, replacing any user with the same ID, and returns the
// user as the server now holds it. It fills what Clerk would: an ID
// ("user_" + 27 base62 characters) when u.ID is empty, email address IDs
// ("idn_..."), the primary email (the first address) when unset,
// DefaultImageURL when ImageURL is empty,
// CreatedAt (now) and UpdatedAt (CreatedAt) when zero. Times are
// truncated to milliseconds and metadata is stored as JSON would store it.
// LastSignInAt, LastActiveAt, Banned and Locked are kept as given, which
// the real API cannot do; that is what makes AddUser useful for fixtures.
//
// AddUser panics if the metadata cannot be encoded as JSON.
func (s *Server) AddUser(u steward.User) steward.User {
	now := s.cfg.now()
	r := &record{
		id:             u.ID,
		primaryEmailID: u.PrimaryEmailID,
		firstName:      u.FirstName,
		lastName:       u.LastName,
		imageURL:       u.ImageURL,
		hasImage:       u.ImageURL != "",
		createdAt:      millis(u.CreatedAt),
		updatedAt:      millis(u.UpdatedAt),
		lastSignInAt:   millis(u.LastSignInAt),
		lastActiveAt:   millis(u.LastActiveAt),
		banned:         u.Banned,
		locked:         u.Locked,
		public:         mustJSONObject("PublicMetadata", u.PublicMetadata),
		private:        mustJSONObject("PrivateMetadata", u.PrivateMetadata),
	}
	if r.id == "" {
		r.id = NewID("user_")
	}
	if !r.hasImage {
		r.imageURL = DefaultImageURL
	}
	for _, e := range u.EmailAddresses {
		id := e.ID
		if id == "" {
			id = NewID("idn_")
		}
		r.emails = append(r.emails, email{id: id, address: e.Address, verified: e.Verified})
	}
	if r.primaryEmailID == "" && len(r.emails) > 0 {
		r.primaryEmailID = r.emails[0].id
	}
	if r.createdAt == 0 {
		r.createdAt = now.UnixMilli()
	}
	if r.updatedAt == 0 {
		r.updatedAt = r.createdAt
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.users[r.id] = r
	return r.steward()
}

// User returns the user with the given ID as the server holds it.
func (s *Server) User(id string) (steward.User, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.users[id]
	if !ok {
		return steward.User{}, false
	}
	return r.steward(), true
}

// Users returns every user the server holds, oldest first (ties by ID).
func (s *Server) Users() []steward.User {
	s.mu.Lock()
	defer s.mu.Unlock()
	rs := s.sortedLocked(orderBy{field: "created_at"})
	out := make([]steward.User, len(rs))
	for i, r := range rs {
		out[i] = r.steward()
	}
	return out
}

// millis converts t to Unix milliseconds, 0 for the zero time.
func millis(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func fromMillis(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms).UTC()
}

func ptrMillis(ms int64) *int64 {
	if ms == 0 {
		return nil
	}
	return &ms
}

func ptrString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// mustJSONObject returns m as JSON would store it, panicking when it
// cannot be encoded.
func mustJSONObject(field string, m map[string]any) map[string]any {
	out, err := jsonObject(m)
	if err != nil {
		panic(fmt.Sprintf("clerktest: AddUser: %s cannot be encoded as JSON: %v", field, err))
	}
	return out
}

// jsonObject round-trips m through JSON (nil for an empty map).
func jsonObject(m map[string]any) (map[string]any, error) {
	if len(m) == 0 {
		return nil, nil
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// steward converts r to the library's User.
func (r *record) steward() steward.User {
	u := steward.User{
		ID:              r.id,
		PrimaryEmailID:  r.primaryEmailID,
		FirstName:       r.firstName,
		LastName:        r.lastName,
		ImageURL:        r.imageURL,
		CreatedAt:       fromMillis(r.createdAt),
		UpdatedAt:       fromMillis(r.updatedAt),
		LastSignInAt:    fromMillis(r.lastSignInAt),
		LastActiveAt:    fromMillis(r.lastActiveAt),
		Banned:          r.banned,
		Locked:          r.locked,
		PublicMetadata:  steward.CloneMetadata(r.public),
		PrivateMetadata: steward.CloneMetadata(r.private),
	}
	for _, e := range r.emails {
		u.EmailAddresses = append(u.EmailAddresses, steward.EmailAddress{ID: e.id, Address: e.address, Verified: e.verified})
	}
	return u
}

// clerk converts r to the SDK's User, the JSON the Backend API serves.
func (r *record) clerk() *clerk.User {
	u := &clerk.User{
		Object:                "user",
		ID:                    r.id,
		Username:              ptrString(r.username),
		FirstName:             ptrString(r.firstName),
		LastName:              ptrString(r.lastName),
		ImageURL:              clerk.String(r.imageURL),
		HasImage:              r.hasImage,
		PrimaryEmailAddressID: ptrString(r.primaryEmailID),
		EmailAddresses:        []*clerk.EmailAddress{},
		PhoneNumbers:          []*clerk.PhoneNumber{},
		Web3Wallets:           []*clerk.Web3Wallet{},
		ExternalAccounts:      []*clerk.ExternalAccount{},
		SAMLAccounts:          []*clerk.SAMLAccount{},
		PublicMetadata:        rawObject(r.public),
		PrivateMetadata:       rawObject(r.private),
		UnsafeMetadata:        rawObject(r.unsafe),
		ExternalID:            ptrString(r.externalID),
		LastSignInAt:          ptrMillis(r.lastSignInAt),
		Banned:                r.banned,
		Locked:                r.locked,
		LastActiveAt:          ptrMillis(r.lastActiveAt),
		CreatedAt:             r.createdAt,
		UpdatedAt:             r.updatedAt,
		DeleteSelfEnabled:     true,
	}
	for _, e := range r.emails {
		status, strategy := "unverified", "email_code"
		if e.verified {
			status, strategy = "verified", "admin"
		}
		u.EmailAddresses = append(u.EmailAddresses, &clerk.EmailAddress{
			ID:           e.id,
			Object:       "email_address",
			EmailAddress: e.address,
			Verification: &clerk.Verification{Status: status, Strategy: strategy},
			LinkedTo:     []*clerk.LinkedIdentification{},
		})
	}
	return u
}

// rawObject encodes m as a JSON object ("{}" when empty).
func rawObject(m map[string]any) json.RawMessage {
	if len(m) == 0 {
		return json.RawMessage("{}")
	}
	b, err := json.Marshal(m)
	if err != nil { // stored metadata always came from JSON
		panic(err)
	}
	return b
}

func (s *Server) notFound(w http.ResponseWriter) {
	writeError(w, http.StatusNotFound, "resource_not_found", "not found", "Resource not found")
}

func (s *Server) getUser(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	rec, ok := s.users[r.PathValue("id")]
	var u *clerk.User
	if ok {
		u = rec.clerk()
	}
	s.mu.Unlock()
	if !ok {
		s.notFound(w)
		return
	}
	writeJSON(w, u)
}

func (s *Server) deleteUser(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	s.mu.Lock()
	_, ok := s.users[id]
	delete(s.users, id)
	s.mu.Unlock()
	if !ok {
		s.notFound(w)
		return
	}
	writeJSON(w, clerk.DeletedResource{ID: id, Object: "user", Deleted: true})
}

// setFlag serves ban, unban, lock and unlock.
func (s *Server) setFlag(change func(r *record, now int64)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		rec, ok := s.users[r.PathValue("id")]
		var u *clerk.User
		if ok {
			now := s.cfg.now().UnixMilli()
			change(rec, now)
			rec.touch(now)
			u = rec.clerk()
		}
		s.mu.Unlock()
		if !ok {
			s.notFound(w)
			return
		}
		writeJSON(w, u)
	}
}

// touch moves updatedAt to now, never backwards.
func (r *record) touch(now int64) {
	r.updatedAt = max(r.updatedAt, now)
}

// metadataBody is the body of PATCH /users/{id}/metadata and part of
// POST /users. A field that is absent stays nil; JSON null decodes as
// the raw message "null".
type metadataBody struct {
	Public  json.RawMessage `json:"public_metadata"`
	Private json.RawMessage `json:"private_metadata"`
	Unsafe  json.RawMessage `json:"unsafe_metadata"`
}

// decodeObjects decodes each present field of b as a JSON object. A null
// counts as absent. It names the first field that is not an object.
func (b metadataBody) decodeObjects() (pub, priv, uns map[string]any, bad string) {
	fields := []struct {
		name string
		raw  json.RawMessage
		dst  *map[string]any
	}{
		{"public_metadata", b.Public, &pub},
		{"private_metadata", b.Private, &priv},
		{"unsafe_metadata", b.Unsafe, &uns},
	}
	for _, f := range fields {
		if len(f.raw) == 0 || string(f.raw) == "null" {
			continue
		}
		if err := json.Unmarshal(f.raw, f.dst); err != nil {
			return nil, nil, nil, f.name
		}
	}
	return pub, priv, uns, ""
}

func (s *Server) updateMetadata(w http.ResponseWriter, r *http.Request) {
	var body metadataBody
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		writeError(w, http.StatusBadRequest, "malformed_request", "malformed request",
			"The request body is not valid JSON.")
		return
	}
	pub, priv, uns, bad := body.decodeObjects()
	if bad != "" {
		writeParamError(w, bad, "must be a JSON object")
		return
	}
	s.mu.Lock()
	rec, ok := s.users[r.PathValue("id")]
	var u *clerk.User
	if ok {
		if pub != nil {
			rec.public = steward.MergeMetadata(rec.public, pub)
		}
		if priv != nil {
			rec.private = steward.MergeMetadata(rec.private, priv)
		}
		if uns != nil {
			rec.unsafe = steward.MergeMetadata(rec.unsafe, uns)
		}
		rec.touch(s.cfg.now().UnixMilli())
		u = rec.clerk()
	}
	s.mu.Unlock()
	if !ok {
		s.notFound(w)
		return
	}
	writeJSON(w, u)
}

func writeParamError(w http.ResponseWriter, param, problem string) {
	writeErrorMeta(w, http.StatusUnprocessableEntity, "form_param_format_invalid",
		"is invalid", param+" "+problem, map[string]any{"param_name": param})
}

// createBody is the part of user.CreateParams the server understands;
// other fields (passwords, TOTP, ...) are accepted and ignored.
type createBody struct {
	metadataBody
	EmailAddresses []string `json:"email_address"`
	FirstName      *string  `json:"first_name"`
	LastName       *string  `json:"last_name"`
	Username       *string  `json:"username"`
	ExternalID     *string  `json:"external_id"`
	CreatedAt      *string  `json:"created_at"`
}

func (s *Server) createUser(w http.ResponseWriter, r *http.Request) {
	var body createBody
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		writeError(w, http.StatusBadRequest, "malformed_request", "malformed request",
			"The request body is not valid JSON.")
		return
	}
	pub, priv, uns, bad := body.decodeObjects()
	if bad != "" {
		writeParamError(w, bad, "must be a JSON object")
		return
	}
	now := s.cfg.now().UnixMilli()
	rec := &record{
		id:        NewID("user_"),
		imageURL:  DefaultImageURL,
		public:    pub,
		private:   priv,
		unsafe:    uns,
		createdAt: now,
		updatedAt: now,
	}
	if body.CreatedAt != nil {
		t, err := time.Parse(time.RFC3339Nano, *body.CreatedAt)
		if err != nil {
			writeParamError(w, "created_at", "must be an RFC 3339 date-time")
			return
		}
		rec.createdAt = t.UnixMilli()
	}
	for _, p := range []struct {
		src *string
		dst *string
	}{{body.FirstName, &rec.firstName}, {body.LastName, &rec.lastName}, {body.Username, &rec.username}, {body.ExternalID, &rec.externalID}} {
		if p.src != nil {
			*p.dst = *p.src
		}
	}
	for _, a := range body.EmailAddresses {
		if !strings.Contains(a, "@") {
			writeParamError(w, "email_address", "must be a valid email address")
			return
		}
		// Addresses added through the Backend API count as verified.
		rec.emails = append(rec.emails, email{id: NewID("idn_"), address: a, verified: true})
	}
	if len(rec.emails) > 0 {
		rec.primaryEmailID = rec.emails[0].id
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	for _, other := range s.users {
		for _, oe := range other.emails {
			for _, e := range rec.emails {
				if strings.EqualFold(oe.address, e.address) {
					writeErrorMeta(w, http.StatusUnprocessableEntity, "form_identifier_exists",
						"That email address is taken. Please try another.",
						"That email address is taken. Please try another.",
						map[string]any{"param_name": "email_address"})
					return
				}
			}
		}
	}
	s.users[rec.id] = rec
	writeJSON(w, rec.clerk())
}

// listQuery is a parsed GET /users or /users/count query.
type listQuery struct {
	limit, offset int
	order         orderBy
	filters       []func(*record) bool
}

type orderBy struct {
	field string
	desc  bool
}

// parseListQuery reads the query, writing a Clerk error and reporting
// false when a parameter is malformed.
func parseListQuery(w http.ResponseWriter, r *http.Request, paging bool) (listQuery, bool) {
	q := r.URL.Query()
	lq := listQuery{limit: 10, order: orderBy{field: "created_at", desc: true}}
	if paging {
		if v := q.Get("limit"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 500 {
				writeParamError(w, "limit", "must be an integer between 1 and 500")
				return lq, false
			}
			lq.limit = n
		}
		if v := q.Get("offset"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				writeParamError(w, "offset", "must be a non-negative integer")
				return lq, false
			}
			lq.offset = n
		}
		if v := q.Get("order_by"); v != "" {
			o := orderBy{field: strings.TrimLeft(v, "+-"), desc: strings.HasPrefix(v, "-")}
			switch o.field {
			case "created_at", "updated_at", "last_active_at", "last_sign_in_at":
			default:
				writeParamError(w, "order_by", "is not supported")
				return lq, false
			}
			lq.order = o
		}
	}
	times := []struct {
		param string
		get   func(*record) int64
		after bool
	}{
		{"created_at_before", func(r *record) int64 { return r.createdAt }, false},
		{"created_at_after", func(r *record) int64 { return r.createdAt }, true},
		{"last_active_at_before", func(r *record) int64 { return r.lastActiveAt }, false},
		{"last_active_at_after", func(r *record) int64 { return r.lastActiveAt }, true},
		{"last_active_at_since", func(r *record) int64 { return r.lastActiveAt }, true},
	}
	for _, t := range times {
		v := q.Get(t.param)
		if v == "" {
			continue
		}
		ms, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			writeParamError(w, t.param, "must be a Unix timestamp in milliseconds")
			return lq, false
		}
		get, after := t.get, t.after
		// A user who was never active has no last_active_at and matches
		// neither last_active_at filter.
		lq.filters = append(lq.filters, func(r *record) bool {
			v := get(r)
			if v == 0 {
				return false
			}
			if after {
				return v > ms
			}
			return v < ms
		})
	}
	if ids := q["user_id"]; len(ids) > 0 {
		lq.filters = append(lq.filters, func(r *record) bool { return slices.Contains(ids, r.id) })
	}
	if ids := q["external_id"]; len(ids) > 0 {
		lq.filters = append(lq.filters, func(r *record) bool { return slices.Contains(ids, r.externalID) })
	}
	if addrs := q["email_address"]; len(addrs) > 0 {
		lq.filters = append(lq.filters, func(r *record) bool {
			for _, e := range r.emails {
				for _, a := range addrs {
					if strings.EqualFold(e.address, a) {
						return true
					}
				}
			}
			return false
		})
	}
	if v := q.Get("banned"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			writeParamError(w, "banned", "must be true or false")
			return lq, false
		}
		lq.filters = append(lq.filters, func(r *record) bool { return r.banned == b })
	}
	return lq, true
}

func (lq listQuery) match(r *record) bool {
	for _, f := range lq.filters {
		if !f(r) {
			return false
		}
	}
	return true
}

// sortedLocked returns the matching users in the given order; ties, and
// users without the ordering time (sorted last), go by ID.
func (s *Server) sortedLocked(o orderBy, filters ...func(*record) bool) []*record {
	var rs []*record
outer:
	for _, r := range s.users {
		for _, f := range filters {
			if !f(r) {
				continue outer
			}
		}
		rs = append(rs, r)
	}
	key := func(r *record) int64 {
		switch o.field {
		case "updated_at":
			return r.updatedAt
		case "last_active_at":
			return r.lastActiveAt
		case "last_sign_in_at":
			return r.lastSignInAt
		default:
			return r.createdAt
		}
	}
	slices.SortFunc(rs, func(a, b *record) int {
		ka, kb := key(a), key(b)
		switch {
		case ka == 0 && kb != 0:
			return 1
		case kb == 0 && ka != 0:
			return -1
		}
		c := cmp.Compare(ka, kb)
		if c == 0 {
			c = strings.Compare(a.id, b.id)
		}
		if o.desc {
			c = -c
		}
		return c
	})
	return rs
}

func (s *Server) listUsers(w http.ResponseWriter, r *http.Request) {
	lq, ok := parseListQuery(w, r, true)
	if !ok {
		return
	}
	s.mu.Lock()
	rs := s.sortedLocked(lq.order, lq.match)
	page := []*clerk.User{}
	for i := lq.offset; i < len(rs) && len(page) < lq.limit; i++ {
		page = append(page, rs[i].clerk())
	}
	s.mu.Unlock()
	// GET /v1/users answers a bare array; the SDK's List adds the count
	// from /v1/users/count.
	writeJSON(w, page)
}

func (s *Server) countUsers(w http.ResponseWriter, r *http.Request) {
	lq, ok := parseListQuery(w, r, false)
	if !ok {
		return
	}
	s.mu.Lock()
	n := 0
	for _, rec := range s.users {
		if lq.match(rec) {
			n++
		}
	}
	s.mu.Unlock()
	writeJSON(w, map[string]any{"object": "total_count", "total_count": n})
}

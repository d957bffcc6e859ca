package clerktest

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/stewardlabs/steward"
)

// record is a user as the server holds it. Times are Unix milliseconds,
// as in the Backend API; 0 means unset.
type record struct {
	id               string
	externalID       string
	username         string
	firstName        string
	lastName         string
	locale           string
	emails           []identification
	phones           []identification
	wallets          []identification
	primaryEmailID   string
	primaryPhoneID   string
	primaryWalletID  string
	externalAccounts []externalAccount
	memberships      []membership
	imageURL         string
	hasImage         bool
	password         string // plaintext, the fake compares it on verify_password
	passwordEnabled  bool
	passwordUpdated  int64
	totp             bool
	backupCodes      bool
	mfaEnabledAt     int64
	mfaDisabledAt    int64
	createdAt        int64
	updatedAt        int64
	lastSignInAt     int64
	lastActiveAt     int64 // at day precision, as Clerk serves it
	legalAcceptedAt  int64
	banned           bool
	locked           bool
	deleteSelf       bool
	createOrgs       bool
	createOrgsLimit  *int
	bypassTrust      bool
	public           map[string]any
	private          map[string]any
	unsafe           map[string]any
}

// identification is an email address, phone number or web3 wallet.
type identification struct {
	id        string
	value     string
	verified  bool
	reserved  bool
	createdAt int64
}

type externalAccount struct {
	id             string
	identID        string
	provider       string
	providerUserID string
	createdAt      int64
}

type membership struct {
	id        string
	orgID     string
	role      string
	createdAt int64
}

// DefaultImageURL is the image_url the server gives users without a
// profile image, as Clerk gives a default avatar.
const DefaultImageURL = "https://img.clerk.com/default-avatar.png"

// MaxMetadataBytes is the most a metadata object (public, private or
// unsafe, each on its own, as stored after the update) may take as JSON:
// "Metadata is limited to 8KB maximum" (clerk-docs,
// _partials/metadata-callout.mdx).
const MaxMetadataBytes = 8 << 10

// minPasswordLen is the documented minimum password length ("Must be at
// least 8 characters long", POST /users in the Backend API spec).
const minPasswordLen = 8

// UserOption sets a field of a user added with AddUser that
// steward.User does not carry.
type UserOption func(*record)

// UserUsername sets the user's username.
func UserUsername(name string) UserOption { return func(r *record) { r.username = name } }

// UserExternalID sets the user's external_id.
func UserExternalID(id string) UserOption { return func(r *record) { r.externalID = id } }

// UserPhoneNumbers gives the user verified phone numbers (E.164, such as
// "+15555550100"); the first is the primary one.
func UserPhoneNumbers(numbers ...string) UserOption {
	return func(r *record) {
		for _, n := range numbers {
			r.phones = append(r.phones, identification{id: NewID("idn_"), value: n, verified: true})
		}
	}
}

// UserWeb3Wallets gives the user verified web3 wallets (such as
// "0x" followed by 40 hexadecimal digits); the first is the primary one.
func UserWeb3Wallets(addresses ...string) UserOption {
	return func(r *record) {
		for _, a := range addresses {
			r.wallets = append(r.wallets, identification{id: NewID("idn_"), value: a, verified: true})
		}
	}
}

// UserExternalAccount links the user to an OAuth account: provider such
// as "oauth_google" and the user's ID at that provider, what the
// provider and provider_user_id list filters match.
func UserExternalAccount(provider, providerUserID string) UserOption {
	return func(r *record) {
		r.externalAccounts = append(r.externalAccounts, externalAccount{
			id: NewID("eac_"), identID: NewID("idn_"), provider: provider, providerUserID: providerUserID,
		})
	}
}

// UserOrganization makes the user a member of the organization with the
// given ID and role (such as "org:member"), what the organization_id list
// filter and GET /users/{id}/organization_memberships read.
func UserOrganization(orgID, role string) UserOption {
	return func(r *record) {
		r.memberships = append(r.memberships, membership{id: NewID("orgmem_"), orgID: orgID, role: role})
	}
}

// UserUnsafeMetadata sets the user's unsafe metadata.
func UserUnsafeMetadata(m map[string]any) UserOption {
	return func(r *record) { r.unsafe = mustJSONObject("UnsafeMetadata", m) }
}

// UserPassword gives the user a password, which verify_password checks.
func UserPassword(password string) UserOption {
	return func(r *record) { r.password, r.passwordEnabled = password, true }
}

// AddUser stores u, replacing any user with the same ID, and returns the
// user as the server now holds it. It fills what Clerk would: an ID
// ("user_" + 27 base62 characters) when u.ID is empty, email address IDs
// ("idn_..."), the primary email (the first address) when unset,
// DefaultImageURL when ImageURL is empty, CreatedAt (now) and UpdatedAt
// (CreatedAt) when zero. Times are truncated to milliseconds, and
// LastActiveAt to the start of its day (UTC), since Clerk serves
// last_active_at "with day precision" (User schema of the Backend API
// spec). Metadata is stored as JSON would store it. LastSignInAt,
// LastActiveAt, Banned and Locked are kept as given, which the real API
// cannot do; that is what makes AddUser useful for fixtures. The options
// set what steward.User does not carry (username, phone numbers, ...).
//
// AddUser checks no uniqueness; that is left to the fixture. It panics
// if the metadata cannot be encoded as JSON.
func (s *Server) AddUser(u steward.User, opts ...UserOption) steward.User {
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
		lastActiveAt:   dayMillis(u.LastActiveAt),
		banned:         u.Banned,
		locked:         u.Locked,
		deleteSelf:     true,
		createOrgs:     true,
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
		r.emails = append(r.emails, identification{id: id, value: e.Address, verified: e.Verified})
	}
	for _, o := range opts {
		o(r)
	}
	if r.createdAt == 0 {
		r.createdAt = now.UnixMilli()
	}
	if r.updatedAt == 0 {
		r.updatedAt = r.createdAt
	}
	r.fillDefaults()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.users[r.id] = r
	return r.steward()
}

// fillDefaults sets the primary identifications (the first of each kind)
// and creation times the record lacks.
func (r *record) fillDefaults() {
	for _, list := range [][]identification{r.emails, r.phones, r.wallets} {
		for i := range list {
			if list[i].createdAt == 0 {
				list[i].createdAt = r.createdAt
			}
		}
	}
	if r.primaryEmailID == "" && len(r.emails) > 0 {
		r.primaryEmailID = r.emails[0].id
	}
	if r.primaryPhoneID == "" && len(r.phones) > 0 {
		r.primaryPhoneID = r.phones[0].id
	}
	if r.primaryWalletID == "" && len(r.wallets) > 0 {
		r.primaryWalletID = r.wallets[0].id
	}
	for i := range r.externalAccounts {
		if r.externalAccounts[i].createdAt == 0 {
			r.externalAccounts[i].createdAt = r.createdAt
		}
	}
	for i := range r.memberships {
		if r.memberships[i].createdAt == 0 {
			r.memberships[i].createdAt = r.createdAt
		}
	}
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
	rs := s.sortedLocked(orderBy{field: "created_at"}, nil)
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

// dayMillis converts t to the Unix milliseconds of the start of its day
// in UTC, 0 for the zero time.
func dayMillis(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC).UnixMilli()
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
		u.EmailAddresses = append(u.EmailAddresses, steward.EmailAddress{ID: e.id, Address: e.value, Verified: e.verified})
	}
	return u
}

// primary returns the value of the identification with the given ID, or
// "".
func primary(list []identification, id string) string {
	for _, e := range list {
		if e.id == id {
			return e.value
		}
	}
	return ""
}

// touch moves updatedAt to now, never backwards.
func (r *record) touch(now int64) {
	r.updatedAt = max(r.updatedAt, now)
}

// clone returns a deep copy of r, for changes that may still fail.
func (r *record) clone() *record {
	c := *r
	c.emails = slices.Clone(r.emails)
	c.phones = slices.Clone(r.phones)
	c.wallets = slices.Clone(r.wallets)
	c.externalAccounts = slices.Clone(r.externalAccounts)
	c.memberships = slices.Clone(r.memberships)
	c.public = steward.CloneMetadata(r.public)
	c.private = steward.CloneMetadata(r.private)
	c.unsafe = steward.CloneMetadata(r.unsafe)
	if r.createOrgsLimit != nil {
		n := *r.createOrgsLimit
		c.createOrgsLimit = &n
	}
	return &c
}

// identifiers lists what makes r's sign-in identifiers unique across the
// instance, each as kind and lower-cased value.
func (r *record) identifiers() [][2]string {
	var out [][2]string
	for _, e := range r.emails {
		out = append(out, [2]string{"email_address", strings.ToLower(e.value)})
	}
	for _, p := range r.phones {
		out = append(out, [2]string{"phone_number", p.value})
	}
	for _, w := range r.wallets {
		out = append(out, [2]string{"web3_wallet", strings.ToLower(w.value)})
	}
	if r.username != "" {
		out = append(out, [2]string{"username", strings.ToLower(r.username)})
	}
	if r.externalID != "" {
		out = append(out, [2]string{"external_id", r.externalID})
	}
	return out
}

// uniquenessLocked checks that none of r's identifiers, usernames or
// external IDs that old (the user before the change, or nil) did not
// have belongs to another user: the Backend API spec says each "Must be
// unique across your instance". It answers Clerk's form_identifier_exists
// for each taken one.
func (s *Server) uniquenessLocked(r, old *record) *clerkError {
	taken := map[[2]string]bool{}
	for id, other := range s.users {
		if id == r.id {
			continue
		}
		for _, k := range other.identifiers() {
			taken[k] = true
		}
	}
	var errs []apiError
	seen := map[[2]string]bool{}
	if old != nil {
		for _, k := range old.identifiers() {
			seen[k] = true
		}
	}
	for _, k := range r.identifiers() {
		if !taken[k] || seen[k] {
			continue
		}
		seen[k] = true
		errs = append(errs, errIdentifierExists(k[0], strings.ReplaceAll(k[0], "_", " ")))
	}
	if len(errs) > 0 {
		return unprocessable(errs...)
	}
	return nil
}

// checkMetadataSize answers 422 form_param_exceeds_allowed_size for each
// metadata object of r larger than MaxMetadataBytes.
func (r *record) checkMetadataSize() *clerkError {
	var errs []apiError
	for _, f := range []struct {
		name string
		m    map[string]any
	}{{"public_metadata", r.public}, {"private_metadata", r.private}, {"unsafe_metadata", r.unsafe}} {
		if len(f.m) == 0 {
			continue
		}
		b, err := json.Marshal(f.m)
		if err != nil || len(b) > MaxMetadataBytes {
			errs = append(errs, errParamTooBig(f.name, MaxMetadataBytes))
		}
	}
	if len(errs) > 0 {
		return unprocessable(errs...)
	}
	return nil
}

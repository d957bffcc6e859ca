package steward

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"time"
)

// IdentityProvider is the port to the system that owns user accounts
// (Clerk, or MemoryIdentity in tests and examples).
//
// Implementations must be safe for concurrent use and must pass the
// conformance suite in package identitytest.
type IdentityProvider interface {
	// GetUser returns the user with the given ID. It returns an error
	// wrapping ErrUserNotFound when there is no such user and
	// ErrInvalidUserID when userID is malformed.
	GetUser(ctx context.Context, userID string) (User, error)

	// ListUsers yields the users matching q, ordered by creation time
	// (oldest first, ties broken by ID). Implementations page internally
	// and yield lazily; iteration stops at the first error, which is
	// yielded with a zero User.
	ListUsers(ctx context.Context, q UserQuery) iter.Seq2[User, error]

	// UpdateMetadata deep-merges p into the user's metadata: nested
	// objects are merged key by key, any other value replaces the old one,
	// and a nil value removes the key. It returns an error wrapping
	// ErrUserNotFound when there is no such user.
	UpdateMetadata(ctx context.Context, userID string, p MetadataPatch) error

	// DeleteUser deletes the user. Deleting a user that does not exist is
	// not an error, so that erasure can be retried safely.
	DeleteUser(ctx context.Context, userID string) error
}

// IDValidator is an optional capability of an IdentityProvider: it says,
// without any I/O, whether an ID is one the provider could hold (Clerk's
// IDs start with "user_"), so that a caller such as privacy's erasure
// refuses an ID the provider would refuse before touching anything else.
// Find it with a type assertion. clerkadapter.Provider implements it.
type IDValidator interface {
	// ValidateUserID returns an error wrapping ErrInvalidUserID, never
	// containing the ID, when the provider cannot hold userID.
	ValidateUserID(userID string) error
}

// ValidateFor checks userID with ValidateUserID and, when idp is an
// IDValidator, with the provider's own rule too. The error wraps
// ErrInvalidUserID and never contains the ID.
func ValidateFor(idp IdentityProvider, userID string) error {
	if err := ValidateUserID(userID); err != nil {
		return err
	}
	if v, ok := idp.(IDValidator); ok {
		if err := v.ValidateUserID(userID); err != nil {
			if !errors.Is(err, ErrInvalidUserID) {
				return fmt.Errorf("%w: %w", ErrInvalidUserID, err)
			}
			return err
		}
	}
	return nil
}

// Sentinel errors returned (wrapped) by IdentityProvider implementations
// and by the rest of the library. Check them with errors.Is.
var (
	// ErrUserNotFound reports that no user has the requested ID.
	ErrUserNotFound = errors.New("steward: user not found")
	// ErrInvalidUserID reports an empty or malformed user ID.
	ErrInvalidUserID = errors.New("steward: invalid user ID")
	// ErrInvalidPatch reports a nil or empty metadata patch, or one whose
	// values cannot be stored as JSON.
	ErrInvalidPatch = errors.New("steward: invalid metadata patch")
	// ErrInvalidQuery reports a UserQuery with out-of-range fields.
	ErrInvalidQuery = errors.New("steward: invalid user query")
)

// MaxUserIDLen is the longest user ID ValidateUserID accepts.
const MaxUserIDLen = 128

// ValidateUserID reports whether id can safely be used as a user ID: it
// must be 1 to MaxUserIDLen bytes of ASCII letters, digits, '_' and '-'.
// This is the common ground of Clerk IDs ("user_2abc...") and typical
// application IDs; it keeps IDs out of trouble in URLs, SQL and logs.
// The error wraps ErrInvalidUserID and never contains the ID itself.
func ValidateUserID(id string) error {
	if id == "" {
		return fmt.Errorf("%w: empty", ErrInvalidUserID)
	}
	if len(id) > MaxUserIDLen {
		return fmt.Errorf("%w: %d bytes long (max %d)", ErrInvalidUserID, len(id), MaxUserIDLen)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '-':
		default:
			return fmt.Errorf("%w: disallowed character at byte %d", ErrInvalidUserID, i)
		}
	}
	return nil
}

// User is an account as the identity provider holds it. It mirrors the
// data model: one record per person, role kept in PublicMetadata["role"].
type User struct {
	ID             string         `json:"id"`
	EmailAddresses []EmailAddress `json:"emailAddresses,omitempty"`
	// PrimaryEmailID is the ID of the primary entry in EmailAddresses.
	PrimaryEmailID  string         `json:"primaryEmailAddressId,omitempty"`
	FirstName       string         `json:"firstName,omitempty"`
	LastName        string         `json:"lastName,omitempty"`
	ImageURL        string         `json:"imageUrl,omitempty"`
	CreatedAt       time.Time      `json:"createdAt"`
	UpdatedAt       time.Time      `json:"updatedAt"`
	LastSignInAt    time.Time      `json:"lastSignInAt,omitzero"`
	LastActiveAt    time.Time      `json:"lastActiveAt,omitzero"`
	Banned          bool           `json:"banned"`
	Locked          bool           `json:"locked"`
	PublicMetadata  map[string]any `json:"publicMetadata,omitempty"`
	PrivateMetadata map[string]any `json:"privateMetadata,omitempty"`
}

// EmailAddress is one of a user's email addresses.
type EmailAddress struct {
	ID       string `json:"id"`
	Address  string `json:"emailAddress"`
	Verified bool   `json:"verified"`
}

// PrimaryEmail returns the user's primary email address, or the first
// address when no primary is set, and false when the user has none.
func (u User) PrimaryEmail() (EmailAddress, bool) {
	for _, e := range u.EmailAddresses {
		if e.ID == u.PrimaryEmailID {
			return e, true
		}
	}
	if len(u.EmailAddresses) > 0 && u.PrimaryEmailID == "" {
		return u.EmailAddresses[0], true
	}
	return EmailAddress{}, false
}

// EmailVerified reports whether the primary email address is verified,
// the data model's gate for full access.
func (u User) EmailVerified() bool {
	e, ok := u.PrimaryEmail()
	return ok && e.Verified
}

// LogValue implements slog.LogValuer. It never logs the raw ID, emails,
// names or metadata: only whether they are present and the account state.
func (u User) LogValue() slog.Value {
	return slog.GroupValue(
		slog.Bool("hasID", u.ID != ""),
		slog.Int("emails", len(u.EmailAddresses)),
		slog.Bool("banned", u.Banned),
		slog.Bool("locked", u.Locked),
	)
}

// UserQuery selects users for IdentityProvider.ListUsers. Zero fields do
// not filter.
type UserQuery struct {
	// LastActiveBefore keeps users whose last activity is before this
	// time (users who were never active count as inactive since creation).
	LastActiveBefore time.Time
	// CreatedBefore keeps users created before this time.
	CreatedBefore time.Time
	// Limit caps how many users are yielded in total; 0 means no cap.
	Limit int
	// PageSize is how many users each underlying request fetches; 0 lets
	// the implementation choose. Clerk allows at most 500.
	PageSize int
}

// Validate reports an out-of-range field, wrapping ErrInvalidQuery.
func (q UserQuery) Validate() error {
	if q.Limit < 0 {
		return fmt.Errorf("%w: Limit is negative (%d)", ErrInvalidQuery, q.Limit)
	}
	if q.PageSize < 0 {
		return fmt.Errorf("%w: PageSize is negative (%d)", ErrInvalidQuery, q.PageSize)
	}
	return nil
}

// Matches reports whether u passes the query's filters (not its limit).
// Implementations that filter in memory use it so that all agree.
func (q UserQuery) Matches(u User) bool {
	if !q.CreatedBefore.IsZero() && !u.CreatedAt.Before(q.CreatedBefore) {
		return false
	}
	if !q.LastActiveBefore.IsZero() {
		last := u.LastActiveAt
		if last.IsZero() {
			last = u.CreatedAt
		}
		if !last.Before(q.LastActiveBefore) {
			return false
		}
	}
	return true
}

// MetadataPatch is a deep-merge update of a user's metadata. In either
// map, a nested map[string]any is merged key by key into the existing
// value, any other value replaces it, and a nil value deletes the key.
type MetadataPatch struct {
	Public  map[string]any `json:"public_metadata,omitempty"`
	Private map[string]any `json:"private_metadata,omitempty"`
}

// Validate reports an empty patch, wrapping ErrInvalidPatch.
func (p *MetadataPatch) Validate() error {
	if p == nil {
		return fmt.Errorf("%w: patch is nil", ErrInvalidPatch)
	}
	if len(p.Public) == 0 && len(p.Private) == 0 {
		return fmt.Errorf("%w: patch changes neither public nor private metadata", ErrInvalidPatch)
	}
	return nil
}

// MergeMetadata returns dst deep-merged with patch, following the rules of
// MetadataPatch. dst is not modified; the result shares no maps with
// either argument.
func MergeMetadata(dst, patch map[string]any) map[string]any {
	out := CloneMetadata(dst)
	if out == nil {
		out = make(map[string]any, len(patch))
	}
	for k, v := range patch {
		switch pv := v.(type) {
		case nil:
			delete(out, k)
		case map[string]any:
			old, _ := out[k].(map[string]any)
			out[k] = MergeMetadata(old, pv)
		default:
			out[k] = cloneValue(v)
		}
	}
	return out
}

// CloneMetadata returns a deep copy of m (nil for nil).
func CloneMetadata(m map[string]any) map[string]any {
	if m == nil {
		return nil
	}
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = cloneValue(v)
	}
	return out
}

func cloneValue(v any) any {
	switch x := v.(type) {
	case map[string]any:
		return CloneMetadata(x)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = cloneValue(e)
		}
		return out
	default:
		return v
	}
}

// Clone returns a deep copy of u, so callers can change it freely.
func (u User) Clone() User {
	c := u
	if u.EmailAddresses != nil {
		c.EmailAddresses = append([]EmailAddress(nil), u.EmailAddresses...)
	}
	c.PublicMetadata = CloneMetadata(u.PublicMetadata)
	c.PrivateMetadata = CloneMetadata(u.PrivateMetadata)
	return c
}

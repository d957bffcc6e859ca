package clerkadapter

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"net/http"
	"strings"
	"time"

	"github.com/clerk/clerk-sdk-go/v2"
	"github.com/clerk/clerk-sdk-go/v2/user"

	"github.com/stewardlabs/steward"
)

// Defaults of the Provider's options.
const (
	DefaultMaxAttempts    = 5
	DefaultInitialBackoff = 250 * time.Millisecond
	DefaultMaxBackoff     = 10 * time.Second
	DefaultAttemptTimeout = 10 * time.Second
	DefaultPageSize       = 100
	// MaxPageSize is the largest page the Backend API serves.
	MaxPageSize = 500
)

// Provider is a steward.IdentityProvider over the Clerk Backend API,
// through the official SDK's user client. It is safe for concurrent use.
type Provider struct {
	users   *user.Client
	opts    options
	limiter *limiter
}

var (
	_ steward.IdentityProvider = (*Provider)(nil)
	_ steward.IDValidator      = (*Provider)(nil)
)

// ValidateUserID implements steward.IDValidator: a Clerk user ID is
// "user_" followed by letters, digits, '_' or '-'. It does no I/O.
func (p *Provider) ValidateUserID(userID string) error { return validateID(userID) }

type options struct {
	maxAttempts    int
	initialBackoff time.Duration
	maxBackoff     time.Duration
	attemptTimeout time.Duration
	pageSize       int
	rateN          int
	ratePer        time.Duration
}

// Option configures a Provider.
type Option func(*options)

// WithMaxAttempts sets how many times one operation (one page, for
// ListUsers) is attempted in all before its error is returned; 1 turns
// retries off. The default is DefaultMaxAttempts. The context bounds the
// attempts too.
func WithMaxAttempts(n int) Option {
	return func(o *options) { o.maxAttempts = max(n, 1) }
}

// WithBackoff sets the exponential backoff between retries: the first
// wait is about initial (±50% jitter), doubling up to max. A 429 answer's
// Retry-After overrides the computed wait. Defaults: DefaultInitialBackoff
// and DefaultMaxBackoff.
func WithBackoff(initial, max time.Duration) Option {
	return func(o *options) { o.initialBackoff, o.maxBackoff = initial, max }
}

// WithAttemptTimeout bounds each HTTP attempt; an attempt that takes
// longer is abandoned and retried. The default is DefaultAttemptTimeout.
func WithAttemptTimeout(d time.Duration) Option {
	return func(o *options) { o.attemptTimeout = d }
}

// WithPageSize sets the page size ListUsers uses when the query leaves
// PageSize zero (default DefaultPageSize; at most MaxPageSize).
func WithPageSize(n int) Option {
	return func(o *options) { o.pageSize = n }
}

// WithRateLimit makes the Provider send at most n requests in any window
// of length per, waiting (within the context) when it would send more;
// retries count. Clerk allows 100 requests per 10 s on development
// instances and 1000 per 10 s on production ones, per instance and
// whatever the client; leave headroom for other clients and clock skew,
// such as WithRateLimit(90, 10*time.Second) in development.
func WithRateLimit(n int, per time.Duration) Option {
	return func(o *options) { o.rateN, o.ratePer = n, per }
}

// New returns a Provider that reaches Clerk through the official SDK
// configured by cfg: its secret key (cfg.Key), and optionally a base URL
// (cfg.URL, as clerktest.Server.ClientConfig sets) and an HTTP client.
// cfg is copied; later changes to it have no effect.
func New(cfg *clerk.ClientConfig, opts ...Option) *Provider {
	o := options{
		maxAttempts:    DefaultMaxAttempts,
		initialBackoff: DefaultInitialBackoff,
		maxBackoff:     DefaultMaxBackoff,
		attemptTimeout: DefaultAttemptTimeout,
		pageSize:       DefaultPageSize,
	}
	for _, opt := range opts {
		opt(&o)
	}
	o.pageSize = min(max(o.pageSize, 1), MaxPageSize)

	var bc clerk.BackendConfig
	if cfg != nil {
		bc = cfg.BackendConfig
	}
	bc.HTTPClient = observed(bc.HTTPClient)
	p := &Provider{
		users: &user.Client{Backend: clerk.NewBackend(&bc)},
		opts:  o,
	}
	if o.rateN > 0 && o.ratePer > 0 {
		p.limiter = newLimiter(o.rateN, o.ratePer)
	}
	return p
}

// NewFromSecretKey returns a Provider for the Clerk instance whose secret
// key ("sk_live_..." or "sk_test_...") is given, at Clerk's default URL.
func NewFromSecretKey(secretKey string, opts ...Option) *Provider {
	cfg := &clerk.ClientConfig{}
	cfg.Key = clerk.String(secretKey)
	return New(cfg, opts...)
}

// observed returns a copy of c (or of a default client) whose transport
// records each answer's status and headers for the retry logic.
func observed(c *http.Client) *http.Client {
	var out http.Client
	if c != nil {
		out = *c
	}
	next := out.Transport
	if next == nil {
		next = http.DefaultTransport
	}
	out.Transport = &observer{next: next, now: time.Now}
	return &out
}

// validateID checks that id is a Clerk user ID ("user_" and at least one
// more allowed character) before it goes into a URL path.
func validateID(id string) error {
	if err := steward.ValidateUserID(id); err != nil {
		return err
	}
	if !strings.HasPrefix(id, "user_") || len(id) == len("user_") {
		return fmt.Errorf("%w: not a Clerk user ID (user_...)", steward.ErrInvalidUserID)
	}
	return nil
}

// GetUser returns the user. It returns an error wrapping
// steward.ErrUserNotFound (and the *APIError) when Clerk has no such user,
// steward.ErrInvalidUserID for a malformed ID, the context's error, or an
// *APIError.
func (p *Provider) GetUser(ctx context.Context, userID string) (steward.User, error) {
	if err := validateID(userID); err != nil {
		return steward.User{}, fmt.Errorf("clerkadapter: get user: %w", err)
	}
	var cu *clerk.User
	err := p.do(ctx, "get user", func(ctx context.Context) error {
		var err error
		cu, err = p.users.Get(ctx, userID)
		return err
	})
	if err != nil {
		if notFound(err) {
			return steward.User{}, fmt.Errorf("%w: %w", steward.ErrUserNotFound, err)
		}
		return steward.User{}, err
	}
	u, err := toUser(cu)
	if err != nil {
		return steward.User{}, fmt.Errorf("clerkadapter: get user: %w", err)
	}
	return u, nil
}

// UpdateMetadata deep-merges p into the user's metadata with Clerk's
// metadata endpoint (PATCH /v1/users/{id}/metadata), which merges nested
// objects and removes keys set to null, as the port requires. The merge
// is idempotent, so a retried request cannot apply twice differently.
//
// Errors wrap steward.ErrInvalidUserID, steward.ErrInvalidPatch (an empty
// patch, or values JSON cannot encode), steward.ErrUserNotFound, the
// context's error, or an *APIError.
func (p *Provider) UpdateMetadata(ctx context.Context, userID string, patch steward.MetadataPatch) error {
	if err := validateID(userID); err != nil {
		return fmt.Errorf("clerkadapter: update metadata: %w", err)
	}
	if err := patch.Validate(); err != nil {
		return fmt.Errorf("clerkadapter: update metadata: %w", err)
	}
	params := &user.UpdateMetadataParams{}
	for _, side := range []struct {
		name string
		m    map[string]any
		dst  **json.RawMessage
	}{
		{"public", patch.Public, &params.PublicMetadata},
		{"private", patch.Private, &params.PrivateMetadata},
	} {
		if len(side.m) == 0 {
			continue
		}
		b, err := json.Marshal(side.m)
		if err != nil {
			return fmt.Errorf("clerkadapter: update metadata: %w: %s metadata: %v", steward.ErrInvalidPatch, side.name, err)
		}
		raw := json.RawMessage(b)
		*side.dst = &raw
	}
	err := p.do(ctx, "update metadata", func(ctx context.Context) error {
		_, err := p.users.UpdateMetadata(ctx, userID, params)
		return err
	})
	if notFound(err) {
		return fmt.Errorf("%w: %w", steward.ErrUserNotFound, err)
	}
	return err
}

// DeleteUser deletes the user. Clerk's 404 for a user that does not exist
// counts as success, so erasure can be retried.
func (p *Provider) DeleteUser(ctx context.Context, userID string) error {
	if err := validateID(userID); err != nil {
		return fmt.Errorf("clerkadapter: delete user: %w", err)
	}
	err := p.do(ctx, "delete user", func(ctx context.Context) error {
		_, err := p.users.Delete(ctx, userID)
		return err
	})
	if notFound(err) {
		return nil
	}
	return err
}

// userPage is the bare array GET /v1/users answers.
type userPage []*clerk.User

// Read implements clerk.ResponseReader; the page keeps no response.
func (*userPage) Read(*clerk.APIResponse) {}

// ListUsers yields the users matching q, oldest first, fetching pages of
// q.PageSize (or the WithPageSize default; at most MaxPageSize) as the
// consumer ranges.
//
// Pages are fetched by creation time (order_by=+created_at, then
// created_at_after the last user seen) rather than by offset, so users the
// consumer deletes or updates meanwhile shift nothing: every user present
// throughout is yielded exactly once. Users created in the same
// millisecond are told apart by ID; only past MaxPageSize such users
// does paging fall back to offsets within that millisecond.
//
// Filters: CreatedBefore and LastActiveBefore go to Clerk as
// created_at_before (the earlier of the two, since nobody is active before
// they exist), and every user is then checked with q.Matches, so a user
// who was never active counts from creation whatever Clerk's own
// last-active filter does. Each page is one request (the SDK's List would
// add a count request per page).
func (p *Provider) ListUsers(ctx context.Context, q steward.UserQuery) iter.Seq2[steward.User, error] {
	return func(yield func(steward.User, error) bool) {
		if err := q.Validate(); err != nil {
			yield(steward.User{}, fmt.Errorf("clerkadapter: list users: %w", err))
			return
		}
		size := q.PageSize
		if size == 0 {
			size = p.opts.pageSize
		}
		size = min(size, MaxPageSize)
		before := serverCutoff(q)

		var (
			cursor  int64 = -1                // created_at of the last user seen
			seen          = map[string]bool{} // IDs seen with created_at == cursor
			skip    int                       // offset used only when a page made no progress
			yielded int
		)
		for {
			limit := min(size+len(seen), MaxPageSize)
			params := &user.ListParams{OrderBy: clerk.String("+created_at")}
			params.Limit = clerk.Int64(int64(limit))
			if skip > 0 {
				params.Offset = clerk.Int64(int64(skip))
			}
			if before != 0 {
				params.CreatedAtBefore = clerk.Int64(before)
			}
			if cursor >= 0 {
				params.CreatedAtAfter = clerk.Int64(cursor - 1)
			}
			var page userPage
			err := p.do(ctx, "list users", func(ctx context.Context) error {
				page = nil
				req := clerk.NewAPIRequest(http.MethodGet, "/users")
				req.SetParams(params)
				return p.users.Backend.Call(ctx, req, &page)
			})
			if err != nil {
				yield(steward.User{}, err)
				return
			}
			progressed := false
			for _, cu := range page {
				if cu == nil {
					continue
				}
				if cursor >= 0 && (cu.CreatedAt < cursor || cu.CreatedAt == cursor && seen[cu.ID]) {
					continue // seen on an earlier page
				}
				progressed = true
				if cu.CreatedAt != cursor {
					cursor = cu.CreatedAt
					clear(seen)
				}
				seen[cu.ID] = true
				u, err := toUser(cu)
				if err != nil {
					yield(steward.User{}, fmt.Errorf("clerkadapter: list users: %w", err))
					return
				}
				if !q.Matches(u) {
					continue
				}
				if !yield(u, nil) {
					return
				}
				yielded++
				if q.Limit > 0 && yielded >= q.Limit {
					return
				}
			}
			if len(page) < limit {
				return
			}
			if progressed {
				skip = 0
			} else {
				skip += len(page)
			}
		}
	}
}

// serverCutoff returns the created_at_before value (Unix ms, rounded up
// so that it keeps a superset) for q, or 0 for none.
func serverCutoff(q steward.UserQuery) int64 {
	var t time.Time
	for _, c := range []time.Time{q.CreatedBefore, q.LastActiveBefore} {
		if !c.IsZero() && (t.IsZero() || c.Before(t)) {
			t = c
		}
	}
	if t.IsZero() {
		return 0
	}
	ms := t.UnixMilli()
	if time.UnixMilli(ms).Before(t) {
		ms++
	}
	return ms
}

// toUser maps the SDK's user to the library's.
func toUser(c *clerk.User) (steward.User, error) {
	u := steward.User{
		ID:             c.ID,
		PrimaryEmailID: deref(c.PrimaryEmailAddressID),
		FirstName:      deref(c.FirstName),
		LastName:       deref(c.LastName),
		ImageURL:       deref(c.ImageURL),
		CreatedAt:      fromMillis(c.CreatedAt),
		UpdatedAt:      fromMillis(c.UpdatedAt),
		LastSignInAt:   fromMillisPtr(c.LastSignInAt),
		LastActiveAt:   fromMillisPtr(c.LastActiveAt),
		Banned:         c.Banned,
		Locked:         c.Locked,
	}
	for _, e := range c.EmailAddresses {
		if e == nil {
			continue
		}
		u.EmailAddresses = append(u.EmailAddresses, steward.EmailAddress{
			ID:       e.ID,
			Address:  e.EmailAddress,
			Verified: e.Verification != nil && e.Verification.Status == "verified",
		})
	}
	var err error
	if u.PublicMetadata, err = metadata(c.PublicMetadata); err != nil {
		return steward.User{}, fmt.Errorf("public metadata: %w", err)
	}
	if u.PrivateMetadata, err = metadata(c.PrivateMetadata); err != nil {
		return steward.User{}, fmt.Errorf("private metadata: %w", err)
	}
	return u, nil
}

// metadata decodes a metadata object; empty or null gives nil.
func metadata(raw json.RawMessage) (map[string]any, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, errors.New("not a JSON object")
	}
	if len(m) == 0 {
		return nil, nil
	}
	return m, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// fromMillis converts Clerk's Unix milliseconds; 0 stays the zero time.
func fromMillis(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms).UTC()
}

func fromMillisPtr(ms *int64) time.Time {
	if ms == nil {
		return time.Time{}
	}
	return fromMillis(*ms)
}

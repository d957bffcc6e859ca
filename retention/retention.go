package retention

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"time"
)

// Action is what a policy does with data past its maximum age.
type Action string

// The actions.
const (
	// Delete removes expired records from the policy's Target.
	Delete Action = "delete"
	// Anonymise strips personal fields of expired records (the Target
	// must implement Anonymiser) and keeps the rows.
	Anonymise Action = "anonymise"
	// NotifyThenErase notifies users inactive for MaxAge, records the
	// notice in their private metadata, and erases them through privacy
	// when GracePeriod has passed without new activity.
	NotifyThenErase Action = "notify_then_erase"
)

// Policy says how long one kind of data is kept and what happens after.
type Policy struct {
	Name string
	// Target holds the data for Delete and Anonymise; unused by
	// NotifyThenErase, which works on the identity provider's users.
	Target      Target
	MaxAge      time.Duration
	Action      Action
	GracePeriod time.Duration
	// BatchSize bounds each purge statement or transaction; 0 means
	// DefaultBatchSize.
	BatchSize int
}

// DefaultBatchSize is the batch size of a policy that sets none.
const DefaultBatchSize = 1000

// Default retention periods: long enough for an application's own
// troubleshooting and security review, short enough that nothing is kept
// "just in case".
const (
	ActivityLogRetention = 90 * 24 * time.Hour
	SessionRetention     = 30 * 24 * time.Hour
	InactiveUserAge      = 365 * 24 * time.Hour
	// InactiveGracePeriod is how long a notified inactive user has to
	// come back before erasure: a month to sign in, after which Steward
	// erases them.
	InactiveGracePeriod = 30 * 24 * time.Hour
)

// DefaultPolicies returns the default policies for the targets an app
// has: activity logs kept 90 days and sessions 30 days (both deleted),
// and users inactive 365 days notified and erased after
// InactiveGracePeriod. Pass the targets that hold activity logs and
// sessions; a nil target means the app keeps no such data, and its policy
// is left out, so DefaultPolicies(activity, nil) is the activity and
// inactive-user policies alone. The inactive-user policy is always there
// (remove it from the slice for an app that never erases inactive users).
func DefaultPolicies(activityLogs, sessions Target) []Policy {
	var ps []Policy
	if !isNil(activityLogs) {
		ps = append(ps, Policy{Name: "activity_logs", Target: activityLogs, MaxAge: ActivityLogRetention, Action: Delete})
	}
	if !isNil(sessions) {
		ps = append(ps, Policy{Name: "sessions", Target: sessions, MaxAge: SessionRetention, Action: Delete})
	}
	return append(ps, Policy{Name: "inactive_users", MaxAge: InactiveUserAge, Action: NotifyThenErase, GracePeriod: InactiveGracePeriod})
}

// isNil reports a nil Target, also one holding a nil pointer (a
// *sqltarget.Target variable never assigned, say).
func isNil(t Target) bool {
	if t == nil {
		return true
	}
	v := reflect.ValueOf(t)
	return v.Kind() == reflect.Pointer && v.IsNil()
}

// ErrInvalidPolicy is wrapped by errors about a malformed Policy.
var ErrInvalidPolicy = errors.New("retention: invalid policy")

// Validate reports a missing or inconsistent field, naming it.
func (p Policy) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: policy %q: %s", ErrInvalidPolicy, p.Name, fmt.Sprintf(format, args...))
	}
	switch {
	case p.Name == "":
		return fmt.Errorf("%w: Name is empty", ErrInvalidPolicy)
	case p.MaxAge <= 0:
		return bad("MaxAge must be positive")
	case p.BatchSize < 0:
		return bad("BatchSize is negative")
	}
	switch p.Action {
	case Delete:
		if p.Target == nil {
			return bad("Action %s needs a Target", p.Action)
		}
	case Anonymise:
		if _, ok := p.Target.(Anonymiser); !ok {
			return bad("Action %s needs a Target that implements Anonymiser", p.Action)
		}
	case NotifyThenErase:
		if p.GracePeriod < 0 {
			return bad("GracePeriod is negative")
		}
	default:
		return bad("unknown Action %q", p.Action)
	}
	return nil
}

func (p Policy) batch() int {
	if p.BatchSize > 0 {
		return p.BatchSize
	}
	return DefaultBatchSize
}

// Target is time-partitioned data a policy purges: activity logs,
// sessions, events. Records older than the cutoff (strictly) expire;
// records of the user IDs in exclude (users under legal hold) are left
// alone, records that belong to nobody never are. Implementations must be
// safe for concurrent use and pass the suite in package retentiontest.
type Target interface {
	// Count returns how many records are older than olderThan, leaving
	// out records of the users in exclude (under legal hold).
	Count(ctx context.Context, olderThan time.Time, exclude []string) (int, error)
	// Purge deletes up to limit of those records, in one short
	// transaction, and returns how many it deleted; 0 means none is left.
	Purge(ctx context.Context, olderThan time.Time, limit int, exclude []string) (int, error)
}

// Anonymiser is a Target that can strip personal data from expired
// records instead of deleting them. Anonymised records stay (Count still
// counts them) but are no longer identified: CountIdentified and
// Anonymise leave them alone, so anonymising twice changes nothing.
type Anonymiser interface {
	Target
	// CountIdentified counts expired records that still carry personal
	// data (what Anonymise would change).
	CountIdentified(ctx context.Context, olderThan time.Time, exclude []string) (int, error)
	// Anonymise strips up to limit of them, in one short transaction.
	Anonymise(ctx context.Context, olderThan time.Time, limit int, exclude []string) (int, error)
}

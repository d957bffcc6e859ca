package privacy

import (
	"context"
	"iter"
)

// DataStore is the port to one place an application keeps personal data
// (a table group, a service, a bucket). The privacy Service exports and
// erases a user across all registered DataStores.
//
// Implementations must be safe for concurrent use and pass the suite in
// package privacytest.
type DataStore interface {
	// Name is a stable identifier such as "orders"; it appears in
	// DeletionResult.DeletedFrom and in checkpoints, so it must not change.
	Name() string
	// Export yields the user's records one at a time; it must not load
	// them all into memory. Iteration stops at the first error.
	Export(ctx context.Context, userID string) iter.Seq2[Record, error]
	// Erase removes (or anonymises) the user's data. It is idempotent:
	// erasing a user with no data returns a zero Erased and no error.
	Erase(ctx context.Context, userID string) (Erased, error)
}

// Record is one item of a user's data, grouped by Category in exports.
type Record struct {
	Category string         `json:"category"`
	Data     map[string]any `json:"data"`
}

// Erased says what a DataStore's Erase removed.
type Erased struct {
	// Count is the number of records deleted or anonymised.
	Count int `json:"count"`
}

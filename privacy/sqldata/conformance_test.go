package sqldata_test

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"github.com/stewardlabs/steward/privacy"
	"github.com/stewardlabs/steward/privacy/privacytest"
	"github.com/stewardlabs/steward/privacy/sqldata"
	"github.com/stewardlabs/steward/sqlstore"
	"github.com/stewardlabs/steward/sqlstore/sqltest"
)

func TestDataStoreConformance(t *testing.T) {
	sqltest.Each(t, func(t *testing.T, db *sql.DB, d sqlstore.Dialect) {
		h := &harness{db: db, d: d, s: shop(t, db, d)}
		privacytest.RunDataStoreConformance(t, func(context.Context, *testing.T) (privacytest.DataStoreHarness, error) {
			return h, nil
		})
	})
}

// harness runs the suite on the example schema. Every case shares one
// database; the suite's user IDs are unique, so cases do not meet.
type harness struct {
	db *sql.DB
	d  sqlstore.Dialect
	s  *sqldata.Store
}

func (h *harness) Store() privacy.DataStore { return h.s }
func (h *harness) Close()                   {}

func (h *harness) Capabilities() privacytest.DataStoreCapabilities {
	// Records come table by table in declaration order and by key within
	// a table, and every seeded row is deleted or anonymised.
	return privacytest.DataStoreCapabilities{Ordered: true, ExactCount: true}
}

// Seed inserts a few rows in every table, with values of its own, and
// returns them as Export should yield them.
func (h *harness) Seed(ctx context.Context, userID string) ([]privacy.Record, error) {
	tx, err := h.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	q := h.d.Rebind
	at := time.Date(2025, time.February, 3, 4, 5, 6, 789000000, time.UTC)
	rec := func(cat string, kv ...any) privacy.Record {
		m := map[string]any{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return privacy.Record{Category: cat, Data: m}
	}
	var recs []privacy.Record

	if _, err := tx.ExecContext(ctx, q(`INSERT INTO user_profiles (clerk_id, display_name, bio, created_at) VALUES (?, ?, ?, ?)`),
		userID, "Ada Lovelace", nil, at); err != nil {
		return nil, err
	}
	recs = append(recs, rec("profile", "clerkId", userID, "displayName", "Ada Lovelace", "bio", nil, "createdAt", at))

	var orders, items []privacy.Record
	for i, total := range []int64{4200, 990} {
		var id int64
		if err := tx.QueryRowContext(ctx, q(`INSERT INTO orders (user_id, email, shipping_address, total_cents, currency, created_at)
VALUES (?, ?, ?, ?, ?, ?) RETURNING id`), userID, "ada@example.com", "12 St James's Square", total, "GBP", at.Add(time.Duration(i)*time.Hour)).Scan(&id); err != nil {
			return nil, err
		}
		orders = append(orders, rec("orders", "id", id, "email", "ada@example.com", "shippingAddress", "12 St James's Square",
			"totalCents", total, "currency", "GBP", "createdAt", at.Add(time.Duration(i)*time.Hour)))
		for j := range i + 1 {
			sku := "SKU-" + string(rune('A'+i)) + string(rune('0'+j))
			if _, err := tx.ExecContext(ctx, q(`INSERT INTO order_items (order_id, sku, quantity, unit_price_cents, gift_message) VALUES (?, ?, ?, ?, ?)`),
				id, sku, j+1, 100, "for you"); err != nil {
				return nil, err
			}
			items = append(items, rec("orderItems", "orderId", id, "sku", sku, "quantity", j+1, "unitPriceCents", 100, "giftMessage", "for you"))
		}
	}
	recs = append(append(recs, orders...), items...)

	for _, p := range [][2]string{{"theme", "dark"}, {"language", "en-GB"}} {
		if _, err := tx.ExecContext(ctx, q(`INSERT INTO user_preferences (user_id, name, value) VALUES (?, ?, ?)`), userID, p[0], p[1]); err != nil {
			return nil, err
		}
		recs = append(recs, rec("preferences", "name", p[0], "value", p[1]))
	}
	for i, action := range []string{"sign_in", "view_page"} {
		if _, err := tx.ExecContext(ctx, q(`INSERT INTO activity_log (user_id, action, ip_address, created_at) VALUES (?, ?, ?, ?)`),
			userID, action, "192.0.2.7", at.Add(time.Duration(i)*time.Minute)); err != nil {
			return nil, err
		}
		recs = append(recs, rec("activityLog", "action", action, "ipAddress", "192.0.2.7", "timestamp", at.Add(time.Duration(i)*time.Minute)))
	}
	return recs, tx.Commit()
}

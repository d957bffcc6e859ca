package sqltest_test

import (
	"database/sql"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/stewardlabs/steward/sqlstore"
	"github.com/stewardlabs/steward/sqlstore/sqltest"
)

func TestEachGivesEmptyDatabases(t *testing.T) {
	var ran []sqlstore.Dialect
	sqltest.Each(t, func(t *testing.T, db *sql.DB, d sqlstore.Dialect) {
		ran = append(ran, d)
		if want := string(d); !strings.HasSuffix(t.Name(), "/"+want) {
			t.Errorf("subtest name %q, want it to end in /%s", t.Name(), want)
		}
		if _, err := db.ExecContext(t.Context(), "CREATE TABLE steward_probe (id INTEGER PRIMARY KEY)"); err != nil {
			t.Fatalf("a fresh database must not have steward_probe yet: %v", err)
		}
	})
	if len(ran) == 0 || ran[0] != sqlstore.SQLite {
		t.Errorf("dialects run = %v, want sqlite first and always", ran)
	}
}

func TestPostgresSchemaPerTest(t *testing.T) {
	dsn := os.Getenv(sqltest.PostgresDSNEnv)
	if dsn == "" {
		t.Skipf("set %s to run", sqltest.PostgresDSNEnv)
	}
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	// The same server, written as keyword/value pairs instead of a URL.
	kv := fmt.Sprintf("host=%s port=%d user=%s dbname=%s sslmode=disable", cfg.Host, cfg.Port, cfg.User, cfg.Database)
	if cfg.Password != "" {
		kv += " password=" + cfg.Password
	}
	for name, dsn := range map[string]string{"url": dsn, "keyword/value": kv} {
		t.Run(name, func(t *testing.T) {
			t.Setenv(sqltest.PostgresDSNEnv, dsn)
			var schemas [2]string
			for i := range schemas {
				db := sqltest.Open(t, sqlstore.Postgres)
				// Several connections at once: each must use the schema.
				conns := make([]*sql.Conn, 3)
				for j := range conns {
					c, err := db.Conn(t.Context())
					if err != nil {
						t.Fatal(err)
					}
					defer c.Close()
					conns[j] = c
					var s string
					if err := c.QueryRowContext(t.Context(), "SELECT current_schema()").Scan(&s); err != nil {
						t.Fatal(err)
					}
					if !strings.HasPrefix(s, "steward_test_") {
						t.Fatalf("current_schema() = %q, want steward_test_<hex>", s)
					}
					if j > 0 && s != schemas[i] {
						t.Fatalf("connections of one pool see schemas %q and %q", schemas[i], s)
					}
					schemas[i] = s
				}
			}
			if schemas[0] == schemas[1] {
				t.Errorf("two Open calls share schema %q", schemas[0])
			}
		})
	}
}

func TestPostgresSchemaDroppedAtCleanup(t *testing.T) {
	dsn := os.Getenv(sqltest.PostgresDSNEnv)
	if dsn == "" {
		t.Skipf("set %s to run", sqltest.PostgresDSNEnv)
	}
	var schema string
	t.Run("use", func(t *testing.T) {
		db := sqltest.Open(t, sqlstore.Postgres)
		if err := db.QueryRowContext(t.Context(), "SELECT current_schema()").Scan(&schema); err != nil {
			t.Fatal(err)
		}
		if _, err := db.ExecContext(t.Context(), "CREATE TABLE steward_probe (id INTEGER)"); err != nil {
			t.Fatal(err)
		}
	})
	admin, err := sqlstore.OpenPostgres(dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	var n int
	if err := admin.QueryRowContext(t.Context(), "SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name = $1", schema).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("schema %s still exists after the test ended", schema)
	}
}

package postgres_test

import (
	"os"
	"strings"
	"testing"

	"github.com/stewardlabs/steward/sqldialect/postgres"
)

func TestOpenBadInput(t *testing.T) {
	if _, err := postgres.Open(""); err == nil || !strings.Contains(err.Error(), "dsn is empty") {
		t.Errorf("Open(\"\") = %v, want an error saying the dsn is empty", err)
	}
	_, err := postgres.Open("postgres://user:s3cret@host:notaport/db")
	if err == nil {
		t.Fatal("Open with a malformed DSN succeeded")
	}
	if strings.Contains(err.Error(), "s3cret") {
		t.Errorf("Open's error reveals the password: %v", err)
	}
}

func TestOpenConnects(t *testing.T) {
	dsn := os.Getenv("STEWARD_TEST_POSTGRES_DSN")
	if dsn == "" {
		t.Skip("set STEWARD_TEST_POSTGRES_DSN to run against PostgreSQL")
	}
	db, err := postgres.Open(dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var one int
	if err := db.QueryRowContext(t.Context(), `SELECT $1::int`, 1).Scan(&one); err != nil || one != 1 {
		t.Errorf("SELECT $1 = %d, %v", one, err)
	}
}

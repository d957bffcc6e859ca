package sqlstore

import (
	"context"
	"io/fs"
)

// Hooks for the external tests.

// MigrateFS runs s's migrations read from fsys instead of the embedded ones.
func MigrateFS(ctx context.Context, s *Store, fsys fs.FS) error { return s.migrateFS(ctx, fsys) }

// MigrationFiles are the embedded migrations.
var MigrationFiles fs.FS = migrationFiles

// MigrationInfo is what the tests see of a migration.
type MigrationInfo struct {
	Version int
	File    string
}

// LoadMigrations lists the migrations for d in fsys, checked and in order.
func LoadMigrations(fsys fs.FS, d Dialect) ([]MigrationInfo, error) {
	ms, err := loadMigrations(fsys, d)
	if err != nil {
		return nil, err
	}
	var out []MigrationInfo
	for _, m := range ms {
		out = append(out, MigrationInfo{Version: m.version, File: m.file})
	}
	return out, nil
}

// CheckMigrationSequence reports a gap in the numbering of fsys's
// migrations for d.
func CheckMigrationSequence(fsys fs.FS, d Dialect) error {
	ms, err := loadMigrations(fsys, d)
	if err != nil {
		return err
	}
	return checkMigrationSequence(ms)
}

package examples_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestSQLiteOnlyExamplesLinkNoPgx builds the examples that use SQLite
// alone and reads their module list with `go version -m`: none may carry
// github.com/jackc/pgx, nor River. gdprserver, which can switch to
// PostgreSQL and River, is the control: it must carry both, or the check
// proves nothing.
func TestSQLiteOnlyExamplesLinkNoPgx(t *testing.T) {
	for _, tt := range []struct {
		name    string
		wantPgx bool
	}{
		{"quickstart", false},
		{"retentionjob", false},
		{"customstore", false},
		{"gdprserver", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			bin := build(t, tt.name)
			out, err := exec.Command(goTool(), "version", "-m", bin).CombinedOutput()
			if err != nil {
				t.Fatalf("go version -m: %v\n%s", err, out)
			}
			var pgx, river []string
			for line := range strings.SplitSeq(string(out), "\n") {
				if f := strings.Fields(line); len(f) >= 2 && f[0] == "dep" && strings.HasPrefix(f[1], "github.com/jackc/") {
					pgx = append(pgx, f[1])
				}
				if f := strings.Fields(line); len(f) >= 2 && f[0] == "dep" && strings.HasPrefix(f[1], "github.com/riverqueue/") {
					river = append(river, f[1])
				}
			}
			if got := len(pgx) > 0; got != tt.wantPgx {
				t.Errorf("%s links pgx = %v (%v), want %v\n%s", tt.name, got, pgx, tt.wantPgx, out)
			}
			if got := len(river) > 0; got != tt.wantPgx {
				t.Errorf("%s links River = %v (%v), want %v", tt.name, got, river, tt.wantPgx)
			}
		})
	}
}

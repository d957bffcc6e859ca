package steward_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestCoreCompilesNoRiver: no package of the module but riverjobs (and
// the programs that wire it: the gdprserver example and the steward
// command's worker) depends on River, even through its tests, so an
// application that does not import riverjobs compiles no River code.
func TestCoreCompilesNoRiver(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	out, err := exec.Command("go", "list", "./...").Output()
	if err != nil {
		t.Fatalf("go list ./...: %v", err)
	}
	var core []string
	for _, p := range strings.Fields(string(out)) {
		if strings.HasSuffix(p, "/riverjobs") || strings.HasSuffix(p, "/examples/gdprserver") || strings.HasSuffix(p, "/examples") ||
			strings.HasSuffix(p, "/cmd/steward") {
			continue
		}
		core = append(core, p)
	}
	if len(core) < 10 {
		t.Fatalf("only %d core packages listed: %v", len(core), core)
	}
	deps, err := exec.Command("go", append([]string{"list", "-deps", "-test", "-f", "{{.ImportPath}}"}, core...)...).Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	var river []string
	for _, d := range strings.Fields(string(deps)) {
		if strings.Contains(d, "riverqueue") {
			river = append(river, d)
		}
	}
	if len(river) > 0 {
		t.Errorf("core packages depend on River: %v", river)
	}
	all, err := exec.Command("go", "list", "-deps", "./riverjobs").Output()
	if err != nil || !strings.Contains(string(all), "github.com/riverqueue/river") {
		t.Errorf("go list -deps ./riverjobs shows no River (%v): the check above would pass for nothing", err)
	}
}

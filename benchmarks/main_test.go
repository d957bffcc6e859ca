package benchmarks

import (
	"os"
	"testing"

	"github.com/stewardlabs/steward/internal/fleet"
)

// TestMain lets the benchmark binary re-execute itself as the writer
// processes of BenchmarkAuditAppendProcesses.
func TestMain(m *testing.M) {
	fleet.RunRole(map[string]func() int{auditWriterRole: runAuditWriter})
	os.Exit(m.Run())
}

package benchmarks

import (
	"fmt"
	"os"
	"testing"

	"github.com/stewardlabs/steward/internal/fleet"
)

// TestMain lets the benchmark binary re-execute itself as the writer
// processes of BenchmarkAuditAppendProcesses and the worker processes of
// BenchmarkBulkErasure.
func TestMain(m *testing.M) {
	if schema := os.Getenv(workerSchemaEnv); schema != "" {
		if err := erasureWorker(schema); err != nil {
			fmt.Fprintln(os.Stderr, "worker:", err)
			os.Exit(1)
		}
		return
	}
	fleet.RunRole(map[string]func() int{auditWriterRole: runAuditWriter})
	os.Exit(m.Run())
}

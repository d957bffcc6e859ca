package audit_test

import (
	"testing"

	"github.com/stewardlabs/steward/audit"
	"github.com/stewardlabs/steward/audit/audittest"
)

func TestMemorySinkConformance(t *testing.T) {
	audittest.RunConformance(t, func(*testing.T) audit.Sink { return audit.NewMemorySink() })
}

func TestSlogSinkConformance(t *testing.T) {
	audittest.RunConformance(t, func(*testing.T) audit.Sink { return audit.NewSlogSink(discardLogger()) })
}

func TestHTTPSinkConformance(t *testing.T) {
	audittest.RunConformance(t, func(t *testing.T) audit.Sink {
		_, srv := newCollector(t)
		s, err := audit.NewHTTPSink(srv.URL, fastRetry())
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

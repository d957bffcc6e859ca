package fleet_test

import (
	"os"
	"testing"

	"github.com/stewardlabs/steward/internal/fleet"
)

func TestMain(m *testing.M) {
	fleet.RunRole(map[string]func() int{
		workerRole: runWorker,
		"sleeper":  runSleeper,
		"spawner":  runSpawner,
		"exit7":    func() int { return 7 },
	})
	os.Exit(m.Run())
}

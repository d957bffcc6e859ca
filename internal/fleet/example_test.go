package fleet_test

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/stewardlabs/steward/internal/fleet"
)

func ExampleJournal() {
	dir, _ := os.MkdirTemp("", "journal")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "ops.jsonl")

	j, err := fleet.CreateJournal(path)
	if err != nil {
		fmt.Println(err)
		return
	}
	type op struct {
		Op string `json:"op"`
		OK bool   `json:"ok"`
	}
	_ = j.Append(op{Op: "export"})
	_ = j.Append(op{Op: "export", OK: true})
	_ = j.Close()

	ops, err := fleet.ReadJournal[op](path)
	fmt.Println(ops, err)
	// Output: [{export false} {export true}] <nil>
}

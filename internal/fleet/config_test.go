package fleet_test

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/stewardlabs/steward/sqlstore"
)

// workerRole is the role of a re-executed test binary that runs the
// library stack as one replica.
const workerRole = "worker"

// Environment of a worker process: where its configuration is, and which
// slot and incarnation it is.
const (
	configEnv      = "STEWARD_FLEET_CONFIG"
	slotEnv        = "STEWARD_FLEET_SLOT"
	incarnationEnv = "STEWARD_FLEET_INCARNATION"
)

// Headers the workers add to their calls to clerktest and to the
// external erasure service, so the parent knows who made each call and
// for which erasure request.
const (
	pidHeader     = "X-Fleet-Pid"
	requestHeader = "X-Fleet-Request"
)

// externalName is the external service's step name.
const externalName = "analytics"

// auditKeyID is the pseudonymisation key's ID, the same in every process.
const auditKeyID = "fleet1"

// config is what the parent tells every worker, as a JSON file.
type config struct {
	Dialect     sqlstore.Dialect `json:"dialect"`
	SQLitePath  string           `json:"sqlitePath,omitempty"`
	PostgresDSN string           `json:"postgresDsn,omitempty"`
	Schema      string           `json:"schema,omitempty"`
	ClerkURL    string           `json:"clerkUrl"`
	ClerkKey    string           `json:"clerkKey"`
	ExternalURL string           `json:"externalUrl"`
	AuditKey    []byte           `json:"auditKey"`
	// Users are the pool's user IDs; journals name users by index.
	Users []string `json:"users"`
	// Regular are the indexes of the users whose roles and bans change;
	// victims are never among them, so no erasure removes an admin.
	Regular []int    `json:"regular"`
	Victims []victim `json:"victims"`
	// Start is when the run began; victims fall due from it.
	Start        time.Time     `json:"start"`
	Dir          string        `json:"dir"`
	OpLoops      int           `json:"opLoops"`
	OpPause      time.Duration `json:"opPause"`
	ResumeAfter  time.Duration `json:"resumeAfter"`
	ClaimTTL     time.Duration `json:"claimTtl"`
	DrainTimeout time.Duration `json:"drainTimeout"`
}

// victim is a user to erase, At after Start, by the workers in Slots
// (two of them: erased from two processes at once).
type victim struct {
	User  int           `json:"user"`
	At    time.Duration `json:"at"`
	Slots []int         `json:"slots"`
}

func (c config) write(path string) error {
	b, err := json.MarshalIndent(c, "", "\t")
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o600)
}

func readConfig(path string) (config, error) {
	var c config
	b, err := os.ReadFile(path)
	if err != nil {
		return c, err
	}
	return c, json.Unmarshal(b, &c)
}

// Operation kinds, as journalled.
const (
	opExport  = "export"
	opConsent = "consent"
	opRole    = "role"
	opBan     = "ban"
	opLog     = "log"
	opErase   = "erase"
	opResume  = "resume"
	opSync    = "sync"
)

// Journal record kinds.
const (
	recUp      = "up"      // a worker started: Pid, Slot, Inc
	recStart   = "start"   // an operation began
	recEnd     = "end"     // an operation returned
	recDrained = "drained" // a worker drained and is exiting
	recNote    = "note"    // anything else worth reading after a failure
	// recClaim: renewing the claim on request Request failed (Err), so
	// the run may lose it while it is alive and a step in flight may be
	// done again by the next worker, as after a kill.
	recClaim = "claim"
)

// record is one journal line. Users are named by their index in the
// pool, never by ID.
type record struct {
	Kind string    `json:"k"`
	At   time.Time `json:"at"`
	Pid  int       `json:"pid,omitempty"`
	Slot int       `json:"slot"`
	Inc  int       `json:"inc"`
	Op   string    `json:"op,omitempty"`
	Type string    `json:"t,omitempty"`
	User int       `json:"u"`
	// OK: the operation succeeded. Event: it succeeded and must have
	// stored exactly one audit event (matched by its actor).
	OK    bool `json:"ok,omitempty"`
	Event bool `json:"ev,omitempty"`
	// N is what ResumePending or SyncPending reported done.
	N       int    `json:"n,omitempty"`
	Request string `json:"req,omitempty"`
	Err     string `json:"err,omitempty"`
	// Expected marks an error the operation may return in a fleet (the
	// last admin, a busy lock, a user already erased).
	Expected bool `json:"expected,omitempty"`
	// Leak: the error named a pool user's ID, which no error may.
	Leak bool   `json:"leak,omitempty"`
	Note string `json:"note,omitempty"`
}

// opID names the n-th operation of a worker's incarnation.
func opID(slot, inc, n int) string { return fmt.Sprintf("w%d-%d-%d", slot, inc, n) }

// actorID is the user ID an operation acts as, so that its audit event
// can be told from every other by its actor's pseudonym.
func actorID(op string) string { return "user_op_" + strings.ReplaceAll(op, "-", "_") }

// journalPath is where a worker's incarnation writes its records.
func journalPath(dir string, slot, inc int) string {
	return fmt.Sprintf("%s/w%d.%d.jsonl", dir, slot, inc)
}

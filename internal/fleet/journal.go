package fleet

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"sync"
)

// Journal is an append-only file of JSON records, one per line. Each
// record goes to the file in one write(2) on a descriptor opened with
// O_APPEND and without buffering, so a process killed at any instant
// leaves complete records, at most the last one cut short, and
// everything Append returned for is in the file (in the kernel's page
// cache: it survives the process, not the machine). Safe for concurrent
// use.
type Journal struct {
	mu sync.Mutex
	f  *os.File
}

// CreateJournal opens path for appending, creating it if needed.
func CreateJournal(path string) (*Journal, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("fleet: opening journal: %w", err)
	}
	return &Journal{f: f}, nil
}

// Append writes v as one JSON record.
func (j *Journal) Append(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("fleet: encoding journal record: %w", err)
	}
	b = append(b, '\n')
	j.mu.Lock()
	defer j.mu.Unlock()
	if _, err := j.f.Write(b); err != nil {
		return fmt.Errorf("fleet: writing journal %s: %w", j.f.Name(), err)
	}
	return nil
}

// Close closes the file.
func (j *Journal) Close() error { return j.f.Close() }

// ReadJournal returns the records of the journal at path, decoded as T,
// in the order they were written. A last line without a newline (a
// writer killed mid-write) is skipped; any other line that does not
// decode is an error naming the file and line.
func ReadJournal[T any](path string) ([]T, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("fleet: reading journal: %w", err)
	}
	if i := bytes.LastIndexByte(b, '\n'); i < len(b)-1 {
		b = b[:i+1] // the cut-short last record
	}
	var out []T
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for line := 1; sc.Scan(); line++ {
		var v T
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
			return nil, fmt.Errorf("fleet: %s line %d: %w", path, line, err)
		}
		out = append(out, v)
	}
	return out, sc.Err()
}

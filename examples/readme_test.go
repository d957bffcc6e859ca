package examples_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// readmeFrom is the heading after which every ```go block of README.md
// must compile against the module as it is.
const readmeFrom = "## A five-minute tour"

// tourPreamble declares what the README's snippets take as given. The
// first statement block runs at the top of the function, so what it
// declares (idp, db, store, auditLog, svc, consents, auth) is in scope for the rest;
// each later block gets a scope of its own; a block starting with "func"
// is a top-level declaration.
const tourPreamble = `package readmetour

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"testing"
	"time"

	clerk "github.com/clerk/clerk-sdk-go/v2"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/stewardlabs/steward"
	"github.com/stewardlabs/steward/audit"
	"github.com/stewardlabs/steward/background"
	"github.com/stewardlabs/steward/clerkadapter"
	"github.com/stewardlabs/steward/consent"
	"github.com/stewardlabs/steward/privacy"
	"github.com/stewardlabs/steward/privacy/privacytest"
	"github.com/stewardlabs/steward/privacy/sqldata"
	"github.com/stewardlabs/steward/privacy/sqldata/exampleschema"
	"github.com/stewardlabs/steward/rbac"
	"github.com/stewardlabs/steward/retention"
	"github.com/stewardlabs/steward/riverjobs"
	"github.com/stewardlabs/steward/sqlstore"
)

var (
	_ = testing.Verbose
	_ privacytest.DataStoreHarnessMaker = newMyHarness
)

func newMyHarness(context.Context, *testing.T) (privacytest.DataStoreHarness, error) { return nil, nil }

func tour(ctx context.Context, clerkCfg *clerk.ClientConfig, webhookSecret string, u steward.User,
	mux *http.ServeMux, adminHandler http.Handler, userID string, w io.Writer,
	activity, sessions retention.Target, mailer retention.Notifier) error {
`

// unusedError matches the compiler errors a fragment may cause without
// being wrong: a snippet shows a result without going on to use it.
var unusedError = regexp.MustCompile(`(declared and not used|imported and not used)`)

// TestReadmeSnippetsCompile keeps the README honest: its Go snippets are
// assembled into one package and compiled (through an overlay, so nothing
// is written into the module).
func TestReadmeSnippetsCompile(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("compiles the README's snippets")
	}
	readme, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(readme), readmeFrom)
	if !ok {
		t.Fatalf("README.md has no %q heading", readmeFrom)
	}
	blocks := goBlocks(after)
	if len(blocks) < 5 {
		t.Fatalf("README.md has %d Go blocks after %q, want the tour's", len(blocks), readmeFrom)
	}

	var body, decls strings.Builder
	first := true
	for _, b := range blocks {
		switch {
		case strings.HasPrefix(b, "func "):
			decls.WriteString(b + "\n")
		case first:
			body.WriteString(b + "\n")
			first = false
		default:
			body.WriteString("{\n" + b + "\n}\n")
		}
	}
	src := tourPreamble + body.String() + "return nil\n}\n\n" + decls.String()

	dir := t.TempDir()
	file := filepath.Join(dir, "tour.go")
	if err := os.WriteFile(file, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	abs, err := filepath.Abs("_readmetour")
	if err != nil {
		t.Fatal(err)
	}
	overlay, err := json.Marshal(map[string]map[string]string{"Replace": {filepath.Join(abs, "tour.go"): file}})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "overlay.json"), overlay, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(goTool(), "build", "-gcflags=-e", "-overlay", filepath.Join(dir, "overlay.json"), "-o", os.DevNull, "./_readmetour")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err == nil {
		return
	}
	var wrong []string
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		if strings.HasPrefix(line, "#") || unusedError.MatchString(line) {
			continue
		}
		wrong = append(wrong, line)
	}
	if len(wrong) > 0 {
		t.Errorf("README.md's Go snippets do not compile:\n%s\n\nassembled source:\n%s", strings.Join(wrong, "\n"), numbered(src))
	}
}

// goBlocks returns the contents of the ```go fenced blocks of md.
func goBlocks(md string) []string {
	var blocks []string
	for {
		_, rest, ok := strings.Cut(md, "```go\n")
		if !ok {
			return blocks
		}
		block, rest, ok := strings.Cut(rest, "```")
		if !ok {
			return blocks
		}
		blocks = append(blocks, strings.TrimSpace(block))
		md = rest
	}
}

func numbered(src string) string {
	var b strings.Builder
	for i, line := range strings.Split(src, "\n") {
		fmt.Fprintf(&b, "%4d\t%s\n", i+1, line)
	}
	return b.String()
}

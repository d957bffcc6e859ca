package main

import (
	"errors"
	"fmt"
	"iter"
	"net/http"
	"time"

	"github.com/spf13/cobra"

	"github.com/stewardlabs/steward/audit"
)

func auditCommand(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Verify the audit chain, or forward it to a remote collector",
		RunE:  needSubcommand,
	}
	cmd.AddCommand(auditVerifyCommand(a), auditForwardCommand(a))
	return cmd
}

// verifyStep is how many events pass between two plain progress lines.
const verifyStep = 10_000

func auditVerifyCommand(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "verify",
		Short: "Walk the audit chain in the database and report the first broken event, or how many verified",
		Long: `verify reads every audit event in sequence order and checks each one's
hash and its link to the one before. It reports the first event where the
chain breaks (an edit, insertion, deletion or reordering; exit code 1), or
how many events it verified and the last hash: compare that with a copy
kept elsewhere (a collector) to notice events cut off the end.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			st, err := a.openStore(ctx, false)
			if err != nil {
				return err
			}
			sink := st.AuditSink()
			head, err := sink.Last(ctx)
			if err != nil {
				return err
			}
			if head.Sequence == 0 {
				if a.json {
					return a.printJSON(verifyReport{OK: true})
				}
				a.printf("audit chain empty: no event to verify")
				return nil
			}
			m := a.progress("verifying", int64(head.Sequence))
			var n uint64
			counted := func(yield func(audit.Event, error) bool) {
				for e, err := range sink.Events(ctx, 0) {
					if err == nil {
						n++
						if n%verifyStep == 0 || n == head.Sequence {
							m.set(int64(n), fmt.Sprintf("verified %d of %d events", n, head.Sequence))
						}
					}
					if !yield(e, err) {
						return
					}
				}
			}
			verr := audit.Verify(iter.Seq2[audit.Event, error](counted))
			if verr != nil {
				m.abort()
			}
			var chain *audit.ChainError
			if verr != nil && !errors.As(verr, &chain) {
				return verr
			}
			if verr == nil {
				m.finish()
				if a.json {
					return a.printJSON(verifyReport{OK: true, Verified: n, LastHash: head.Hash})
				}
				a.printf("audit chain intact: %d events verified, last hash %s", n, head.Hash)
				return nil
			}
			var broken *audit.Event
			for e, err := range sink.Events(ctx, chain.Sequence) {
				if err == nil && e.Sequence == chain.Sequence {
					broken = &e
				}
				break
			}
			if a.json {
				if err := a.printJSON(verifyReport{Verified: chain.Sequence - 1, BrokenAt: chain.Sequence, Reason: chain.Reason, Event: broken}); err != nil {
					return err
				}
			} else {
				a.printf("audit chain broken at event %d: %s", chain.Sequence, chain.Reason)
				if broken != nil {
					a.printf("  event %s: %s at %s, subject %s", broken.ID, broken.Type, broken.Time.UTC().Format(time.RFC3339), orDash(broken.Subject))
				}
				a.printf("events 1 to %d verified", chain.Sequence-1)
			}
			return fmt.Errorf("audit chain broken at event %d", chain.Sequence)
		},
	}
}

// verifyReport is audit verify's result in JSON: ok with the count
// verified and the last hash, or where the chain breaks and why.
type verifyReport struct {
	OK       bool         `json:"ok"`
	Verified uint64       `json:"verified"`
	LastHash string       `json:"lastHash,omitempty"`
	BrokenAt uint64       `json:"brokenAt,omitempty"`
	Reason   string       `json:"reason,omitempty"`
	Event    *audit.Event `json:"event,omitempty"`
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func auditForwardCommand(a *app) *cobra.Command {
	var (
		to, name string
		batch    int
	)
	cmd := &cobra.Command{
		Use:   "forward --to URL",
		Short: "Send a remote collector the audit events it has not received yet",
		Long: `forward catches an HTTP collector up with the chain: it sends, in order and
in batches, every event past the collector's cursor (kept in the database
under --name) and records the cursor after each batch the collector
accepted, so a run that fails part-way (exit code 3) is carried on by the
next. It shares the cursor's claim with the application's Forwarders:
while one of them is sending, forward does nothing and fails.
STEWARD_AUDIT_FORWARD_TOKEN, when set, is sent as a bearer token.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			to = a.setting(to, envForwardURL, "")
			if to == "" {
				return usageErrorf("audit forward needs the collector: --to URL or %s", envForwardURL)
			}
			if _, err := checkedURL("--to", to); err != nil {
				return err
			}
			opts := &audit.HTTPOptions{}
			if tok := a.getenv(envForwardToken); tok != "" {
				opts.Header = http.Header{"Authorization": {"Bearer " + tok}}
			}
			dst, err := audit.NewHTTPSink(to, opts)
			if err != nil {
				return usageErrorf("--to: %w", err)
			}
			st, err := a.openStore(ctx, false)
			if err != nil {
				return err
			}
			f, err := audit.NewForwarder(st.AuditSink(), dst, st.AuditCursors(), name, audit.WithForwardBatch(batch))
			if err != nil {
				return usageErrorf("%w", err)
			}
			m := a.progress("forwarding to "+name, -1)
			done := make(chan struct{})
			go func() {
				t := time.NewTicker(200 * time.Millisecond)
				defer t.Stop()
				for {
					select {
					case <-done:
						return
					case <-t.C:
						s := f.Stats()
						m.set(int64(s.Cursor), "")
					}
				}
			}()
			sent, ferr := f.Forward(ctx)
			close(done)
			s := f.Stats()
			if ferr == nil {
				m.finish()
			} else {
				m.abort()
			}
			if a.json {
				if err := a.printJSON(struct {
					Destination string `json:"destination"`
					Forwarded   int    `json:"forwarded"`
					Cursor      uint64 `json:"cursor"`
					Head        uint64 `json:"head"`
				}{name, sent, s.Cursor, s.Head}); err != nil {
					return err
				}
			} else {
				a.printf("forwarded %d events to %s: cursor at %d of %d", sent, name, s.Cursor, s.Head)
			}
			switch {
			case ferr == nil:
				return nil
			case errors.Is(ferr, audit.ErrCursorHeld):
				return fmt.Errorf("another forwarder is sending to %s now: nothing to do", name)
			case sent > 0:
				return partialError(ferr)
			}
			return ferr
		},
	}
	f := cmd.Flags()
	f.StringVar(&to, "to", "", "the collector's `URL` (env "+envForwardURL+"); https, or http to localhost")
	f.StringVar(&name, "name", "collector", "the destination's name, under which its cursor is kept")
	f.IntVar(&batch, "batch", 500, "events per request")
	return cmd
}

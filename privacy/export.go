package privacy

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"time"

	"github.com/cenkalti/backoff/v5"

	"github.com/stewardlabs/steward"
	"github.com/stewardlabs/steward/audit"
)

// FormatVersion is the version of the export document's shape. It
// changes only when a field changes meaning or disappears.
const FormatVersion = 1

// ExportDocument is the export's JSON document, for readers that decode
// it. Export writes it as a stream (it never builds this value):
//
//	{
//	  "formatVersion": 1,
//	  "exportedAt": "2025-03-01T12:00:00Z",
//	  "identity": {"id": "user_123", "email": "ada@example.com", ...},
//	  "data": {
//	    "<store name>": [
//	      {"category": "orders", "records": [{...}, {...}]},
//	      {"category": "profile", "records": [{...}]}
//	    ]
//	  },
//	  "complete": true
//	}
//
// Stores appear in registration order. Each store's records are grouped
// into runs of one category, in the order the store yields them; a store
// that yields each category's records together (as the privacytest suite
// requires) gives one group per category. Records are Record.Data after
// the Sanitizer. "complete" is written last, so a document cut short by
// an error mid-stream is invalid JSON, never a plausible partial export.
type ExportDocument struct {
	FormatVersion int                      `json:"formatVersion"`
	ExportedAt    time.Time                `json:"exportedAt"`
	Identity      ExportedIdentity         `json:"identity"`
	Data          map[string][]ExportGroup `json:"data"`
	Complete      bool                     `json:"complete"`
}

// ExportedIdentity is the identity record in an export: the user as the
// identity provider holds it (ID, primary email, every email address with
// its verification, names, image, creation and last sign-in, metadata).
// Names and LastSignIn are null when unknown; private metadata is
// included only with WithPrivateMetadata.
type ExportedIdentity struct {
	ID             string               `json:"id"`
	Email          string               `json:"email,omitempty"`
	EmailAddresses []ExportedEmail      `json:"emailAddresses"`
	FirstName      *string              `json:"firstName"`
	LastName       *string              `json:"lastName"`
	ImageURL       string               `json:"imageUrl,omitempty"`
	CreatedAt      time.Time            `json:"createdAt"`
	LastSignIn     *time.Time           `json:"lastSignIn"`
	Metadata       ExportedUserMetadata `json:"metadata"`
}

// LogValue implements slog.LogValuer: an identity record logs its email
// and metadata counts, never the user ID, an address, a name or metadata.
func (i ExportedIdentity) LogValue() slog.Value {
	return slog.GroupValue(
		slog.Bool("hasUser", i.ID != ""),
		slog.Int("emailAddresses", len(i.EmailAddresses)),
		slog.Time("createdAt", i.CreatedAt),
	)
}

// LogValue implements slog.LogValuer: a document logs its shape (format
// version, time, record counts per store, completeness), never the
// identity or a record.
func (d ExportDocument) LogValue() slog.Value {
	attrs := []slog.Attr{
		slog.Int("formatVersion", d.FormatVersion),
		slog.Time("exportedAt", d.ExportedAt),
		slog.Any("identity", d.Identity),
	}
	stores := make([]string, 0, len(d.Data))
	for name := range d.Data {
		stores = append(stores, name)
	}
	slices.Sort(stores)
	for _, name := range stores {
		n := 0
		for _, g := range d.Data[name] {
			n += len(g.Records)
		}
		attrs = append(attrs, slog.Int("records."+name, n))
	}
	attrs = append(attrs, slog.Bool("complete", d.Complete))
	return slog.GroupValue(attrs...)
}

// ExportedEmail is one email address in an export.
type ExportedEmail struct {
	Address  string `json:"emailAddress"`
	Verified bool   `json:"verified"`
	Primary  bool   `json:"primary"`
}

// ExportedUserMetadata is the identity's metadata in an export.
type ExportedUserMetadata struct {
	Public  map[string]any `json:"public"`
	Private map[string]any `json:"private,omitempty"`
}

// ExportGroup is a run of one category's records from one store.
type ExportGroup struct {
	Category string           `json:"category"`
	Records  []map[string]any `json:"records"`
}

// exportedIdentity maps u to its export form.
func (s *Service) exportedIdentity(u steward.User) ExportedIdentity {
	id := ExportedIdentity{
		ID:             u.ID,
		EmailAddresses: make([]ExportedEmail, 0, len(u.EmailAddresses)),
		ImageURL:       u.ImageURL,
		CreatedAt:      u.CreatedAt.UTC(),
		Metadata:       ExportedUserMetadata{Public: u.PublicMetadata},
	}
	if e, ok := u.PrimaryEmail(); ok {
		id.Email = e.Address
	}
	primary, _ := u.PrimaryEmail()
	for _, e := range u.EmailAddresses {
		id.EmailAddresses = append(id.EmailAddresses, ExportedEmail{Address: e.Address, Verified: e.Verified, Primary: e.ID == primary.ID})
	}
	if u.FirstName != "" {
		id.FirstName = &u.FirstName
	}
	if u.LastName != "" {
		id.LastName = &u.LastName
	}
	if !u.LastSignInAt.IsZero() {
		t := u.LastSignInAt.UTC()
		id.LastSignIn = &t
	}
	if id.Metadata.Public == nil {
		id.Metadata.Public = map[string]any{}
	}
	if s.privateMetadata {
		id.Metadata.Private = u.PrivateMetadata
		if id.Metadata.Private == nil {
			id.Metadata.Private = map[string]any{}
		}
	}
	return id
}

// Export writes userID's data to w as one JSON document (see
// ExportDocument), reading each store as it writes: memory stays flat
// whatever the number of records. Before writing anything it reads the
// user from the identity provider and writes a data_export audit event
// (actor: the principal in ctx, or SystemActor), preceded by a
// data_access event when the actor is another person (an administrator);
// if either fails nothing is written. An error after that leaves w
// holding an invalid, truncated document.
//
// A user whose erasure has begun is refused before anything is written
// (an error matching ErrFenced, and ErrErased once erased; see
// CheckFence). The fence is checked again before "complete" is written:
// an export that an erasure overlapped fails the same way, its document
// cut short, since the stores it had not read yet may have been erased.
//
// Errors wrap steward.ErrInvalidUserID, steward.ErrUserNotFound,
// ErrFenced, the audit logger's error, a store's error, or w's error;
// none contains the user ID.
func (s *Service) Export(ctx context.Context, userID string, w io.Writer) error {
	if err := s.checkExportFence(ctx, userID); err != nil {
		return err
	}
	u, err := s.exportUser(ctx, userID)
	if err != nil {
		return err
	}
	if err := s.logExport(ctx, userID, actorFrom(ctx), map[string]any{"mode": "inline"}); err != nil {
		return err
	}
	_, err = s.writeExport(ctx, "inline", "", u, w)
	return err
}

// checkExportFence validates userID and refuses a fenced or erased user.
// It comes before the identity is read: once erased, the user is gone
// from the provider, and the caller must learn ErrErased, not
// steward.ErrUserNotFound.
func (s *Service) checkExportFence(ctx context.Context, userID string) error {
	if err := steward.ValidateFor(s.idp, userID); err != nil {
		return fmt.Errorf("privacy: export: %w", err)
	}
	if err := s.CheckFence(ctx, userID); err != nil {
		return fmt.Errorf("privacy: export: %w", err)
	}
	return nil
}

// exportUser validates userID and reads the user.
func (s *Service) exportUser(ctx context.Context, userID string) (steward.User, error) {
	if err := steward.ValidateFor(s.idp, userID); err != nil {
		return steward.User{}, fmt.Errorf("privacy: export: %w", err)
	}
	u, err := s.idp.GetUser(ctx, userID)
	if err != nil {
		return steward.User{}, redactErr(fmt.Errorf("privacy: export: identity: %w", err), userID)
	}
	return u, nil
}

// logExport writes the data_export audit event, after a data_access
// event when a person other than the user exports them.
func (s *Service) logExport(ctx context.Context, userID, actor string, details map[string]any) error {
	if err := s.logAccess(ctx, userID, actor, "export", map[string]any{"mode": details["mode"]}); err != nil {
		return fmt.Errorf("privacy: export: %w", err)
	}
	stores := make([]any, len(s.stores))
	for i, st := range s.stores {
		stores[i] = st.Name()
	}
	details["stores"] = stores
	details["formatVersion"] = FormatVersion
	if err := s.logEvent(ctx, audit.DataExport, userID, actor, details); err != nil {
		return fmt.Errorf("privacy: export: %w", err)
	}
	return nil
}

// docWriter writes the export document through a buffer, remembering the
// first error so the writing code can stay linear.
type docWriter struct {
	bw  *bufio.Writer
	enc *json.Encoder
	err error
}

func (d *docWriter) raw(s string) {
	if d.err == nil {
		_, d.err = d.bw.WriteString(s)
	}
}

func (d *docWriter) value(v any) {
	if d.err == nil {
		d.err = d.enc.Encode(v)
	}
}

// writeDocument streams u's export document to w and returns how many
// records it wrote.
func (s *Service) writeDocument(ctx context.Context, u steward.User, w io.Writer) (int, error) {
	bw := bufio.NewWriterSize(w, 32<<10)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	d := &docWriter{bw: bw, enc: enc}
	d.raw(`{"formatVersion":`)
	d.value(FormatVersion)
	d.raw(`,"exportedAt":`)
	d.value(s.clock().Truncate(time.Second))
	d.raw(`,"identity":`)
	d.value(s.exportedIdentity(u))
	d.raw(`,"data":{`)
	n := 0
	for i, st := range s.stores {
		if i > 0 {
			d.raw(",")
		}
		d.value(st.Name())
		d.raw(":[")
		m, err := s.writeStore(ctx, d, st, u.ID)
		n += m
		if err != nil {
			return n, redactErr(fmt.Errorf("privacy: export: store %q: %w", st.Name(), err), u.ID)
		}
		d.raw("]")
	}
	if d.err == nil {
		// An erasure that opened while the stores were read may have
		// removed what they had not yielded yet: the document would
		// look complete without that data, so it is cut short instead.
		if err := s.CheckFence(ctx, u.ID); err != nil {
			return n, fmt.Errorf("privacy: export: %w", err)
		}
	}
	d.raw("},\"complete\":true}\n")
	if d.err == nil {
		d.err = bw.Flush()
	}
	if d.err != nil {
		return n, fmt.Errorf("privacy: export: writing: %w", d.err)
	}
	return n, nil
}

// writeStore writes one store's groups and returns how many records it
// wrote. It stops at the first store or write error.
func (s *Service) writeStore(ctx context.Context, d *docWriter, st DataStore, userID string) (int, error) {
	n := 0
	cat := ""
	open := false
	for rec, err := range st.Export(ctx, userID) {
		if err != nil {
			return n, err
		}
		if d.err != nil {
			return n, nil // reported by the caller
		}
		if !open || rec.Category != cat {
			if open {
				d.raw("]},")
			}
			d.raw(`{"category":`)
			d.value(rec.Category)
			d.raw(`,"records":[`)
			cat, open = rec.Category, true
		} else {
			d.raw(",")
		}
		data := s.sanitizer.Sanitize(rec).Data
		if data == nil {
			data = map[string]any{}
		}
		d.value(data)
		n++
	}
	if open {
		d.raw("]}")
	}
	return n, nil
}

// StartExport queues an export of userID and returns the request's ID at
// once. The export runs in the background into the BlobWriter (blob
// "<request ID>.json"), retried with backoff; the request then becomes
// completed (Location names the blob, ExpiresAt says when ExpireExports
// deletes it, WithExportTTL) or partial, and then the Notifier is told.
// Poll it with Request, download it with DownloadHandler. The
// data_export audit event is written when the export starts. A user has
// at most one pending export: while one is pending (or partial),
// StartExport returns its ID and queues nothing.
//
// A user whose erasure has begun is refused (ErrFenced, ErrErased), and
// so is an export that an erasure overlaps: its blob is deleted and the
// request cancelled instead of completed.
//
// It fails with ErrAsyncUnavailable without a BlobWriter, ErrClosed after
// Close, and errors wrapping steward.ErrInvalidUserID or
// steward.ErrUserNotFound before queuing anything.
func (s *Service) StartExport(ctx context.Context, userID string) (string, error) {
	if s.blobs == nil {
		return "", ErrAsyncUnavailable
	}
	if err := s.checkExportFence(ctx, userID); err != nil {
		return "", err
	}
	if _, err := s.exportUser(ctx, userID); err != nil {
		return "", err
	}
	for range 3 {
		if id, err := s.pendingExport(ctx, userID); err != nil || id != "" {
			return id, err
		}
		now := s.clock()
		req := Request{
			ID: newRequestID(), Kind: KindExport, UserID: userID, Actor: actorFrom(ctx),
			Regime: s.regime, Status: StatusPending, ReceivedAt: now, DueAt: s.regime.Deadline(now), UpdatedAt: now,
			Steps: []Step{{Name: exportStepName, Kind: StepExport, Status: StepPending}},
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return "", ErrClosed
		}
		s.bg.Add(1)
		s.mu.Unlock()
		err := s.requests.Create(ctx, req)
		if errors.Is(err, ErrActiveRequest) {
			s.bg.Done()
			continue // another call queued one first: return that
		}
		if err != nil {
			s.bg.Done()
			return "", redactErr(fmt.Errorf("privacy: export: saving request: %w", err), userID)
		}
		req.Version = 1
		s.tel.requestEntered(ctx, KindExport, StatusPending)
		go func() {
			defer s.bg.Done()
			_ = s.runExport(context.WithoutCancel(ctx), req, true)
		}()
		return req.ID, nil
	}
	return "", fmt.Errorf("privacy: export: saving request: %w", ErrConflict)
}

// pendingExport returns the ID of userID's pending or partial export, or
// "".
func (s *Service) pendingExport(ctx context.Context, userID string) (string, error) {
	for r, err := range s.requests.List(ctx, RequestFilter{Kind: KindExport, UserID: userID, Statuses: []Status{StatusPending, StatusPartial}, Limit: 1}) {
		if err != nil {
			return "", redactErr(fmt.Errorf("privacy: export: %w", err), userID)
		}
		return r.ID, nil
	}
	return "", nil
}

// runExport writes a queued export under a claim on its request (see
// run for wait), checkpoints the outcome, releases the claim and then
// notifies: by then the request is settled, so whoever is told can rely
// on its status. The fence is checked before and after the blob is
// written: an export that overlaps its user's erasure deletes what it
// wrote and ends cancelled, with an error matching ErrFenced.
func (s *Service) runExport(ctx context.Context, req Request, wait bool) error {
	if s.blobs == nil {
		return ErrAsyncUnavailable
	}
	outer := ctx
	c, err := s.claim(ctx, &req, wait)
	if errors.Is(err, errAlreadyCompleted) {
		return nil
	}
	if err != nil {
		return err
	}
	defer c.stop()
	ctx = c.ctx
	userID := req.UserID
	name := req.ID + ".json"
	attempts := 0
	logged := false
	var fenced error
	_, runErr := backoff.Retry(ctx, func() (struct{}, error) {
		attempts++
		if err := s.CheckFence(ctx, userID); err != nil {
			if errors.Is(err, ErrFenced) {
				fenced = err
				return struct{}{}, backoff.Permanent(err)
			}
			return struct{}{}, err
		}
		var u steward.User
		err := guard("export", func() (err error) { u, err = s.exportUser(ctx, userID); return err })
		if err != nil {
			if errors.Is(err, steward.ErrUserNotFound) || errors.Is(err, errPanicked) {
				return struct{}{}, backoff.Permanent(err)
			}
			return struct{}{}, err
		}
		if !logged {
			if err := s.logExport(ctx, userID, req.Actor, map[string]any{"mode": "queued", "requestId": req.ID}); err != nil {
				return struct{}{}, err
			}
			logged = true
		}
		wc, err := s.blobs.Create(ctx, name)
		if err != nil {
			return struct{}{}, fmt.Errorf("privacy: export: blob: %w", err)
		}
		if err := guard("export", func() error { _, err := s.writeExport(ctx, "queued", req.ID, u, wc); return err }); err != nil {
			_ = wc.Close()
			if errors.Is(err, ErrFenced) {
				fenced = err
				return struct{}{}, backoff.Permanent(s.dropBlob(ctx, name, err))
			}
			if errors.Is(err, errPanicked) {
				return struct{}{}, backoff.Permanent(s.dropBlob(ctx, name, err))
			}
			return struct{}{}, s.dropBlob(ctx, name, err)
		}
		if err := wc.Close(); err != nil {
			return struct{}{}, s.dropBlob(ctx, name, fmt.Errorf("privacy: export: blob: %w", err))
		}
		// Checked after writing: an erasure that opened before this
		// check deletes nothing this export wrote afterwards, so the
		// export deletes it itself.
		if err := s.CheckFence(ctx, userID); err != nil {
			if errors.Is(err, ErrFenced) {
				fenced = err
				return struct{}{}, backoff.Permanent(s.dropBlob(ctx, name, err))
			}
			return struct{}{}, s.dropBlob(ctx, name, err)
		}
		return struct{}{}, nil
	}, s.retryOptions()...)
	if ctx.Err() != nil {
		if c.lost() {
			return fmt.Errorf("privacy: export: request %q: %w", req.ID, ErrClaimLost)
		}
		return ctx.Err()
	}
	now := s.clock()
	raw := req.Clone()
	err = s.checkpoint(ctx, &req, c, func(r *Request) error {
		st := r.Step(exportStepName)
		if st == nil {
			r.Steps = append(r.Steps, Step{Name: exportStepName, Kind: StepExport})
			st = &r.Steps[len(r.Steps)-1]
		}
		st.Attempts += attempts
		st.UpdatedAt = now
		switch {
		case fenced != nil:
			st.Status, st.Error = StepFailed, "the user's erasure began"
			r.Status, r.Reason, r.CompletedAt, r.Location = StatusCancelled, "the user's erasure began", now, ""
			s.pseudonymize(r)
		case runErr != nil:
			st.Status, st.Error = StepFailed, redact(runErr.Error(), r.UserID)
			r.Status = StatusPartial
		default:
			st.Status, st.Error = StepDone, ""
			r.Status, r.CompletedAt, r.Location, r.ExpiresAt = StatusCompleted, now, name, now.Add(s.exportTTL)
			s.pseudonymize(r)
		}
		return nil
	})
	if errors.Is(err, ErrCancelled) {
		// An erasure (or Cancel) closed the request meanwhile.
		_ = s.dropBlob(ctx, name, nil)
		return fmt.Errorf("privacy: export: request %q: %w", req.ID, ErrCancelled)
	}
	if err != nil {
		if fenced != nil || runErr == nil {
			_ = s.dropBlob(ctx, name, nil)
		}
		return redactErr(err, userID)
	}
	c.stop()
	s.tel.requestEntered(ctx, KindExport, req.Status)
	if fenced != nil {
		return fmt.Errorf("privacy: export: request %q cancelled: %w", req.ID, fenced)
	}
	if s.notifier != nil {
		note := req.Clone()
		note.UserID, note.Actor = raw.UserID, raw.Actor
		note.ClaimedBy, note.ClaimExpires = "", time.Time{}
		_, _ = backoff.Retry(outer, func() (struct{}, error) {
			return struct{}{}, s.notifier.ExportDone(outer, note)
		}, s.retryOptions()...)
	}
	return nil
}

// dropBlob deletes blob name after cause stopped its export, and returns
// cause joined with the deletion's error.
func (s *Service) dropBlob(ctx context.Context, name string, cause error) error {
	if err := s.deleter.Delete(context.WithoutCancel(ctx), name); err != nil {
		return errors.Join(cause, fmt.Errorf("privacy: export: deleting blob %q: %w", name, err))
	}
	return cause
}

// closeExports deletes the blobs of userID's queued exports (found by
// the user ID and by its pseudonyms) and closes their requests: an open
// one is cancelled, a completed one expired; all are pseudonymised. It
// returns how many blobs it deleted.
func (s *Service) closeExports(ctx context.Context, userID, why string) (int, error) {
	if s.blobs == nil {
		return 0, nil
	}
	var reqs []Request
	for _, who := range append([]string{userID}, s.pseudo.Pseudonyms(userID)...) {
		for r, err := range s.requests.List(ctx, RequestFilter{Kind: KindExport, UserID: who}) {
			if err != nil {
				return 0, err
			}
			reqs = append(reqs, r)
		}
	}
	n := 0
	for _, r := range reqs {
		if r.Status == StatusCancelled || r.Status == StatusExpired && r.Pseudonymous() {
			continue // closed before; its blob went with it
		}
		name := r.Location
		if name == "" {
			name = r.ID + ".json"
		}
		if err := s.deleter.Delete(ctx, name); err != nil {
			return n, fmt.Errorf("deleting an export's blob: %w", err)
		}
		n++
		now := s.clock()
		err := s.checkpoint(ctx, &r, nil, func(x *Request) error {
			switch {
			case x.Status.Open():
				x.Status, x.Reason, x.CompletedAt = StatusCancelled, why, now
			case x.Status == StatusCompleted:
				x.Status, x.ExpiresAt = StatusExpired, now
			}
			x.Location = ""
			s.pseudonymize(x)
			return nil
		})
		if err != nil && !errors.Is(err, ErrCancelled) {
			return n, err
		}
	}
	return n, nil
}

// ExpireExports deletes the blobs of completed exports whose ExpiresAt
// (completion plus WithExportTTL) has passed and marks their requests
// expired; DownloadHandler then answers 410. It is a background duty:
// run it periodically, from any number of instances. It returns how many
// exports it expired and the errors of the others, joined.
func (s *Service) ExpireExports(ctx context.Context) (int, error) {
	if s.blobs == nil {
		return 0, nil
	}
	var due []Request
	for r, err := range s.requests.List(ctx, RequestFilter{Kind: KindExport, Statuses: []Status{StatusCompleted}, ExpiresBefore: s.clock()}) {
		if err != nil {
			return 0, fmt.Errorf("privacy: expire exports: %w", err)
		}
		due = append(due, r)
	}
	n := 0
	var errs []error
	for _, r := range due {
		name := r.Location
		if name == "" {
			name = r.ID + ".json"
		}
		if err := s.deleter.Delete(ctx, name); err != nil {
			errs = append(errs, fmt.Errorf("privacy: expire exports: request %q: %w", r.ID, err))
			continue
		}
		err := s.checkpoint(ctx, &r, nil, func(x *Request) error {
			if x.Status == StatusCompleted {
				x.Status, x.Location = StatusExpired, ""
				s.pseudonymize(x)
			}
			return nil
		})
		if err != nil && !errors.Is(err, ErrCancelled) {
			errs = append(errs, fmt.Errorf("privacy: expire exports: request %q: %w", r.ID, err))
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}

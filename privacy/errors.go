package privacy

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors, matched with errors.Is.
var (
	// ErrLegalHold is matched by the error Erase and Resume return when
	// the user is under a legal hold; nothing was erased.
	ErrLegalHold = errors.New("privacy: user is under legal hold")
	// ErrPartialDeletion is matched by the error Erase and Resume return
	// when a step failed after its retries; DeletionResult.Errors says
	// which, and the request is left partial for Resume.
	ErrPartialDeletion = errors.New("privacy: partial deletion")
	// ErrRequestNotFound reports that no request has the given ID.
	ErrRequestNotFound = errors.New("privacy: request not found")
	// ErrDuplicateRequest reports that a request with the ID exists.
	ErrDuplicateRequest = errors.New("privacy: duplicate request ID")
	// ErrActiveRequest reports that the user already has an open erasure
	// request.
	ErrActiveRequest = errors.New("privacy: user has an open erasure request")
	// ErrConflict reports that a request changed since it was read.
	ErrConflict = errors.New("privacy: request changed concurrently")
	// ErrInvalidRequest reports a request, filter or option with a bad
	// field; the message names it.
	ErrInvalidRequest = errors.New("privacy: invalid request")
	// ErrAlreadyExtended reports a second extension of a deadline.
	ErrAlreadyExtended = errors.New("privacy: deadline already extended")
	// ErrAsyncUnavailable reports StartExport on a Service without a
	// BlobWriter.
	ErrAsyncUnavailable = errors.New("privacy: no BlobWriter configured for queued exports")
	// ErrClosed reports a call after Service.Close.
	ErrClosed = errors.New("privacy: service closed")
	// ErrInvalidConfig reports a bad option to NewService; the message
	// names it.
	ErrInvalidConfig = errors.New("privacy: invalid configuration")
	// ErrFenced is matched when a write for a user is refused because an
	// erasure of that user has begun (or ended: see ErrErased). Consent
	// changes, exports, sessions and the application's own writes
	// (Service.CheckFence) are refused from then on. HTTP answers 409.
	ErrFenced = errors.New("privacy: the user is being erased")
	// ErrErased is matched when a write is refused because the user was
	// erased (the Ledger holds them). It also matches ErrFenced. HTTP
	// answers 410.
	ErrErased = fmt.Errorf("privacy: the user was erased: %w", ErrFenced)
	// ErrCancelled is matched by Erase and Resume of a request that was
	// cancelled (Service.Cancel), and by a queued export cancelled by an
	// erasure of its user.
	ErrCancelled = errors.New("privacy: request cancelled")
	// ErrScheduled is matched by Erase and Resume while the request's
	// grace period (WithGracePeriod) runs: nothing is erased before
	// Request.NotBefore, and the request may still be cancelled.
	ErrScheduled = errors.New("privacy: erasure scheduled after its grace period")
	// ErrForbidden is matched by Cancel when the principal in the context
	// may not cancel the request.
	ErrForbidden = errors.New("privacy: forbidden")
)

// Stable codes of StepError.Code: what went wrong, in words that never
// hold what a store, provider or service said. The values are part of
// the wire format.
const (
	CodeStoreFailed    = "store_failed"
	CodeIdentityFailed = "identity_failed"
	CodeExternalFailed = "external_failed"
	CodeExportsFailed  = "exports_failed"
	CodeFinalFailed    = "final_pass_failed"
	CodeLedgerFailed   = "ledger_failed"
	CodeAuditFailed    = "audit_failed"
	CodeNotRegistered  = "not_registered"
	CodeNotAttempted   = "not_attempted"
	CodeLegalHold      = "legal_hold"
	CodeInvalidUserID  = "invalid_user_id"
)

// codeText is the public sentence of each code, written in JSON bodies
// in place of the cause.
var codeText = map[string]string{
	CodeStoreFailed:    "erasing this store failed; the request is kept for a retry",
	CodeIdentityFailed: "deleting the account at the identity provider failed; the request is kept for a retry",
	CodeExternalFailed: "erasing the data at this service failed; the request is kept for a retry",
	CodeExportsFailed:  "deleting queued exports failed; the request is kept for a retry",
	CodeFinalFailed:    "the final pass over the stores failed; the request is kept for a retry",
	CodeLedgerFailed:   "recording the erasure in the ledger failed; the request is kept for a retry",
	CodeAuditFailed:    "the audit record could not be written; the request is kept for a retry",
	CodeNotRegistered:  "this step's store or service is not registered",
	CodeNotAttempted:   "not attempted: an earlier step failed",
	CodeLegalHold:      "the data is under a legal hold and was not erased",
	CodeInvalidUserID:  "the user ID is not one the identity provider accepts",
}

// stepCode is the code of a failure of a step of kind k.
func stepCode(k StepKind) string {
	switch k {
	case StepStore:
		return CodeStoreFailed
	case StepIdentity:
		return CodeIdentityFailed
	case StepExternal:
		return CodeExternalFailed
	case StepExports:
		return CodeExportsFailed
	case StepFinal:
		return CodeFinalFailed
	case StepLedger:
		return CodeLedgerFailed
	}
	return CodeAuditFailed
}

// StepError is one failed (or not attempted) step of an erasure, as
// reported in DeletionResult.Errors. Its JSON form is
// {"step": ..., "code": ..., "error": ..., "attempts": ...}, where
// "error" is the code's fixed public sentence: what a store or provider
// said (which may name a person, an email or a payment) stays in Message
// and in the RequestStore, never in a response body.
type StepError struct {
	// Step is the step's name (a DataStore's or ExternalService's name,
	// the identity provider's name, "audit", "ledger", "final_pass",
	// "exports" or "legal_hold").
	Step string
	// Code is the stable code of the failure (CodeStoreFailed, ...).
	Code string
	// Message says what went wrong, with the user ID redacted. It may
	// hold a store's or provider's words; it is for logs of operators.
	Message string
	// Attempts is how many calls were made in this run.
	Attempts int
	// Err is the underlying error, for errors.Is and errors.As, with the
	// user ID redacted at every level of its chain; not serialised.
	Err error
}

// Error returns "<step>: <message>".
func (e StepError) Error() string { return e.Step + ": " + e.Message }

// Unwrap returns the underlying error.
func (e StepError) Unwrap() error { return e.Err }

// stepErrorJSON is StepError's wire form.
type stepErrorJSON struct {
	Step     string `json:"step"`
	Code     string `json:"code"`
	Error    string `json:"error"`
	Attempts int    `json:"attempts"`
}

// MarshalJSON writes {"step", "code", "error", "attempts"}, "error"
// being the code's public sentence, never Message.
func (e StepError) MarshalJSON() ([]byte, error) {
	text := codeText[e.Code]
	if text == "" {
		text = "the step failed"
	}
	return json.Marshal(stepErrorJSON{Step: e.Step, Code: e.Code, Error: text, Attempts: e.Attempts})
}

// UnmarshalJSON reads the wire form; Message becomes the public
// sentence.
func (e *StepError) UnmarshalJSON(b []byte) error {
	var w stepErrorJSON
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*e = StepError{Step: w.Step, Code: w.Code, Message: w.Error, Attempts: w.Attempts}
	return nil
}

// redact replaces every occurrence of userID in msg, so that errors from
// stores and providers that name the user never reach a log, a response
// or the request store.
func redact(msg, userID string) string {
	if userID == "" {
		return msg
	}
	return strings.ReplaceAll(msg, userID, "[user]")
}

// redactedError stands for an error whose text named the user: its own
// message is redacted, and so is every error its Unwrap returns, so that
// walking the chain never reaches the raw text. errors.Is and errors.As
// still see the original chain.
type redactedError struct {
	err    error
	userID string
}

func (e *redactedError) Error() string { return redact(e.err.Error(), e.userID) }

// Unwrap returns the wrapped errors, each redacted too.
func (e *redactedError) Unwrap() []error {
	var inner []error
	switch u := e.err.(type) {
	case interface{ Unwrap() []error }:
		inner = u.Unwrap()
	case interface{ Unwrap() error }:
		if x := u.Unwrap(); x != nil {
			inner = []error{x}
		}
	}
	out := make([]error, 0, len(inner))
	for _, x := range inner {
		if x != nil {
			out = append(out, redactErr(x, e.userID))
		}
	}
	return out
}

// Is reports whether the original error matches target.
func (e *redactedError) Is(target error) bool {
	if r, ok := target.(*redactedError); ok {
		return r == e
	}
	return errors.Is(e.err, target)
}

// As finds target in the original chain.
func (e *redactedError) As(target any) bool { return errors.As(e.err, target) }

// redactErr returns err with userID removed from its message and from
// the message of every error in its chain, keeping errors.Is and
// errors.As working. An error whose chain never names the user is
// returned as it is.
func redactErr(err error, userID string) error {
	if err == nil || userID == "" {
		return err
	}
	if _, ok := err.(*redactedError); ok {
		return err
	}
	if !chainNames(err, userID) {
		return err
	}
	return &redactedError{err: err, userID: userID}
}

// chainNames reports whether the text of err or of any error in its
// chain contains userID.
func chainNames(err error, userID string) bool {
	if err == nil {
		return false
	}
	if strings.Contains(err.Error(), userID) {
		return true
	}
	switch u := err.(type) {
	case interface{ Unwrap() []error }:
		for _, x := range u.Unwrap() {
			if chainNames(x, userID) {
				return true
			}
		}
	case interface{ Unwrap() error }:
		return chainNames(u.Unwrap(), userID)
	}
	return false
}

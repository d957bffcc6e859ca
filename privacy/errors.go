package privacy

import (
	"errors"
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
)

// StepError is one failed (or not attempted) step of an erasure, as
// reported in DeletionResult.Errors. Its JSON form is
// {"step": ..., "error": ..., "attempts": ...}.
type StepError struct {
	// Step is the step's name (a DataStore's or ExternalService's name,
	// the identity provider's name, "audit" or "legal_hold").
	Step string `json:"step"`
	// Message says what went wrong, with the user ID redacted.
	Message string `json:"error"`
	// Attempts is how many calls were made in this run.
	Attempts int `json:"attempts"`
	// Err is the underlying error, for errors.Is and errors.As; not
	// serialised.
	Err error `json:"-"`
}

// Error returns "<step>: <message>".
func (e StepError) Error() string { return e.Step + ": " + e.Message }

// Unwrap returns the underlying error.
func (e StepError) Unwrap() error { return e.Err }

// redact replaces every occurrence of userID in msg, so that errors from
// stores and providers that name the user never reach a log, a response
// or the request store.
func redact(msg, userID string) string {
	if userID == "" {
		return msg
	}
	return strings.ReplaceAll(msg, userID, "[user]")
}

// redactedError keeps an error's chain but redacts its message.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// redactErr returns err with userID removed from its message, keeping
// errors.Is and errors.As working.
func redactErr(err error, userID string) error {
	if err == nil {
		return nil
	}
	msg := redact(err.Error(), userID)
	if msg == err.Error() {
		return err
	}
	return &redactedError{msg: msg, err: err}
}

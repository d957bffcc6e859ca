package clerkadapter

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/clerk/clerk-sdk-go/v2"

	"github.com/stewardlabs/steward/privacy"
)

// APIError is an error answer of the Clerk Backend API. It carries what
// callers need to react (the status and Clerk's error code) and what
// Clerk support needs to trace it, never the request's user ID, the
// secret key or Clerk's long message (which may quote identifiers).
type APIError struct {
	// Status is the HTTP status, such as 422.
	Status int
	// Code is Clerk's code for the first error, such as
	// "form_param_format_invalid"; empty when the body was not Clerk's
	// error JSON (a proxy's error page, say).
	Code string
	// Message is Clerk's short message for the first error, such as
	// "is invalid". It is not part of Error().
	Message string
	// TraceID is Clerk's trace ID for the request (the Clerk-Trace-Id
	// header), for support requests.
	TraceID string
	// RetryAfter is the wait the server asked for with Retry-After, or 0.
	RetryAfter time.Duration
}

// Error reports the status, code and trace ID.
func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Clerk API answered %d %s", e.Status, http.StatusText(e.Status))
	if e.Code != "" {
		fmt.Fprintf(&b, " (%s)", e.Code)
	}
	if e.TraceID != "" {
		fmt.Fprintf(&b, ", trace %s", e.TraceID)
	}
	return b.String()
}

// Temporary reports whether retrying the request later may succeed:
// 429 Too Many Requests and 5xx answers.
func (e *APIError) Temporary() bool {
	return e.Status == http.StatusTooManyRequests || e.Status >= 500
}

// Throttled reports whether Clerk refused the call for exceeding a rate
// limit (429) and the Retry-After it sent. It makes an APIError a
// privacy.Throttler, so that a job engine driving an erasure waits as
// long as Clerk asked instead of counting a failed attempt.
func (e *APIError) Throttled() (time.Duration, bool) {
	return e.RetryAfter, e.Status == http.StatusTooManyRequests
}

var _ privacy.Throttler = (*APIError)(nil)

// throttledErr finds a 429 APIError in err's chain and its Retry-After.
func throttledErr(err error) (time.Duration, bool) {
	var apiErr *APIError
	if errors.As(err, &apiErr) {
		return apiErr.Throttled()
	}
	return 0, false
}

// notFound reports whether err is Clerk's answer for a missing resource.
// A 404 without Clerk's code (a wrong base URL, say) does not count, so
// that a misconfiguration is never mistaken for a deleted user.
func notFound(err error) bool {
	var e *APIError
	return errors.As(err, &e) && e.Status == http.StatusNotFound && e.Code == "resource_not_found"
}

// attempt is what the observing transport records about one HTTP
// exchange; it travels in the request's context.
type attempt struct {
	status     int
	retryAfter time.Duration
	traceID    string
}

type attemptKey struct{}

// observer is an http.RoundTripper that records the status and headers
// of each answer, which the SDK's errors do not always keep (a non-JSON
// error body becomes a bare error string).
type observer struct {
	next http.RoundTripper
	now  func() time.Time
}

func (o *observer) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := o.next.RoundTrip(req)
	if a, ok := req.Context().Value(attemptKey{}).(*attempt); ok && resp != nil {
		a.status = resp.StatusCode
		a.traceID = resp.Header.Get("Clerk-Trace-Id")
		a.retryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), o.now())
	}
	return resp, err
}

// parseRetryAfter reads a Retry-After header: delay-seconds or an
// HTTP-date. It returns 0 when absent or malformed.
func parseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if secs, err := strconv.Atoi(strings.TrimSpace(v)); err == nil {
		if secs < 0 {
			return 0
		}
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// do runs call with retries: 429 (waiting at least Retry-After), 5xx,
// network errors and attempt timeouts are retried with exponential
// backoff and jitter, up to maxAttempts and never past ctx; anything
// else fails at once. The error it returns names op, wraps the context's
// error or an *APIError, and never contains the request URL.
func (p *Provider) do(ctx context.Context, op string, call func(ctx context.Context) error) error {
	b := &backoff.ExponentialBackOff{
		InitialInterval:     p.opts.initialBackoff,
		RandomizationFactor: 0.5,
		Multiplier:          2,
		MaxInterval:         p.opts.maxBackoff,
	}
	b.Reset()
	for n := 1; ; n++ {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("clerkadapter: %s: %w", op, err)
		}
		if p.limiter != nil {
			if err := p.limiter.wait(ctx); err != nil {
				return fmt.Errorf("clerkadapter: %s: waiting for the rate limiter: %w", op, err)
			}
		}
		retry, err := p.attempt(ctx, call)
		if err == nil {
			return nil
		}
		if ctxErr := ctx.Err(); ctxErr != nil {
			return fmt.Errorf("clerkadapter: %s: %w", op, ctxErr)
		}
		if retry && privacy.RateLimitsDeferred(ctx) {
			if _, ok := throttledErr(err); ok {
				// The caller reschedules the work after Retry-After
				// (a job engine's snooze) instead of waiting here.
				return fmt.Errorf("clerkadapter: %s: rate limited: %w", op, err)
			}
		}
		if !retry || n >= p.opts.maxAttempts {
			if retry {
				return fmt.Errorf("clerkadapter: %s: giving up after %d attempts: %w", op, n, err)
			}
			return fmt.Errorf("clerkadapter: %s: %w", op, err)
		}
		wait := b.NextBackOff()
		var apiErr *APIError
		if errors.As(err, &apiErr) && apiErr.RetryAfter > 0 {
			// The server said when; add a little jitter so that many
			// clients told the same do not return at the same instant.
			wait = apiErr.RetryAfter + time.Duration(float64(wait)*0.1)
		}
		if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < wait {
			return fmt.Errorf("clerkadapter: %s: the context's deadline comes before the next retry: %w", op, err)
		}
		if !sleep(ctx, wait) {
			return fmt.Errorf("clerkadapter: %s: %w", op, ctx.Err())
		}
	}
}

// attempt makes one call and classifies its error: retry says whether to
// try again, and the error is safe to show (no URL, no body).
func (p *Provider) attempt(ctx context.Context, call func(ctx context.Context) error) (retry bool, err error) {
	a := &attempt{}
	actx, cancel := context.WithTimeout(context.WithValue(ctx, attemptKey{}, a), p.opts.attemptTimeout)
	defer cancel()
	err = call(actx)
	if err == nil {
		return false, nil
	}
	if a.status >= 400 {
		e := &APIError{Status: a.status, TraceID: a.traceID, RetryAfter: a.retryAfter}
		var sdkErr *clerk.APIErrorResponse
		if errors.As(err, &sdkErr) {
			if len(sdkErr.Errors) > 0 {
				e.Code = sdkErr.Errors[0].Code
				e.Message = sdkErr.Errors[0].Message
			}
			if e.TraceID == "" {
				e.TraceID = sdkErr.TraceID
			}
		}
		return e.Temporary(), e
	}
	if ctx.Err() == nil && errors.Is(actx.Err(), context.DeadlineExceeded) {
		return true, fmt.Errorf("attempt timed out after %v", p.opts.attemptTimeout)
	}
	if a.status != 0 {
		// A success status whose body did not decode.
		return false, fmt.Errorf("decoding the %d answer: %w", a.status, stripURL(err))
	}
	inner := stripURL(err)
	return retryableNetError(inner), inner
}

// stripURL removes the *url.Error layer, whose message holds the request
// URL and so the user ID.
func stripURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// retryableNetError reports whether a transport error may pass on retry:
// timeouts, refused or reset connections and cut-off answers, but not
// certificate or other configuration errors.
func retryableNetError(err error) bool {
	var certErr *tls.CertificateVerificationError
	var authErr x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	switch {
	case errors.As(err, &certErr), errors.As(err, &authErr), errors.As(err, &hostErr):
		return false
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return true
	}
	var ne net.Error
	return errors.As(err, &ne)
}

// sleep waits d or until ctx is done, reporting whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

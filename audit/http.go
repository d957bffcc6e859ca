package audit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/cenkalti/backoff/v5"
)

// IdempotencyKeyHeader carries a batch's identity on every attempt to
// send it, so that a collector can drop a batch it already stored.
const IdempotencyKeyHeader = "Idempotency-Key"

// HTTPOptions configures an HTTPSink. The zero value (or nil) means the
// defaults.
type HTTPOptions struct {
	// Client sends the requests; default a new http.Client. Timeout below
	// bounds each attempt regardless of the client's own timeout.
	Client *http.Client
	// Timeout bounds one attempt (default 10s).
	Timeout time.Duration
	// MaxElapsed bounds one Write, retries and waits included (default
	// 1 minute). The caller's context can end it earlier.
	MaxElapsed time.Duration
	// MaxTries bounds the attempts per Write; 0 means no bound but
	// MaxElapsed.
	MaxTries uint
	// InitialInterval and MaxInterval shape the exponential backoff
	// between attempts (defaults 100ms and 5s; randomised by ±50%).
	InitialInterval time.Duration
	MaxInterval     time.Duration
	// Header is added to every request, for example Authorization.
	Header http.Header
}

// HTTPSink POSTs each batch to a collector as one JSON document,
//
//	{"events":[<event>,...]}
//
// with every event in its wire form (Event.MarshalJSON) in sequence order,
// Content-Type application/json and an Idempotency-Key header that is the
// same on every attempt to send the batch: "<first sequence>-<last hash>".
// Any 2xx answer accepts the batch. Connection errors, timeouts, 408, 425,
// 429 and 5xx answers are retried with exponential backoff (honouring a
// Retry-After given in seconds); other answers fail the Write at once.
// It is not a Reader.
type HTTPSink struct {
	endpoint string
	redacted string
	client   *http.Client
	opts     HTTPOptions
}

var _ Sink = (*HTTPSink)(nil)

// NewHTTPSink returns a sink posting to endpoint, an absolute http or
// https URL.
func NewHTTPSink(endpoint string, opts *HTTPOptions) (*HTTPSink, error) {
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("audit: NewHTTPSink: endpoint must be an absolute http or https URL")
	}
	s := &HTTPSink{endpoint: endpoint, redacted: u.Scheme + "://" + u.Host + u.Path}
	if opts != nil {
		s.opts = *opts
		s.opts.Header = opts.Header.Clone()
	}
	if s.opts.Timeout <= 0 {
		s.opts.Timeout = 10 * time.Second
	}
	if s.opts.MaxElapsed <= 0 {
		s.opts.MaxElapsed = time.Minute
	}
	if s.opts.InitialInterval <= 0 {
		s.opts.InitialInterval = 100 * time.Millisecond
	}
	if s.opts.MaxInterval <= 0 {
		s.opts.MaxInterval = 5 * time.Second
	}
	s.client = s.opts.Client
	if s.client == nil {
		s.client = &http.Client{}
	}
	return s, nil
}

// Write sends events as one batch, retrying as described on HTTPSink. It
// returns nil once the collector accepted the batch, and otherwise the
// last error (which names the endpoint without credentials or query).
func (s *HTTPSink) Write(ctx context.Context, events []Event) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(events) == 0 {
		return nil
	}
	body := make([]byte, 0, 512*len(events))
	body = append(body, `{"events":[`...)
	for i := range events {
		if i > 0 {
			body = append(body, ',')
		}
		b, err := events[i].MarshalJSON()
		if err != nil {
			return err
		}
		body = append(body, b...)
	}
	body = append(body, "]}"...)
	key := strconv.FormatUint(events[0].Sequence, 10) + "-" + events[len(events)-1].Hash

	bo := backoff.NewExponentialBackOff()
	bo.InitialInterval = s.opts.InitialInterval
	bo.MaxInterval = s.opts.MaxInterval
	retry := []backoff.RetryOption{backoff.WithBackOff(bo), backoff.WithMaxElapsedTime(s.opts.MaxElapsed)}
	if s.opts.MaxTries > 0 {
		retry = append(retry, backoff.WithMaxTries(s.opts.MaxTries))
	}
	_, err := backoff.Retry(ctx, func() (struct{}, error) {
		return struct{}{}, s.post(ctx, body, key)
	}, retry...)
	if err != nil {
		return fmt.Errorf("audit: http sink %s: batch %d-%d: %w", s.redacted,
			events[0].Sequence, events[len(events)-1].Sequence, err)
	}
	return nil
}

func (s *HTTPSink) post(ctx context.Context, body []byte, key string) error {
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.endpoint, bytes.NewReader(body))
	if err != nil {
		return backoff.Permanent(errors.New("cannot build request"))
	}
	for k, v := range s.opts.Header {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(IdempotencyKeyHeader, key)
	resp, err := s.client.Do(req)
	if err != nil {
		// *url.Error repeats the full URL; keep only what went wrong.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("POST failed: %w", err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	switch c := resp.StatusCode; {
	case c >= 200 && c < 300:
		return nil
	case c == http.StatusRequestTimeout, c == http.StatusTooEarly, c == http.StatusTooManyRequests, c >= 500:
		err := fmt.Errorf("collector answered %d", c)
		if secs, perr := strconv.Atoi(resp.Header.Get("Retry-After")); perr == nil && secs >= 0 {
			return errors.Join(err, backoff.RetryAfter(secs))
		}
		return err
	default:
		return backoff.Permanent(fmt.Errorf("collector answered %d", c))
	}
}

package clerktest

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	svix "github.com/svix/svix-webhooks/go"
)

// newWebhookSecret returns a random Svix signing secret.
func newWebhookSecret() string {
	var b [24]byte
	_, _ = rand.Read(b[:])
	return "whsec_" + base64.StdEncoding.EncodeToString(b[:])
}

// WebhookSecret returns the Svix signing secret ("whsec_...") SignWebhook
// signs with, the value a webhook endpoint is configured with.
func (s *Server) WebhookSecret() string { return s.cfg.webhookSecret }

// SignWebhook returns the Svix headers (svix-id, svix-timestamp,
// svix-signature) that sign payload as message msgID sent at ts, the way
// Clerk's webhook deliveries are signed.
func (s *Server) SignWebhook(msgID string, ts time.Time, payload []byte) http.Header {
	wh, err := svix.NewWebhook(s.cfg.webhookSecret)
	if err != nil {
		panic(fmt.Sprintf("clerktest: webhook secret: %v", err))
	}
	sig, err := wh.Sign(msgID, ts, payload)
	if err != nil {
		panic(fmt.Sprintf("clerktest: signing a webhook: %v", err))
	}
	h := http.Header{}
	h.Set("svix-id", msgID)
	h.Set("svix-timestamp", strconv.FormatInt(ts.Unix(), 10))
	h.Set("svix-signature", sig)
	return h
}

// UserEventPayload returns the body Clerk sends for a user event:
// {"data": ..., "object": "event", "type": eventType, "timestamp": ms,
// "instance_id": ...}. For "user.deleted" the data is {"deleted": true,
// "id": userID, "object": "user"}; for other types it is the user as the
// Backend API serves it, which the server must hold.
func (s *Server) UserEventPayload(eventType, userID string) ([]byte, error) {
	var data any
	if eventType == "user.deleted" {
		data = map[string]any{"deleted": true, "id": userID, "object": "user"}
	} else {
		s.mu.Lock()
		r, ok := s.users[userID]
		if ok {
			data = r.wire()
		}
		s.mu.Unlock()
		if !ok {
			return nil, fmt.Errorf("clerktest: UserEventPayload(%q): the server holds no such user", eventType)
		}
	}
	return json.Marshal(map[string]any{
		"data":        data,
		"object":      "event",
		"type":        eventType,
		"timestamp":   s.cfg.now().UnixMilli(),
		"instance_id": "ins_clerktest",
	})
}

// NewWebhookRequest returns a POST to target carrying the user event
// (see UserEventPayload), signed as a new message sent now by the
// server's clock. It panics when the server does not hold the user of a
// "user.created" or "user.updated" event.
func (s *Server) NewWebhookRequest(target, eventType, userID string) *http.Request {
	payload, err := s.UserEventPayload(eventType, userID)
	if err != nil {
		panic(err)
	}
	req, err := http.NewRequest(http.MethodPost, target, bytes.NewReader(payload))
	if err != nil {
		panic(fmt.Sprintf("clerktest: NewWebhookRequest: %v", err))
	}
	req.Header = s.SignWebhook(NewID("msg_"), s.cfg.now(), payload)
	req.Header.Set("Content-Type", "application/json")
	return req
}

package clerkadapter

import (
	"errors"
	"testing"
)

// FuzzDecodeEvent checks that any signed body decodes to a well-formed
// event or an ErrWebhookPayload, and that a user event always names a
// valid Clerk user ID (it goes on to URLs and erasure).
func FuzzDecodeEvent(f *testing.F) {
	for _, seed := range []string{
		`{"data":{"id":"user_29w83sxmDNGwOuEthce5gg56FcC","object":"user","first_name":"Ada","email_addresses":[{"id":"idn_1","email_address":"a@example.com","verification":{"status":"verified"}}],"primary_email_address_id":"idn_1","public_metadata":{"role":"admin"},"private_metadata":{},"created_at":1654012591514,"updated_at":1654012591835},"object":"event","type":"user.created","timestamp":1654012591835,"instance_id":"ins_123"}`,
		`{"data":{"id":"user_29w83sxmDNGwOuEthce5gg56FcC","public_metadata":{"role":"user"}},"object":"event","type":"user.updated","timestamp":1654012824306}`,
		`{"data":{"deleted":true,"id":"user_29wBMCtzATuFJut8jO2VNTVekS4","object":"user"},"object":"event","type":"user.deleted","timestamp":1661861640000}`,
		`{"data":{"id":"sess_1"},"type":"session.created"}`,
		`{"type":"user.deleted","data":{"id":"user_1/../../x"}}`,
		`{"type":"user.updated","data":{"id":"user_1","public_metadata":"oops"}}`,
		`{"type":"user.created","data":null}`,
		`{"type":7}`,
		`[]`,
		``,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		e, err := decodeEvent(payload)
		if err != nil {
			if !errors.Is(err, ErrWebhookPayload) {
				t.Fatalf("error %v does not wrap ErrWebhookPayload", err)
			}
			if e.Type != "" || e.UserID != "" || e.User.ID != "" {
				t.Fatalf("an error came with a non-zero event %+v", e)
			}
			return
		}
		if e.Type == "" {
			t.Fatal("decoded an event without a type")
		}
		switch e.Type {
		case UserCreated, UserUpdated, UserDeleted:
			if err := validateID(e.UserID); err != nil {
				t.Fatalf("a %s event decoded with an invalid user ID: %v", e.Type, err)
			}
			if e.User.ID != e.UserID {
				t.Fatalf("User.ID %q and UserID %q differ", e.User.ID, e.UserID)
			}
		default:
			if e.UserID != "" {
				t.Fatalf("an ignored %s event has a user ID", e.Type)
			}
		}
	})
}

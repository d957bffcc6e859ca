package clerktest

import (
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// FuzzListQuery checks that any query string parses to a listing or to
// 422 errors that each name a parameter, never a panic.
func FuzzListQuery(f *testing.F) {
	for _, seed := range []string{
		"", "limit=10&offset=0", "order_by=-created_at&starting_after=user_1", "user_id=-user_1&user_id=%2Buser_2",
		"provider=oauth_google", "banned=maybe", "created_at_after=abc", "limit=501", "order_by=web3wallet",
		"query=%00&name_query=a+b", "last_active_at_since=-1",
	} {
		f.Add(seed, true)
	}
	f.Fuzz(func(t *testing.T, raw string, paging bool) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		lq, e := parseListQuery(q, paging)
		if e != nil {
			if e.status != 422 || len(e.errs) == 0 {
				t.Fatalf("query %q: status %d with %d errors", raw, e.status, len(e.errs))
			}
			for _, x := range e.errs {
				if x.Code == "" || x.Meta["param_name"] == nil {
					t.Fatalf("query %q: error %+v names no parameter", raw, x)
				}
			}
			return
		}
		if lq.limit < 1 || lq.limit > maxLimit || lq.offset < 0 {
			t.Fatalf("query %q: limit %d offset %d out of range", raw, lq.limit, lq.offset)
		}
		lq.match(&record{id: "user_1", emails: []identification{{value: "a@example.com"}}})
	})
}

// FuzzReadBody checks that any body decodes, or answers 400
// request_body_invalid or 422 form_param_unknown, never a panic.
func FuzzReadBody(f *testing.F) {
	for _, seed := range []string{"", "null", "{}", `{"public_metadata":{"a":1}}`, `{"x":1}`, `[1]`, `{"public_metadata":"s"}`, "{", `{"a":1}}`} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		r := httptest.NewRequest("PATCH", "/v1/users/user_1/metadata", strings.NewReader(raw))
		b, e := readBody(r, metadataParams...)
		if e != nil {
			switch {
			case e.status == 400 && e.errs[0].Code == "request_body_invalid":
			case e.status == 422 && e.errs[0].Code == "form_param_unknown":
			default:
				t.Fatalf("body %q: %d %+v", raw, e.status, e.errs)
			}
			return
		}
		_, _, _, _ = metadataObjects(b)
	})
}

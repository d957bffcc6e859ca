package clerktest_test

// These tests pin the fake to Clerk's documented Backend API. Each cites
// what it follows:
//   - spec: clerk/openapi-specs bapi/2025-04-10.yml, by path or schema;
//   - catalogue: clerk/clerk-docs data/api_errors.json, by entry name;
//   - limits: clerk/clerk-docs docs/guides/how-clerk-works/system-limits.mdx;
//   - tokens: clerk/clerk-docs docs/guides/sessions/session-tokens.mdx.

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/clerk/clerk-sdk-go/v2"
	"github.com/clerk/clerk-sdk-go/v2/user"
	"github.com/google/go-cmp/cmp"

	"github.com/stewardlabs/steward"
	"github.com/stewardlabs/steward/clerkadapter/clerktest"
)

// answer is a raw Backend API answer.
type answer struct {
	status int
	header http.Header
	body   []byte
}

// code returns the code of the answer's first error, or "".
func (a answer) code() string {
	var e struct {
		Errors []struct {
			Code        string         `json:"code"`
			Message     string         `json:"message"`
			LongMessage string         `json:"long_message"`
			Meta        map[string]any `json:"meta"`
		} `json:"errors"`
	}
	if json.Unmarshal(a.body, &e) != nil || len(e.Errors) == 0 {
		return ""
	}
	return e.Errors[0].Code
}

// errs returns the answer's errors as code, message, long message and
// param_name.
func (a answer) errs() [][4]string {
	var e struct {
		Errors []struct {
			Code        string         `json:"code"`
			Message     string         `json:"message"`
			LongMessage string         `json:"long_message"`
			Meta        map[string]any `json:"meta"`
		} `json:"errors"`
	}
	_ = json.Unmarshal(a.body, &e)
	var out [][4]string
	for _, x := range e.Errors {
		p, _ := x.Meta["param_name"].(string)
		out = append(out, [4]string{x.Code, x.Message, x.LongMessage, p})
	}
	return out
}

// call sends a raw request with the server's secret key.
func call(t *testing.T, srv *clerktest.Server, method, path, body string) answer {
	t.Helper()
	return callAuth(t, srv, method, path, body, "Bearer "+srv.SecretKey())
}

func callAuth(t *testing.T, srv *clerktest.Server, method, path, body, auth string) answer {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, srv.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := srv.ClientConfig().HTTPClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{status: resp.StatusCode, header: resp.Header, body: b}
}

func TestAuthenticationErrors(t *testing.T) {
	// catalogue: InvalidAuthorizationHeaderFormat, InvalidClerkSecretKey
	// (auth.go). A missing header is not documented; the fake answers
	// InvalidAuthentication.
	srv := newServer(t)
	tests := []struct {
		name, auth string
		want       [4]string
	}{
		{"no Authorization header", "", [4]string{"authentication_invalid", "Invalid authentication",
			"Unable to authenticate the request, you need to supply an active session", ""}},
		{"the key without Bearer", srv.SecretKey(), [4]string{"authorization_header_format_invalid", "Invalid Authorization header format",
			"Invalid Authorization header format. Must be 'Bearer <YOUR_API_KEY>'", ""}},
		{"another scheme", "Basic " + srv.SecretKey(), [4]string{"authorization_header_format_invalid", "Invalid Authorization header format",
			"Invalid Authorization header format. Must be 'Bearer <YOUR_API_KEY>'", ""}},
		{"a wrong key", "Bearer sk_test_wrong", [4]string{"clerk_key_invalid",
			"The provided Clerk Secret Key is invalid. Make sure that your Clerk Secret Key is correct.",
			"The provided Clerk Secret Key is invalid. Make sure that your Clerk Secret Key is correct.", ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := callAuth(t, srv, http.MethodGet, "/v1/users", "", tt.auth)
			if a.status != http.StatusUnauthorized {
				t.Errorf("status %d, want 401", a.status)
			}
			if diff := cmp.Diff([][4]string{tt.want}, a.errs()); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}
	// Through the SDK, a wrong key is a typed clerk_key_invalid.
	cfg := srv.ClientConfig()
	cfg.Key = clerk.String("sk_test_wrong")
	_, err := user.NewClient(cfg).Get(t.Context(), "user_1")
	if e := apiError(t, err); e.HTTPStatusCode != http.StatusUnauthorized || e.Errors[0].Code != "clerk_key_invalid" {
		t.Errorf("SDK with a wrong key: %+v, want 401 clerk_key_invalid", e)
	}
}

func TestUserNotFoundAnswer(t *testing.T) {
	// catalogue: UserNotFound (users.go): "No user was found with id
	// <userID>"; spec: 404 ResourceNotFound of paths./users/{user_id}.
	srv := newServer(t)
	for _, r := range []struct{ method, path, body string }{
		{http.MethodGet, "/v1/users/user_missing", ""},
		{http.MethodPatch, "/v1/users/user_missing", `{"first_name":"x"}`},
		{http.MethodDelete, "/v1/users/user_missing", ""},
		{http.MethodPatch, "/v1/users/user_missing/metadata", `{}`},
		{http.MethodPut, "/v1/users/user_missing/metadata", `{}`},
		{http.MethodPost, "/v1/users/user_missing/ban", ""},
	} {
		a := call(t, srv, r.method, r.path, r.body)
		want := [][4]string{{"resource_not_found", "not found", "No user was found with id user_missing", ""}}
		if a.status != http.StatusNotFound || !cmp.Equal(want, a.errs()) {
			t.Errorf("%s %s: %d %v, want 404 %v", r.method, r.path, a.status, a.errs(), want)
		}
	}
	// An unknown path is catalogue ResourceNotFound: "Resource not found".
	a := call(t, srv, http.MethodGet, "/v1/nothing_here", "")
	if a.status != http.StatusNotFound || !cmp.Equal([][4]string{{"resource_not_found", "not found", "Resource not found", ""}}, a.errs()) {
		t.Errorf("unknown path: %d %v", a.status, a.errs())
	}
}

func TestEverySDKUserEndpointIsServed(t *testing.T) {
	// Every method of clerk-sdk-go v2.4.2 user.Client reaches a served
	// path of the spec (paths./users/...), never the unknown-path 404.
	srv := newServer(t)
	ctx := t.Context()
	users := user.NewClient(srv.ClientConfig())
	u := srv.AddUser(steward.User{EmailAddresses: []steward.EmailAddress{{Address: "ada@example.com", Verified: true}}},
		clerktest.UserWeb3Wallets("0x52908400098527886E0F7030069857D2E4169EE7"),
		clerktest.UserExternalAccount("oauth_google", "g-1"),
		clerktest.UserOrganization("org_1", "org:admin"),
		clerktest.UserPassword("correct horse"))
	cu, err := users.Get(ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	walletID, accountID := cu.Web3Wallets[0].ID, cu.ExternalAccounts[0].ID

	steps := []struct {
		name string
		run  func() error
		// wantStatus is 0 for success, else the documented error status.
		wantStatus int
	}{
		{"Create", func() error {
			_, err := users.Create(ctx, &user.CreateParams{EmailAddresses: &[]string{"bob@example.com"}})
			return err
		}, 0},
		{"Get", func() error { _, err := users.Get(ctx, u.ID); return err }, 0},
		{"Update", func() error {
			_, err := users.Update(ctx, u.ID, &user.UpdateParams{FirstName: clerk.String("Ada")})
			return err
		}, 0},
		{"UpdateProfileImage", func() error {
			_, err := users.UpdateProfileImage(ctx, u.ID, &user.UpdateProfileImageParams{File: nopFile{strings.NewReader("PNG")}})
			return err
		}, 0},
		{"DeleteProfileImage", func() error { _, err := users.DeleteProfileImage(ctx, u.ID); return err }, 0},
		{"UpdateMetadata", func() error {
			_, err := users.UpdateMetadata(ctx, u.ID, &user.UpdateMetadataParams{PublicMetadata: raw(`{"a":1}`)})
			return err
		}, 0},
		{"List", func() error { _, err := users.List(ctx, &user.ListParams{}); return err }, 0},
		{"Count", func() error { _, err := users.Count(ctx, &user.ListParams{}); return err }, 0},
		{"ListOAuthAccessTokens", func() error {
			list, err := users.ListOAuthAccessTokens(ctx, &user.ListOAuthAccessTokensParams{ID: u.ID, Provider: "oauth_google"})
			if err == nil && (list.TotalCount != 1 || len(list.OAuthAccessTokens) != 1) {
				t.Errorf("ListOAuthAccessTokens = %+v, want the one Google account's token", list)
			}
			return err
		}, 0},
		{"DeleteMFA", func() error { _, err := users.DeleteMFA(ctx, &user.DeleteMFAParams{ID: u.ID}); return err }, 0},
		{"Ban", func() error { _, err := users.Ban(ctx, u.ID); return err }, 0},
		{"Unban", func() error { _, err := users.Unban(ctx, u.ID); return err }, 0},
		{"Lock", func() error { _, err := users.Lock(ctx, u.ID); return err }, 0},
		{"Unlock", func() error { _, err := users.Unlock(ctx, u.ID); return err }, 0},
		{"ListOrganizationMemberships", func() error {
			list, err := users.ListOrganizationMemberships(ctx, u.ID, &user.ListOrganizationMembershipsParams{})
			if err == nil && (list.TotalCount != 1 || list.OrganizationMemberships[0].Organization.ID != "org_1") {
				t.Errorf("ListOrganizationMemberships = %+v, want org_1", list)
			}
			return err
		}, 0},
		{"ListOrganizationInvitations", func() error {
			_, err := users.ListOrganizationInvitations(ctx, &user.ListOrganizationInvitationsParams{UserID: u.ID})
			return err
		}, 0},
		{"DeletePasskey of a passkey the user does not have", func() error {
			_, err := users.DeletePasskey(ctx, u.ID, "idn_nopasskey")
			return err
		}, http.StatusNotFound},
		{"DeleteWeb3Wallet", func() error { _, err := users.DeleteWeb3Wallet(ctx, u.ID, walletID); return err }, 0},
		{"DeleteTOTP", func() error { _, err := users.DeleteTOTP(ctx, u.ID); return err }, 0},
		{"DeleteBackupCode", func() error { _, err := users.DeleteBackupCode(ctx, u.ID); return err }, 0},
		{"DeleteExternalAccount", func() error {
			_, err := users.DeleteExternalAccount(ctx, &user.DeleteExternalAccountParams{UserID: u.ID, ID: accountID})
			return err
		}, 0},
		{"VerifyPassword", func() error {
			res, err := users.VerifyPassword(ctx, &user.VerifyPasswordParams{UserID: u.ID, Password: "correct horse"})
			if err == nil && !res.Verified {
				t.Error("VerifyPassword of the right password: not verified")
			}
			return err
		}, 0},
		{"VerifyPassword of a wrong password", func() error {
			_, err := users.VerifyPassword(ctx, &user.VerifyPasswordParams{UserID: u.ID, Password: "wrong"})
			return err
		}, http.StatusUnprocessableEntity},
		{"Delete", func() error { _, err := users.Delete(ctx, u.ID); return err }, 0},
	}
	for _, st := range steps {
		err := st.run()
		if st.wantStatus == 0 {
			if err != nil {
				t.Errorf("%s: %v", st.name, err)
			}
			continue
		}
		if e := apiError(t, err); e.HTTPStatusCode != st.wantStatus {
			t.Errorf("%s: status %d, want %d", st.name, e.HTTPStatusCode, st.wantStatus)
		}
	}
	for _, r := range srv.Requests() {
		if r.Status == http.StatusNotFound && !strings.Contains(r.Path, "/passkeys/") {
			t.Errorf("%s %s answered 404: not served", r.Method, r.Path)
		}
	}
}

// nopFile is a multipart.File over a reader.
type nopFile struct{ *strings.Reader }

func (nopFile) Close() error { return nil }

func TestUpdateUser(t *testing.T) {
	// spec: paths./users/{user_id}.patch (UpdateUser).
	srv := newServer(t)
	users := user.NewClient(srv.ClientConfig())
	ctx := t.Context()
	u := srv.AddUser(steward.User{
		EmailAddresses: []steward.EmailAddress{{ID: "idn_a", Address: "a@example.com", Verified: true}, {ID: "idn_b", Address: "b@example.com", Verified: true}, {ID: "idn_c", Address: "c@example.com"}},
		PublicMetadata: map[string]any{"role": "admin", "keep": "gone after a replace"},
	})
	got, err := users.Update(ctx, u.ID, &user.UpdateParams{
		FirstName: clerk.String("Ada"), Username: clerk.String("ada"), ExternalID: clerk.String("ext-1"),
		PrimaryEmailAddressID: clerk.String("idn_b"),
		// Metadata given to this endpoint replaces the stored object.
		PublicMetadata: raw(`{"role":"user"}`),
	})
	if err != nil {
		t.Fatal(err)
	}
	if *got.FirstName != "Ada" || *got.Username != "ada" || *got.ExternalID != "ext-1" || *got.PrimaryEmailAddressID != "idn_b" || string(got.PublicMetadata) != `{"role":"user"}` {
		t.Errorf("after Update: %+v, public %s", got, got.PublicMetadata)
	}
	// "The ID of the email address to set as primary. It must be
	// verified, and present on the current user."
	for _, tt := range []struct{ id, code string }{{"idn_c", "form_verification_needed"}, {"idn_nope", "form_resource_not_found"}} {
		a := call(t, srv, http.MethodPatch, "/v1/users/"+u.ID, `{"primary_email_address_id":"`+tt.id+`"}`)
		if a.status != http.StatusUnprocessableEntity || a.code() != tt.code {
			t.Errorf("primary %s: %d %s, want 422 %s", tt.id, a.status, a.code(), tt.code)
		}
	}
	// "You can remove a user's username by setting the username attribute
	// to null or the blank string".
	a := call(t, srv, http.MethodPatch, "/v1/users/"+u.ID, `{"username":null}`)
	var w map[string]any
	_ = json.Unmarshal(a.body, &w)
	if a.status != http.StatusOK || w["username"] != nil {
		t.Errorf("username null: %d %s", a.status, a.body)
	}
	// sign_out_of_other_sessions "can only be used when providing a
	// password".
	a = call(t, srv, http.MethodPatch, "/v1/users/"+u.ID, `{"sign_out_of_other_sessions":true}`)
	if a.status != http.StatusUnprocessableEntity || a.code() != "form_conditional_param_missing" {
		t.Errorf("sign_out_of_other_sessions without password: %d %s", a.status, a.body)
	}
	stored, _ := srv.User(u.ID)
	if stored.PrimaryEmailID != "idn_b" {
		t.Errorf("a rejected update changed the user: primary %q", stored.PrimaryEmailID)
	}
}

func TestMetadataEndpoints(t *testing.T) {
	// spec: paths./users/{user_id}/metadata.patch (merge) and .put
	// (replace "the supplied metadata fields entirely ... Fields omitted
	// from the request body are left unchanged").
	srv := newServer(t)
	u := srv.AddUser(steward.User{
		PublicMetadata:  map[string]any{"role": "admin", "profile": map[string]any{"theme": "dark", "lang": "en"}},
		PrivateMetadata: map[string]any{"stripe": "cus_1"},
	})
	a := call(t, srv, http.MethodPatch, "/v1/users/"+u.ID+"/metadata", `{"public_metadata":{"profile":{"theme":null,"tz":"UTC"}}}`)
	if a.status != http.StatusOK {
		t.Fatalf("PATCH: %d %s", a.status, a.body)
	}
	got, _ := srv.User(u.ID)
	if diff := cmp.Diff(map[string]any{"role": "admin", "profile": map[string]any{"lang": "en", "tz": "UTC"}}, got.PublicMetadata); diff != "" {
		t.Errorf("after the merge (-want +got):\n%s", diff)
	}
	a = call(t, srv, http.MethodPut, "/v1/users/"+u.ID+"/metadata", `{"public_metadata":{"role":"user"}}`)
	if a.status != http.StatusOK {
		t.Fatalf("PUT: %d %s", a.status, a.body)
	}
	got, _ = srv.User(u.ID)
	if diff := cmp.Diff(map[string]any{"role": "user"}, got.PublicMetadata); diff != "" {
		t.Errorf("after the replace (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]any{"stripe": "cus_1"}, got.PrivateMetadata); diff != "" {
		t.Errorf("PUT changed a field it was not given (-want +got):\n%s", diff)
	}
	// A metadata value that is not an object: catalogue
	// FailedToParseRequestBody.
	a = call(t, srv, http.MethodPut, "/v1/users/"+u.ID+"/metadata", `{"public_metadata":"admin"}`)
	want := [][4]string{{"form_param_value_invalid", "is invalid", "public_metadata is invalid. Received string, must be of type object.", "public_metadata"}}
	if a.status != http.StatusUnprocessableEntity || !cmp.Equal(want, a.errs()) {
		t.Errorf("non-object metadata: %d %v", a.status, a.errs())
	}
}

func TestUnknownBodyParameters(t *testing.T) {
	// spec: every request body schema says "additionalProperties: false";
	// catalogue: FormUnknownParameter (form_param_unknown).
	srv := newServer(t)
	u := srv.AddUser(steward.User{})
	for _, r := range []struct{ method, path, body string }{
		{http.MethodPost, "/v1/users", `{"email_address":["x@example.com"],"favourite_colour":"blue"}`},
		{http.MethodPatch, "/v1/users/" + u.ID, `{"favourite_colour":"blue"}`},
		{http.MethodPatch, "/v1/users/" + u.ID + "/metadata", `{"favourite_colour":"blue"}`},
		{http.MethodPut, "/v1/users/" + u.ID + "/metadata", `{"favourite_colour":"blue"}`},
		{http.MethodPost, "/v1/users/" + u.ID + "/ban", `{"favourite_colour":"blue"}`},
	} {
		a := call(t, srv, r.method, r.path, r.body)
		want := [][4]string{{"form_param_unknown", "is unknown", "favourite_colour is not a valid parameter for this request.", "favourite_colour"}}
		if a.status != http.StatusUnprocessableEntity || !cmp.Equal(want, a.errs()) {
			t.Errorf("%s %s: %d %v, want 422 %v", r.method, r.path, a.status, a.errs(), want)
		}
	}
	if n := len(srv.Users()); n != 1 {
		t.Errorf("a rejected create stored a user: %d users", n)
	}
}

func TestMalformedJSON(t *testing.T) {
	// catalogue: InvalidRequestBody (requests.go), 400 request_body_invalid.
	srv := newServer(t)
	u := srv.AddUser(steward.User{})
	for _, r := range []struct{ method, path, body string }{
		{http.MethodPost, "/v1/users", `{"email_address":`},
		{http.MethodPatch, "/v1/users/" + u.ID + "/metadata", `[1,2]`},
		{http.MethodPut, "/v1/users/" + u.ID + "/metadata", `not json`},
		{http.MethodPatch, "/v1/users/" + u.ID, `{"first_name":"a"}}`},
	} {
		a := call(t, srv, r.method, r.path, r.body)
		want := [][4]string{{"request_body_invalid", "Request body invalid", "The request body is invalid. Please consult the API documentation for more information.", ""}}
		if a.status != http.StatusBadRequest || !cmp.Equal(want, a.errs()) {
			t.Errorf("%s %s %q: %d %v", r.method, r.path, r.body, a.status, a.errs())
		}
	}
}

func TestUniqueness(t *testing.T) {
	// spec: POST /users and PATCH /users/{user_id}: email_address,
	// phone_number, web3_wallet, username and external_id "Must be unique
	// across your instance"; catalogue: FormIdentifierExists, whose short
	// message "That %s is taken. Please try another." is published on
	// clerk.com/docs/errors/forms. Clerk does not document the code for
	// a taken external_id; the fake uses the same.
	srv := newServer(t)
	srv.AddUser(steward.User{EmailAddresses: []steward.EmailAddress{{Address: "ada@example.com"}}},
		clerktest.UserUsername("ada"), clerktest.UserExternalID("ext-1"), clerktest.UserPhoneNumbers("+15555550100"))
	other := srv.AddUser(steward.User{})
	tests := []struct {
		name, body, param, msg string
	}{
		{"email address, any case", `{"email_address":["ADA@example.com"]}`, "email_address", "That email address is taken. Please try another."},
		{"username, any case", `{"username":"Ada"}`, "username", "That username is taken. Please try another."},
		{"external ID", `{"external_id":"ext-1"}`, "external_id", "That external id is taken. Please try another."},
		{"phone number", `{"phone_number":["+15555550100"]}`, "phone_number", "That phone number is taken. Please try another."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := call(t, srv, http.MethodPost, "/v1/users", tt.body)
			want := [][4]string{{"form_identifier_exists", tt.msg, tt.msg, tt.param}}
			if a.status != http.StatusUnprocessableEntity || !cmp.Equal(want, a.errs()) {
				t.Errorf("create: %d %v, want 422 %v", a.status, a.errs(), want)
			}
		})
	}
	for _, body := range []string{`{"username":"ADA"}`, `{"external_id":"ext-1"}`} {
		a := call(t, srv, http.MethodPatch, "/v1/users/"+other.ID, body)
		if a.status != http.StatusUnprocessableEntity || a.code() != "form_identifier_exists" {
			t.Errorf("update %s: %d %s", body, a.status, a.body)
		}
	}
	if n := len(srv.Users()); n != 2 {
		t.Errorf("%d users after rejected creates, want 2", n)
	}
}

func TestCreateUserParameters(t *testing.T) {
	// spec: paths./users.post (CreateUser): banned and locked ("the user
	// is created already banned/locked"), email_address_identification_status
	// ("Set an item to reserved to create the corresponding email address
	// reserved instead (unverified ...)"), created verified by default.
	srv := newServer(t)
	a := call(t, srv, http.MethodPost, "/v1/users", `{
		"email_address": ["ada@example.com", "ada@example.org"],
		"email_address_identification_status": ["verified", "reserved"],
		"phone_number": ["+15555550100"], "phone_number_identification_status": ["reserved"],
		"banned": true, "locked": true, "username": "ada", "external_id": "ext-1",
		"password": "correct horse", "created_at": "2024-03-01T09:30:00.123Z"}`)
	if a.status != http.StatusOK {
		t.Fatalf("create: %d %s", a.status, a.body)
	}
	var u clerk.User
	if err := json.Unmarshal(a.body, &u); err != nil {
		t.Fatal(err)
	}
	type email struct {
		Address  string
		Reserved bool
		Verified bool
	}
	var got []email
	for _, e := range u.EmailAddresses {
		got = append(got, email{e.EmailAddress, e.Reserved, e.Verification != nil && e.Verification.Status == "verified"})
	}
	if diff := cmp.Diff([]email{{"ada@example.com", false, true}, {"ada@example.org", true, false}}, got); diff != "" {
		t.Errorf("emails (-want +got):\n%s", diff)
	}
	if !u.PhoneNumbers[0].Reserved || !u.Banned || !u.Locked || !u.PasswordEnabled || *u.Username != "ada" || *u.ExternalID != "ext-1" ||
		u.CreatedAt != time.Date(2024, 3, 1, 9, 30, 0, 123e6, time.UTC).UnixMilli() {
		t.Errorf("created user %s", a.body)
	}

	for _, tt := range []struct {
		name, body string
		want       [4]string
	}{
		{"a status per address", `{"email_address":["a@example.com","b@example.com"],"email_address_identification_status":["reserved"]}`,
			[4]string{"form_param_array_length_mismatch", "length mismatch", "email_address_identification_status must contain exactly one item for each item in email_address.", "email_address_identification_status"}},
		{"a known status", `{"email_address":["a@example.com"],"email_address_identification_status":["pending"]}`,
			[4]string{"form_param_value_invalid", "is invalid", "pending does not match one of the allowed values for parameter email_address_identification_status", "email_address_identification_status"}},
		{"an email address", `{"email_address":["not-an-address"]}`,
			[4]string{"form_param_format_invalid", "is invalid", "email_address must be a valid email address.", "email_address"}},
		{"an E.164 phone number", `{"phone_number":["555-0100"]}`,
			[4]string{"form_param_format_invalid", "is invalid", "phone_number must be a valid phone number according to E.164 international standard.", "phone_number"}},
		{"an RFC 3339 created_at", `{"created_at":"yesterday"}`,
			[4]string{"form_param_invalid_time", "invalid format", "created_at must contain a datetime specified in RFC3339 format (e.g. `2022-10-20T10:00:27.645Z`).", "created_at"}},
		{"a password of 8 characters", `{"password":"short"}`,
			[4]string{"form_password_length_too_short", "Passwords must be 8 characters or more.", "Passwords must be 8 characters or more.", "password"}},
		{"a boolean banned", `{"banned":"yes"}`,
			[4]string{"form_param_value_invalid", "is invalid", "banned is invalid. Received string, must be of type boolean.", "banned"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a := call(t, srv, http.MethodPost, "/v1/users", tt.body)
			if a.status != http.StatusUnprocessableEntity || !cmp.Equal([][4]string{tt.want}, a.errs()) {
				t.Errorf("%d %v, want 422 %v", a.status, a.errs(), tt.want)
			}
		})
	}
}

func TestMetadataSizeLimit(t *testing.T) {
	// clerk-docs _partials/metadata-callout.mdx: "Metadata is limited to
	// 8KB maximum". The catalogue's FormParameterSizeTooLarge
	// (form_param_exceeds_allowed_size) gives no message; the fake's is
	// its own.
	srv := newServer(t)
	u := srv.AddUser(steward.User{PublicMetadata: map[string]any{"a": strings.Repeat("x", 5000)}})
	big := `{"b":"` + strings.Repeat("y", 4000) + `"}`
	tooBig := `{"b":"` + strings.Repeat("y", clerktest.MaxMetadataBytes) + `"}`
	for _, r := range []struct {
		name, method, path, body string
		want                     int
	}{
		{"a merge that stays under 8 KB", http.MethodPatch, "/metadata", `{"private_metadata":` + big + `}`, http.StatusOK},
		{"a merge past 8 KB", http.MethodPatch, "/metadata", `{"public_metadata":` + big + `}`, http.StatusUnprocessableEntity},
		{"a replace past 8 KB", http.MethodPut, "/metadata", `{"unsafe_metadata":` + tooBig + `}`, http.StatusUnprocessableEntity},
		{"an update past 8 KB", http.MethodPatch, "", `{"private_metadata":` + tooBig + `}`, http.StatusUnprocessableEntity},
		{"a replace under 8 KB", http.MethodPut, "/metadata", `{"public_metadata":` + big + `}`, http.StatusOK},
	} {
		a := call(t, srv, r.method, "/v1/users/"+u.ID+r.path, r.body)
		if a.status != r.want || r.want != http.StatusOK && a.code() != "form_param_exceeds_allowed_size" {
			t.Errorf("%s: %d %s, want %d", r.name, a.status, a.code(), r.want)
		}
	}
	a := call(t, srv, http.MethodPost, "/v1/users", `{"public_metadata":`+tooBig+`}`)
	if a.status != http.StatusUnprocessableEntity || a.code() != "form_param_exceeds_allowed_size" {
		t.Errorf("create past 8 KB: %d %s", a.status, a.body)
	}
	got, _ := srv.User(u.ID)
	if _, ok := got.PublicMetadata["a"]; ok {
		t.Error("the replace under 8 KB did not replace")
	}
}

func TestLastActiveAtHasDayPrecision(t *testing.T) {
	// spec: components.schemas.User.last_active_at: "Unix timestamp of the
	// latest session activity, with day precision."
	srv := newServer(t)
	u := srv.AddUser(steward.User{LastActiveAt: time.Date(2024, 3, 4, 17, 45, 12, 345e6, time.UTC)})
	want := time.Date(2024, 3, 4, 0, 0, 0, 0, time.UTC)
	if !u.LastActiveAt.Equal(want) {
		t.Errorf("AddUser returned LastActiveAt %v, want %v", u.LastActiveAt, want)
	}
	got, err := user.NewClient(srv.ClientConfig()).Get(t.Context(), u.ID)
	if err != nil {
		t.Fatal(err)
	}
	if *got.LastActiveAt != want.UnixMilli() {
		t.Errorf("served last_active_at %d, want %d", *got.LastActiveAt, want.UnixMilli())
	}
}

func TestRequiredUserFieldsAreServed(t *testing.T) {
	// spec: components.schemas.User.required, EmailAddress.required,
	// PhoneNumber.required, Web3Wallet.required and
	// ExternalAccountWithVerification.required, served even where the
	// SDK's structs have no field for them.
	srv := newServer(t)
	u := srv.AddUser(steward.User{EmailAddresses: []steward.EmailAddress{{Address: "ada@example.com", Verified: true}}},
		clerktest.UserPhoneNumbers("+15555550100"), clerktest.UserWeb3Wallets("0x52908400098527886E0F7030069857D2E4169EE7"),
		clerktest.UserExternalAccount("oauth_google", "g-1"))
	a := call(t, srv, http.MethodGet, "/v1/users/"+u.ID, "")
	var got map[string]any
	if err := json.Unmarshal(a.body, &got); err != nil {
		t.Fatal(err)
	}
	required := map[string][]string{
		"": {"id", "object", "username", "first_name", "last_name", "has_image", "primary_email_address_id",
			"primary_phone_number_id", "primary_web3_wallet_id", "password_enabled", "two_factor_enabled", "totp_enabled",
			"backup_code_enabled", "email_addresses", "phone_numbers", "web3_wallets", "passkeys", "external_accounts",
			"saml_accounts", "enterprise_accounts", "public_metadata", "external_id", "last_sign_in_at", "banned",
			"locked", "lockout_expires_in_seconds", "verification_attempts_remaining", "created_at", "updated_at",
			"delete_self_enabled", "create_organization_enabled", "last_active_at", "mfa_enabled_at",
			"mfa_disabled_at", "legal_accepted_at"},
		"email_addresses":   {"object", "email_address", "verification", "linked_to", "reserved", "created_at", "updated_at"},
		"phone_numbers":     {"object", "phone_number", "verification", "linked_to", "reserved", "created_at", "updated_at"},
		"web3_wallets":      {"object", "web3_wallet", "verification", "created_at", "updated_at"},
		"external_accounts": {"object", "id", "provider", "identification_id", "provider_user_id", "approved_scopes", "email_address", "first_name", "last_name", "public_metadata", "created_at", "updated_at", "verification"},
	}
	for list, fields := range required {
		obj := got
		if list != "" {
			items, _ := got[list].([]any)
			if len(items) != 1 {
				t.Fatalf("%s = %v, want one entry", list, got[list])
			}
			obj = items[0].(map[string]any)
		}
		var missing []string
		for _, f := range fields {
			if _, ok := obj[f]; !ok {
				missing = append(missing, f)
			}
		}
		if len(missing) > 0 {
			t.Errorf("%q lacks required fields %v", list, missing)
		}
	}
}

func TestPerUserUpdateLimit(t *testing.T) {
	// limits: "Update a user's data or metadata — PATCH /v1/users/{user_id},
	// PATCH /v1/users/{user_id}/metadata, and PUT
	// /v1/users/{user_id}/metadata — 10 requests per 10 seconds per user";
	// "Requests that have been rate limited will receive the Retry-After
	// response header".
	srv := newServer(t)
	a, b := srv.AddUser(steward.User{}), srv.AddUser(steward.User{})
	for i := range clerktest.UserUpdateLimit {
		method, path, body := http.MethodPatch, "/v1/users/"+a.ID+"/metadata", `{"public_metadata":{"n":`+strconv.Itoa(i)+`}}`
		switch i % 3 {
		case 1:
			method, path, body = http.MethodPut, "/v1/users/"+a.ID+"/metadata", `{"private_metadata":{"n":1}}`
		case 2:
			path, body = "/v1/users/"+a.ID, `{"first_name":"Ada"}`
		}
		if got := call(t, srv, method, path, body); got.status != http.StatusOK {
			t.Fatalf("update %d: %d %s", i+1, got.status, got.body)
		}
	}
	over := call(t, srv, http.MethodPatch, "/v1/users/"+a.ID, `{"first_name":"Ada"}`)
	secs, err := strconv.Atoi(over.header.Get("Retry-After"))
	if over.status != http.StatusTooManyRequests || over.code() != "too_many_requests" || err != nil || secs < 1 || secs > 10 {
		t.Errorf("update 11: %d %s, Retry-After %q; want 429 with 1-10 s", over.status, over.code(), over.header.Get("Retry-After"))
	}
	if got := call(t, srv, http.MethodPatch, "/v1/users/"+b.ID+"/metadata", `{"public_metadata":{"n":1}}`); got.status != http.StatusOK {
		t.Errorf("another user's update: %d, want 200 (the limit is per user)", got.status)
	}
	if got := call(t, srv, http.MethodGet, "/v1/users/"+a.ID, ""); got.status != http.StatusOK {
		t.Errorf("a read of the limited user: %d, want 200 (reads are not limited)", got.status)
	}
	off := newServer(t, clerktest.WithUserUpdateLimit(0, 0))
	c := off.AddUser(steward.User{})
	for i := range clerktest.UserUpdateLimit + 1 {
		if got := call(t, off, http.MethodPatch, "/v1/users/"+c.ID, `{"first_name":"x"}`); got.status != http.StatusOK {
			t.Fatalf("with the limit off, update %d: %d", i+1, got.status)
		}
	}
}

func TestInstanceLimitExemptsJWKS(t *testing.T) {
	// limits: "Get the JWKS of the instance — GET /v1/jwks — No rate limit".
	srv := newServer(t, clerktest.WithRateLimit(2, time.Minute))
	for range 2 {
		if a := call(t, srv, http.MethodGet, "/v1/users", ""); a.status != http.StatusOK {
			t.Fatalf("within the limit: %d", a.status)
		}
	}
	for i := range 5 {
		if a := call(t, srv, http.MethodGet, "/v1/jwks", ""); a.status != http.StatusOK {
			t.Errorf("JWKS %d past the instance limit: %d, want 200", i+1, a.status)
		}
	}
	if a := call(t, srv, http.MethodGet, "/v1/users/count", ""); a.status != http.StatusTooManyRequests || a.header.Get("Retry-After") == "" {
		t.Errorf("past the limit: %d, Retry-After %q", a.status, a.header.Get("Retry-After"))
	}
}

func TestInjected429AlwaysCarriesRetryAfter(t *testing.T) {
	// limits: "Requests that have been rate limited will receive the
	// Retry-After response header".
	srv := newServer(t)
	for _, tt := range []struct {
		retryAfter time.Duration
		want       string
	}{{0, "1"}, {-time.Second, "1"}, {100 * time.Millisecond, "1"}, {2500 * time.Millisecond, "3"}} {
		srv.FailNext(1, http.StatusTooManyRequests, tt.retryAfter)
		a := call(t, srv, http.MethodGet, "/v1/users", "")
		if a.status != http.StatusTooManyRequests || a.header.Get("Retry-After") != tt.want {
			t.Errorf("FailNext(429, %v): %d Retry-After %q, want %q", tt.retryAfter, a.status, a.header.Get("Retry-After"), tt.want)
		}
	}
}

// listIDs lists through the SDK and returns the IDs in order.
func listIDs(t *testing.T, users *user.Client, p user.ListParams) []string {
	t.Helper()
	list, err := users.List(t.Context(), &p)
	if err != nil {
		t.Fatalf("List(%+v): %v", p, err)
	}
	ids := []string{}
	for _, u := range list.Users {
		ids = append(ids, u.ID)
	}
	return ids
}

// rawList lists with a raw query and returns the IDs.
func rawList(t *testing.T, srv *clerktest.Server, q url.Values) ([]string, answer) {
	t.Helper()
	a := call(t, srv, http.MethodGet, "/v1/users?"+q.Encode(), "")
	if a.status != http.StatusOK {
		return nil, a
	}
	var us []struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(a.body, &us); err != nil {
		t.Fatal(err)
	}
	ids := []string{}
	for _, u := range us {
		ids = append(ids, u.ID)
	}
	return ids, a
}

// filterFixture adds five users, each different in every filtered field,
// created a day apart (user 0 oldest).
func filterFixture(srv *clerktest.Server) []steward.User {
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	people := []struct {
		first, last, email, phone, username, wallet, ext, org, provider, providerID string
		banned                                                                      bool
		signIn                                                                      int
	}{
		{"Ada", "Lovelace", "ada@example.com", "+15555550100", "ada", "0x1111111111111111111111111111111111111111", "ext-ada", "org_math", "oauth_google", "g-ada", false, 3},
		{"Bob", "Byron", "bob@example.org", "+15555550101", "bobby", "0x2222222222222222222222222222222222222222", "ext-bob", "org_poetry", "oauth_github", "gh-bob", true, 0},
		{"Cara", "Lovelace", "cara@example.com", "+4420700000", "cara_l", "0x3333333333333333333333333333333333333333", "ext-cara", "org_math", "oauth_google", "g-cara", false, 5},
		{"Dan", "Quill", "DAN@Example.com", "+15555550199", "dquill", "0x4444444444444444444444444444444444444444", "", "", "", "", false, 1},
		{"Eve", "Adams", "eve@example.net", "+15555550177", "eve", "0x5555555555555555555555555555555555555555", "ext-eve", "org_poetry", "oauth_google", "g-eve", true, 0},
	}
	var out []steward.User
	for i, p := range people {
		u := steward.User{
			FirstName: p.first, LastName: p.last, CreatedAt: base.AddDate(0, 0, i), Banned: p.banned,
			EmailAddresses: []steward.EmailAddress{{Address: p.email, Verified: true}},
		}
		if p.signIn > 0 {
			u.LastSignInAt = base.AddDate(0, 0, 10+p.signIn)
			u.LastActiveAt = base.AddDate(0, 0, 20+p.signIn)
		}
		opts := []clerktest.UserOption{clerktest.UserPhoneNumbers(p.phone), clerktest.UserUsername(p.username), clerktest.UserWeb3Wallets(p.wallet)}
		if p.ext != "" {
			opts = append(opts, clerktest.UserExternalID(p.ext), clerktest.UserOrganization(p.org, "org:member"), clerktest.UserExternalAccount(p.provider, p.providerID))
		}
		out = append(out, srv.AddUser(u, opts...))
	}
	return out
}

func TestListFilters(t *testing.T) {
	// spec: paths./users.get and paths./users/count.get parameters.
	srv := newServer(t)
	us := filterFixture(srv)
	id := func(is ...int) []string {
		out := []string{}
		for _, i := range is {
			out = append(out, us[i].ID)
		}
		return out
	}
	ms := func(days int) string {
		return strconv.FormatInt(time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, days).UnixMilli(), 10)
	}
	tests := []struct {
		name string
		q    url.Values
		want []string // oldest first
	}{
		{"email_address, exact and any case", url.Values{"email_address": {"dan@example.com", "bob@example.org"}}, id(1, 3)},
		{"phone_number", url.Values{"phone_number": {"+15555550100"}}, id(0)},
		{"username", url.Values{"username": {"bobby", "eve"}}, id(1, 4)},
		{"web3_wallet", url.Values{"web3_wallet": {"0x3333333333333333333333333333333333333333"}}, id(2)},
		{"external_id", url.Values{"external_id": {"ext-ada", "ext-eve"}}, id(0, 4)},
		{"user_id", url.Values{"user_id": {us[2].ID, us[0].ID}}, id(0, 2)},
		{"organization_id", url.Values{"organization_id": {"org_math"}}, id(0, 2)},
		{"provider and provider_user_id", url.Values{"provider": {"oauth_google"}, "provider_user_id": {"g-cara", "g-eve", "gh-bob"}}, id(2, 4)},
		{"query: a name, partially and in any case", url.Values{"query": {"LOVE"}}, id(0, 2)},
		{"query: part of an email address", url.Values{"query": {"example.net"}}, id(4)},
		{"query: part of a phone number", url.Values{"query": {"44207"}}, id(2)},
		{"query: part of a user ID", url.Values{"query": {us[3].ID[5:15]}}, id(3)},
		{"email_address_query", url.Values{"email_address_query": {"EXAMPLE.COM"}}, id(0, 2, 3)},
		{"phone_number_query", url.Values{"phone_number_query": {"5555550"}}, id(0, 1, 3, 4)},
		{"username_query", url.Values{"username_query": {"OB"}}, id(1)},
		{"name_query on the full name", url.Values{"name_query": {"a lovelace"}}, id(0, 2)},
		{"name_query on a last name", url.Values{"name_query": {"ada"}}, id(0, 4)},
		{"banned", url.Values{"banned": {"true"}}, id(1, 4)},
		{"not banned", url.Values{"banned": {"false"}}, id(0, 2, 3)},
		{"created_at_after is strict", url.Values{"created_at_after": {ms(3)}}, id(4)},
		{"created_at_before is strict", url.Values{"created_at_before": {ms(1)}}, id(0)},
		{"last_sign_in_at_after", url.Values{"last_sign_in_at_after": {ms(12)}}, id(0, 2)},
		{"last_sign_in_at_before skips users who never signed in", url.Values{"last_sign_in_at_before": {ms(14)}}, id(0, 3)},
		{"last_active_at_after", url.Values{"last_active_at_after": {ms(23)}}, id(2)},
		{"last_active_at_since, deprecated", url.Values{"last_active_at_since": {ms(23)}}, id(2)},
		{"last_active_at_before", url.Values{"last_active_at_before": {ms(23)}}, id(3)},
		{"filters combine", url.Values{"email_address_query": {"example.com"}, "last_sign_in_at_after": {ms(12)}, "organization_id": {"org_math"}}, id(0, 2)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := url.Values{"order_by": {"+created_at"}}
			for k, v := range tt.q {
				q[k] = v
			}
			got, a := rawList(t, srv, q)
			if a.status != 0 && a.status != http.StatusOK {
				t.Fatalf("list: %d %s", a.status, a.body)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("list (-want +got):\n%s", diff)
			}
			c := call(t, srv, http.MethodGet, "/v1/users/count?"+tt.q.Encode(), "")
			var count struct {
				Object     string `json:"object"`
				TotalCount int    `json:"total_count"`
			}
			_ = json.Unmarshal(c.body, &count)
			if c.status != http.StatusOK || count.Object != "total_count" || count.TotalCount != len(tt.want) {
				t.Errorf("count: %d %s, want total_count %d", c.status, c.body, len(tt.want))
			}
		})
	}
}

func TestListPrefixes(t *testing.T) {
	// spec: user_id, external_id and organization_id: "For each ..., the
	// + and - can be prepended to the ID, which denote whether the
	// respective ... should be included or excluded from the result set."
	srv := newServer(t)
	us := filterFixture(srv)
	id := func(is ...int) []string {
		out := []string{}
		for _, i := range is {
			out = append(out, us[i].ID)
		}
		return out
	}
	users := user.NewClient(srv.ClientConfig())
	for _, tt := range []struct {
		name string
		p    user.ListParams
		want []string
	}{
		{"+user_id includes", user.ListParams{UserIDs: []string{"+" + us[1].ID}}, id(1)},
		{"-user_id excludes", user.ListParams{UserIDs: []string{"-" + us[1].ID, "-" + us[3].ID}}, id(0, 2, 4)},
		{"+ and - together", user.ListParams{UserIDs: []string{us[0].ID, "+" + us[1].ID, "-" + us[1].ID}}, id(0)},
		{"-external_id excludes, keeping users without one", user.ListParams{ExternalIDs: []string{"-ext-ada"}}, id(1, 2, 3, 4)},
		{"+external_id includes", user.ListParams{ExternalIDs: []string{"+ext-bob"}}, id(1)},
		{"-organization_id excludes members", user.ListParams{OrganizationIDs: []string{"-org_math"}}, id(1, 3, 4)},
		{"+organization_id includes members", user.ListParams{OrganizationIDs: []string{"+org_poetry"}}, id(1, 4)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tt.p.OrderBy = clerk.String("created_at")
			if diff := cmp.Diff(tt.want, listIDs(t, users, tt.p)); diff != "" {
				t.Errorf("list (-want +got):\n%s", diff)
			}
		})
	}
	// A "+" sent unencoded in the query arrives as a space.
	a := call(t, srv, http.MethodGet, "/v1/users?order_by=created_at&user_id=+"+us[2].ID, "")
	if !bytes.Contains(a.body, []byte(us[2].ID)) || bytes.Contains(a.body, []byte(us[0].ID)) {
		t.Errorf("unencoded +: %s", a.body)
	}
}

func TestListOrderBy(t *testing.T) {
	// spec: order_by: "you can order the returned users by their
	// created_at, updated_at, email_address, web3wallet, first_name,
	// last_name, phone_number, username, last_active_at, last_sign_in_at
	// ... If you don't use + or -, then + is implied"; default
	// "-created_at". Users without the value sort last, ties by creation:
	// Clerk documents neither.
	srv := newServer(t)
	us := filterFixture(srv)
	// Make updated_at differ from creation order.
	for i, n := range []int{3, 1, 4, 0, 2} {
		a := call(t, srv, http.MethodPatch, "/v1/users/"+us[n].ID+"/metadata", `{"public_metadata":{"i":`+strconv.Itoa(i)+`}}`)
		if a.status != http.StatusOK {
			t.Fatal(a.status)
		}
		time.Sleep(2 * time.Millisecond)
	}
	id := func(is ...int) []string {
		out := []string{}
		for _, i := range is {
			out = append(out, us[i].ID)
		}
		return out
	}
	tests := []struct {
		orderBy string
		want    []string
	}{
		{"", id(4, 3, 2, 1, 0)},
		{"created_at", id(0, 1, 2, 3, 4)},
		{"-created_at", id(4, 3, 2, 1, 0)},
		{"+updated_at", id(3, 1, 4, 0, 2)},
		{"email_address", id(0, 1, 2, 3, 4)},
		{"-email_address", id(4, 3, 2, 1, 0)},
		{"web3wallet", id(0, 1, 2, 3, 4)},
		{"first_name", id(0, 1, 2, 3, 4)},
		{"last_name", id(4, 1, 0, 2, 3)},
		{"-last_name", id(3, 2, 0, 1, 4)},
		{"phone_number", id(0, 1, 4, 3, 2)},
		{"username", id(0, 1, 2, 3, 4)},
		{"last_active_at", id(3, 0, 2, 1, 4)},
		{"-last_sign_in_at", id(2, 0, 3, 4, 1)},
	}
	for _, tt := range tests {
		t.Run("order_by="+tt.orderBy, func(t *testing.T) {
			q := url.Values{}
			if tt.orderBy != "" {
				q.Set("order_by", tt.orderBy)
			}
			got, a := rawList(t, srv, q)
			if got == nil {
				t.Fatalf("%d %s", a.status, a.body)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
	// Only the first order_by counts.
	got, _ := rawList(t, srv, url.Values{"order_by": {"username", "-created_at"}})
	if diff := cmp.Diff(id(0, 1, 2, 3, 4), got); diff != "" {
		t.Errorf("two order_by (-want +got):\n%s", diff)
	}
	_, a := rawList(t, srv, url.Values{"order_by": {"favourite_colour"}})
	if a.status != http.StatusUnprocessableEntity || a.code() != "form_param_value_invalid" {
		t.Errorf("unknown order_by: %d %s", a.status, a.body)
	}
}

func TestStartingAfterCursor(t *testing.T) {
	// spec: starting_after: "the id of the last user on the previous
	// page. Returns the users that follow it. Requires ordering by
	// created_at ... Any other order_by value is rejected with a 422 ...
	// Cannot be combined with a non-zero offset, which is also a 422."
	srv := newServer(t)
	at := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	var all []string
	for i := range 7 {
		created := at.Add(time.Duration((i+1)/2) * time.Hour) // the first alone, then pairs sharing a millisecond
		all = append(all, srv.AddUser(steward.User{CreatedAt: created}).ID)
	}
	for _, order := range []string{"", "-created_at", "+created_at", "created_at"} {
		t.Run("order_by="+order, func(t *testing.T) {
			var got []string
			cursor := ""
			for range 10 {
				q := url.Values{"limit": {"3"}}
				if order != "" {
					q.Set("order_by", order)
				}
				if cursor != "" {
					q.Set("starting_after", cursor)
				}
				page, a := rawList(t, srv, q)
				if page == nil && a.status != 0 {
					t.Fatalf("%d %s", a.status, a.body)
				}
				got = append(got, page...)
				if len(page) < 3 {
					break
				}
				cursor = page[len(page)-1]
			}
			if len(got) != len(all) || len(slices.Compact(slices.Sorted(slices.Values(got)))) != len(all) {
				t.Errorf("cursor pages yielded %d users (%d distinct), want each of %d once", len(got), len(slices.Compact(slices.Sorted(slices.Values(got)))), len(all))
			}
		})
	}
	for _, tt := range []struct {
		name string
		q    url.Values
		want [4]string
	}{
		{"another ordering", url.Values{"starting_after": {all[0]}, "order_by": {"-updated_at"}},
			[4]string{"form_conditional_param_disallowed", "is not allowed", "`starting_after` isn't allowed when `order_by` is -updated_at.", "starting_after"}},
		{"a non-zero offset", url.Values{"starting_after": {all[0]}, "offset": {"2"}},
			[4]string{"form_conditional_param_disallowed", "is not allowed", "`starting_after` isn't allowed when `offset` is present.", "starting_after"}},
	} {
		_, a := rawList(t, srv, tt.q)
		if a.status != http.StatusUnprocessableEntity || !cmp.Equal([][4]string{tt.want}, a.errs()) {
			t.Errorf("%s: %d %v, want 422 %v", tt.name, a.status, a.errs(), tt.want)
		}
	}
	if got, a := rawList(t, srv, url.Values{"starting_after": {all[0]}, "offset": {"0"}, "order_by": {"created_at"}}); a.status != 0 && a.status != http.StatusOK || len(got) != 6 {
		t.Errorf("offset=0 with a cursor: %d, %d users; want 6", a.status, len(got))
	}
}

func TestListParameterErrors(t *testing.T) {
	// spec: LimitParameter (1..500), provider "Must be used in combination
	// with the provider_user_id parameter", arrays "Accepts up to 100";
	// catalogue entries named in each case.
	srv := newServer(t)
	many := make([]string, 101)
	for i := range many {
		many[i] = "user_" + strconv.Itoa(i)
	}
	for _, tt := range []struct {
		name string
		q    url.Values
		want [4]string
	}{
		{"limit over 500 (FormParameterValueTooLarge)", url.Values{"limit": {"501"}}, [4]string{"form_param_value_too_large", "Value too large", "The value of limit can't be greater than 500", "limit"}},
		{"limit 0 (FormInvalidParameterValue)", url.Values{"limit": {"0"}}, [4]string{"form_param_value_invalid", "is invalid", "0 does not match one of the allowed values for parameter limit", "limit"}},
		{"limit not a number (FormInvalidTypeParameter)", url.Values{"limit": {"ten"}}, [4]string{"form_param_type_invalid", "is invalid", "`limit` must be a `integer`.", "limit"}},
		{"provider alone (FormMissingConditionalParameterOnExistence)", url.Values{"provider": {"oauth_google"}}, [4]string{"form_conditional_param_missing", "is missing", "`provider_user_id` is required when `provider` is present.", "provider_user_id"}},
		{"provider_user_id alone", url.Values{"provider_user_id": {"g-1"}}, [4]string{"form_conditional_param_missing", "is missing", "`provider` is required when `provider_user_id` is present.", "provider"}},
		{"101 user IDs (FormMaximumParametersExceeded)", url.Values{"user_id": many}, [4]string{"form_param_duplicate", "is duplicate", "user_id is included more than the maximum of 100 times.", "user_id"}},
		{"a date that is not Unix ms (FormInvalidDate)", url.Values{"created_at_after": {"2024-01-01"}}, [4]string{"form_param_invalid_date", "Date values must be given in Unix millisecond timestamp format.", "Date values must be given in Unix millisecond timestamp format.", "created_at_after"}},
		{"banned not a boolean", url.Values{"banned": {"maybe"}}, [4]string{"form_param_type_invalid", "is invalid", "`banned` must be a `boolean`.", "banned"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, a := rawList(t, srv, tt.q)
			if a.status != http.StatusUnprocessableEntity || !cmp.Equal([][4]string{tt.want}, a.errs()) {
				t.Errorf("%d %v, want 422 %v", a.status, a.errs(), tt.want)
			}
		})
	}
}

func TestSessionTokensAreVersion2ByDefault(t *testing.T) {
	// tokens: version 2 default claims include jti, v and sts; version 1
	// "was deprecated on April 14, 2025".
	srv := newServer(t)
	claims := func(tok string) map[string]any {
		parts := strings.Split(tok, ".")
		b, err := base64.RawURLEncoding.DecodeString(parts[1])
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	a, b := claims(srv.SessionToken("user_1")), claims(srv.SessionToken("user_1"))
	for _, k := range []string{"azp", "exp", "fva", "iat", "iss", "jti", "nbf", "sid", "sub", "v", "sts"} {
		if _, ok := a[k]; !ok {
			t.Errorf("default token lacks %q: %v", k, a)
		}
	}
	if a["v"] != 2.0 || a["sts"] != "active" || a["jti"] == b["jti"] || a["jti"] == "" {
		t.Errorf("v %v, sts %v, jti %v and %v: want 2, active and distinct IDs", a["v"], a["sts"], a["jti"], b["jti"])
	}
	v1 := claims(srv.SessionToken("user_1", clerktest.TokenVersion(1)))
	for _, k := range []string{"v", "jti", "sts"} {
		if _, ok := v1[k]; ok {
			t.Errorf("a version 1 token has %q", k)
		}
	}
	pending := claims(srv.SessionToken("user_1", clerktest.TokenSessionStatus("pending"), clerktest.TokenJWTID("jti_1")))
	if pending["sts"] != "pending" || pending["jti"] != "jti_1" {
		t.Errorf("pending token: %v", pending)
	}
}

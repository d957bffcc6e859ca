package clerktest

import (
	"encoding/json"
	"net/http"
	"regexp"
	"slices"
	"strings"

	"github.com/stewardlabs/steward"
)

// The handlers of the Backend API's user endpoints, one for each path
// the SDK's user package (clerk-sdk-go v2.4.2, user/client.go) calls.
// Each follows its operation in clerk/openapi-specs bapi/2025-04-10.yml.

func writeJSON(w http.ResponseWriter, v any) {
	w.WriteHeader(http.StatusOK)
	_ = json.NewEncoder(w).Encode(v)
}

// withUser runs f on the user named by the path, under the lock, and
// writes what it returns: a value to serve, or an error. An unknown user
// answers Clerk's 404 "No user was found with id <id>".
func (s *Server) withUser(w http.ResponseWriter, r *http.Request, f func(rec *record, now int64) (any, *clerkError)) {
	id := r.PathValue("id")
	s.mu.Lock()
	rec, ok := s.users[id]
	var out any
	var e *clerkError
	if ok {
		out, e = f(rec, s.cfg.now().UnixMilli())
	} else {
		e = errUserNotFound(id)
	}
	s.mu.Unlock()
	if e != nil {
		e.write(w)
		return
	}
	writeJSON(w, out)
}

// update runs change on a copy of the path's user and stores the copy
// only when change and the checks every stored user must pass
// (uniqueness, metadata size) succeed, so a failed update changes
// nothing.
func (s *Server) update(w http.ResponseWriter, r *http.Request, change func(c *record, now int64) *clerkError) {
	s.withUser(w, r, func(rec *record, now int64) (any, *clerkError) {
		c := rec.clone()
		if e := change(c, now); e != nil {
			return nil, e
		}
		if e := c.checkMetadataSize(); e != nil {
			return nil, e
		}
		if e := s.uniquenessLocked(c, rec); e != nil {
			return nil, e
		}
		c.touch(now)
		s.users[c.id] = c
		return c.wire(), nil
	})
}

func (s *Server) getUser(w http.ResponseWriter, r *http.Request) {
	s.withUser(w, r, func(rec *record, _ int64) (any, *clerkError) { return rec.wire(), nil })
}

func (s *Server) deleteUser(w http.ResponseWriter, r *http.Request) {
	if _, e := readBody(r); e != nil {
		e.write(w)
		return
	}
	s.withUser(w, r, func(rec *record, _ int64) (any, *clerkError) {
		delete(s.users, rec.id)
		return deletedObject{Object: "user", ID: rec.id, Deleted: true}, nil
	})
}

// deletedObject is components.schemas.DeletedObject.
type deletedObject struct {
	Object  string `json:"object"`
	ID      string `json:"id"`
	Deleted bool   `json:"deleted"`
}

// setFlag serves ban, unban, lock and unlock (paths./users/{user_id}/ban
// and the rest), which take no parameters.
func (s *Server) setFlag(change func(r *record)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if _, e := readBody(r); e != nil {
			e.write(w)
			return
		}
		s.update(w, r, func(c *record, _ int64) *clerkError { change(c); return nil })
	}
}

// The parameters of each request body, from its schema.
var (
	createParams = []string{
		"external_id", "first_name", "last_name", "locale", "email_address", "email_address_identification_status",
		"phone_number", "phone_number_identification_status", "web3_wallet", "username", "password",
		"password_digest", "password_hasher", "skip_password_checks", "skip_password_requirement", "totp_secret",
		"backup_codes", "public_metadata", "private_metadata", "unsafe_metadata", "delete_self_enabled",
		"legal_accepted_at", "skip_legal_checks", "skip_user_requirement", "create_organization_enabled",
		"create_organizations_limit", "created_at", "bypass_client_trust", "banned", "locked",
	}
	updateParams = []string{
		"external_id", "first_name", "last_name", "locale", "primary_email_address_id",
		"notify_primary_email_address_changed", "primary_phone_number_id", "primary_web3_wallet_id", "username",
		"profile_image_id", "password", "password_digest", "password_hasher", "skip_password_checks",
		"sign_out_of_other_sessions", "totp_secret", "backup_codes", "public_metadata", "private_metadata",
		"unsafe_metadata", "delete_self_enabled", "create_organization_enabled", "legal_accepted_at",
		"skip_legal_checks", "create_organizations_limit", "created_at", "bypass_client_trust",
	}
	metadataParams = []string{"public_metadata", "private_metadata", "unsafe_metadata"}
)

var (
	// e164 is the E.164 format phone numbers must have.
	e164 = regexp.MustCompile(`^\+[1-9][0-9]{1,14}$`)
	// ethWallet is the form of an Ethereum wallet address.
	ethWallet = regexp.MustCompile(`^0x[0-9a-fA-F]{40}$`)
)

// identificationStatuses reads a *_identification_status array, parallel
// to the identifications it qualifies: "when provided, it must contain
// exactly one item per ..., applied by position. When omitted or empty,
// every ... is created verified."
func identificationStatuses(b *body, param, of string, n int) []bool {
	sts, ok := b.strings(param)
	reserved := make([]bool, n)
	if !ok || len(sts) == 0 {
		return reserved
	}
	if len(sts) != n {
		b.fail(errArrayLength(param, of))
		return reserved
	}
	for i, st := range sts {
		switch st {
		case "verified":
		case "reserved":
			reserved[i] = true
		default:
			b.fail(errParamValue(param, st))
		}
	}
	return reserved
}

// setCommon applies the parameters POST /users and PATCH /users/{id}
// share to c.
func setCommon(b *body, c *record, now int64) {
	for _, f := range []struct {
		name string
		dst  *string
	}{{"first_name", &c.firstName}, {"last_name", &c.lastName}, {"locale", &c.locale}, {"external_id", &c.externalID}, {"username", &c.username}} {
		if v, ok := b.str(f.name); ok {
			*f.dst = v
		} else if b.null(f.name) {
			*f.dst = ""
		}
	}
	if pw, ok := b.str("password"); ok {
		if len(pw) < minPasswordLen {
			b.fail(errPasswordTooShort("password"))
		}
		c.password, c.passwordEnabled, c.passwordUpdated = pw, true, now
	}
	if _, ok := b.str("password_digest"); ok {
		if _, ok := b.str("password_hasher"); !ok {
			b.fail(errParamRequiredWith("password_hasher", "password_digest"))
		}
		// A digest cannot be checked by verify_password; the fake keeps
		// no plaintext for it.
		c.password, c.passwordEnabled, c.passwordUpdated = "", true, now
	}
	b.boolean("skip_password_checks")
	if _, ok := b.str("totp_secret"); ok {
		c.totp, c.mfaEnabledAt = true, now
	}
	if codes, ok := b.strings("backup_codes"); ok && len(codes) > 0 {
		c.backupCodes, c.mfaEnabledAt = true, now
	}
	if v, ok := b.boolean("delete_self_enabled"); ok {
		c.deleteSelf = v
	}
	if v, ok := b.boolean("create_organization_enabled"); ok {
		c.createOrgs = v
	}
	if n, ok := b.integer("create_organizations_limit"); ok {
		c.createOrgsLimit = &n
	}
	if v, ok := b.boolean("bypass_client_trust"); ok {
		c.bypassTrust = v
	}
	if ms, ok := b.timestamp("legal_accepted_at"); ok {
		c.legalAcceptedAt = ms
	}
	b.boolean("skip_legal_checks")
	if ms, ok := b.timestamp("created_at"); ok {
		c.createdAt = ms
	}
}

// createUser serves POST /v1/users (operation CreateUser).
func (s *Server) createUser(w http.ResponseWriter, r *http.Request) {
	b, e := readBody(r, createParams...)
	if e != nil {
		e.write(w)
		return
	}
	now := s.cfg.now().UnixMilli()
	c := &record{
		id:         NewID("user_"),
		imageURL:   DefaultImageURL,
		createdAt:  now,
		deleteSelf: true,
		createOrgs: true,
	}
	setCommon(b, c, now)
	c.updatedAt = max(now, c.createdAt)

	// Email addresses and phone numbers are "Created verified by
	// default", or reserved (unverified) by position in the
	// *_identification_status arrays.
	emails, _ := b.strings("email_address")
	reservedEmail := identificationStatuses(b, "email_address_identification_status", "email_address", len(emails))
	for i, a := range emails {
		if !strings.Contains(a, "@") || strings.ContainsAny(a, " \t\n") {
			b.fail(errInvalidEmail("email_address"))
			continue
		}
		c.emails = append(c.emails, identification{id: NewID("idn_"), value: a, verified: !reservedEmail[i], reserved: reservedEmail[i], createdAt: now})
	}
	phones, _ := b.strings("phone_number")
	reservedPhone := identificationStatuses(b, "phone_number_identification_status", "phone_number", len(phones))
	for i, p := range phones {
		if !e164.MatchString(p) {
			b.fail(errInvalidPhone("phone_number"))
			continue
		}
		c.phones = append(c.phones, identification{id: NewID("idn_"), value: p, verified: !reservedPhone[i], reserved: reservedPhone[i], createdAt: now})
	}
	wallets, _ := b.strings("web3_wallet")
	for _, a := range wallets {
		if !ethWallet.MatchString(a) {
			b.fail(errInvalidWallet("web3_wallet"))
			continue
		}
		c.wallets = append(c.wallets, identification{id: NewID("idn_"), value: a, verified: true, createdAt: now})
	}
	for _, f := range []struct {
		name string
		dst  *map[string]any
	}{{"public_metadata", &c.public}, {"private_metadata", &c.private}, {"unsafe_metadata", &c.unsafe}} {
		if m, ok := b.object(f.name); ok && len(m) > 0 {
			*f.dst = m
		}
	}
	// "When set to true, the user is created already banned" / "already
	// locked".
	if v, ok := b.boolean("banned"); ok {
		c.banned = v
	}
	if v, ok := b.boolean("locked"); ok {
		c.locked = v
	}
	b.boolean("skip_password_requirement")
	b.boolean("skip_user_requirement")
	if e := b.err(); e != nil {
		e.write(w)
		return
	}
	c.fillDefaults()
	if e := c.checkMetadataSize(); e != nil {
		e.write(w)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.uniquenessLocked(c, nil); e != nil {
		e.write(w)
		return
	}
	s.users[c.id] = c
	writeJSON(w, c.wire())
}

// updateUser serves PATCH /v1/users/{id} (operation UpdateUser). Metadata
// given here replaces the stored object, unlike the metadata endpoint,
// which merges.
func (s *Server) updateUser(w http.ResponseWriter, r *http.Request) {
	b, e := readBody(r, updateParams...)
	if e != nil {
		e.write(w)
		return
	}
	s.update(w, r, func(c *record, now int64) *clerkError {
		setCommon(b, c, now)
		// skip_password_checks and sign_out_of_other_sessions "can only
		// be used when providing a password".
		for _, p := range []string{"skip_password_checks", "sign_out_of_other_sessions"} {
			if b.has(p) && !b.null(p) && !b.has("password") {
				b.fail(errParamRequiredWith("password", p))
			}
		}
		b.boolean("sign_out_of_other_sessions")
		b.boolean("notify_primary_email_address_changed")
		// The primary identifiers "must be verified, and present on the
		// current user".
		for _, p := range []struct {
			param string
			list  []identification
			dst   *string
		}{
			{"primary_email_address_id", c.emails, &c.primaryEmailID},
			{"primary_phone_number_id", c.phones, &c.primaryPhoneID},
			{"primary_web3_wallet_id", c.wallets, &c.primaryWalletID},
		} {
			id, ok := b.str(p.param)
			if !ok {
				continue
			}
			i := slices.IndexFunc(p.list, func(e identification) bool { return e.id == id })
			switch {
			case i < 0:
				b.fail(errMissingResource(p.param))
			case !p.list[i].verified:
				b.fail(errUnverified(p.param))
			default:
				*p.dst = id
			}
		}
		if id, ok := b.str("profile_image_id"); ok {
			c.imageURL, c.hasImage = "https://img.clerk.com/"+id, true
		}
		for _, f := range []struct {
			name string
			dst  *map[string]any
		}{{"public_metadata", &c.public}, {"private_metadata", &c.private}, {"unsafe_metadata", &c.unsafe}} {
			if m, ok := b.object(f.name); ok {
				*f.dst = nilIfEmpty(m)
			} else if b.null(f.name) {
				*f.dst = nil
			}
		}
		return b.err()
	})
}

func nilIfEmpty(m map[string]any) map[string]any {
	if len(m) == 0 {
		return nil
	}
	return m
}

// metadataObjects reads the metadata parameters of a metadata request. A
// null counts as absent.
func metadataObjects(b *body) (pub, priv, uns map[string]any, e *clerkError) {
	pub, _ = b.object("public_metadata")
	priv, _ = b.object("private_metadata")
	uns, _ = b.object("unsafe_metadata")
	return pub, priv, uns, b.err()
}

// mergeMetadata serves PATCH /v1/users/{id}/metadata (operation
// UpdateUserMetadata): "a deep merge will be performed ... You can remove
// metadata keys at any level by setting their value to null."
func (s *Server) mergeMetadata(w http.ResponseWriter, r *http.Request) {
	b, e := readBody(r, metadataParams...)
	if e != nil {
		e.write(w)
		return
	}
	pub, priv, uns, e := metadataObjects(b)
	if e != nil {
		e.write(w)
		return
	}
	s.update(w, r, func(c *record, _ int64) *clerkError {
		for _, f := range []struct {
			patch map[string]any
			dst   *map[string]any
		}{{pub, &c.public}, {priv, &c.private}, {uns, &c.unsafe}} {
			if f.patch != nil {
				*f.dst = nilIfEmpty(steward.MergeMetadata(*f.dst, f.patch))
			}
		}
		return nil
	})
}

// replaceMetadata serves PUT /v1/users/{id}/metadata (operation
// ReplaceUserMetadata): "replaces the supplied metadata fields entirely
// ... Fields omitted from the request body are left unchanged."
func (s *Server) replaceMetadata(w http.ResponseWriter, r *http.Request) {
	b, e := readBody(r, metadataParams...)
	if e != nil {
		e.write(w)
		return
	}
	pub, priv, uns, e := metadataObjects(b)
	if e != nil {
		e.write(w)
		return
	}
	s.update(w, r, func(c *record, _ int64) *clerkError {
		for _, f := range []struct {
			v   map[string]any
			dst *map[string]any
		}{{pub, &c.public}, {priv, &c.private}, {uns, &c.unsafe}} {
			if f.v != nil {
				*f.dst = nilIfEmpty(f.v)
			}
		}
		return nil
	})
}

// listUsers serves GET /v1/users (operation GetUserList), a bare array.
func (s *Server) listUsers(w http.ResponseWriter, r *http.Request) {
	lq, e := parseListQuery(r.URL.Query(), true)
	if e != nil {
		e.write(w)
		return
	}
	s.mu.Lock()
	rs := s.sortedLocked(lq.order, lq.match)
	start := lq.offset
	if lq.startingAfter != "" {
		cursor, ok := s.users[lq.startingAfter]
		if !ok {
			s.mu.Unlock()
			// Clerk does not document a cursor naming a user that no
			// longer exists; the fake rejects it.
			unprocessable(paramError("form_param_value_invalid", "starting_after", "is invalid",
				"starting_after does not match an existing user")).write(w)
			return
		}
		start = len(rs)
		for i, x := range rs {
			if compareRecords(x, cursor, lq.order) > 0 {
				start = i
				break
			}
		}
	}
	page := []*wireUser{}
	for i := start; i < len(rs) && len(page) < lq.limit; i++ {
		page = append(page, rs[i].wire())
	}
	s.mu.Unlock()
	writeJSON(w, page)
}

// countUsers serves GET /v1/users/count (operation GetUsersCount).
func (s *Server) countUsers(w http.ResponseWriter, r *http.Request) {
	lq, e := parseListQuery(r.URL.Query(), false)
	if e != nil {
		e.write(w)
		return
	}
	s.mu.Lock()
	n := 0
	for _, rec := range s.users {
		if lq.match(rec) {
			n++
		}
	}
	s.mu.Unlock()
	writeJSON(w, map[string]any{"object": "total_count", "total_count": n})
}

// setProfileImage serves POST /v1/users/{id}/profile_image, a multipart
// upload with a "file" part.
func (s *Server) setProfileImage(w http.ResponseWriter, r *http.Request) {
	f, _, err := r.FormFile("file")
	if err != nil {
		unprocessable(errParamMissing("file")).write(w)
		return
	}
	_ = f.Close()
	s.update(w, r, func(c *record, _ int64) *clerkError {
		c.imageURL, c.hasImage = "https://img.clerk.com/"+NewID("img_"), true
		return nil
	})
}

// deleteProfileImage serves DELETE /v1/users/{id}/profile_image.
func (s *Server) deleteProfileImage(w http.ResponseWriter, r *http.Request) {
	if _, e := readBody(r); e != nil {
		e.write(w)
		return
	}
	s.update(w, r, func(c *record, _ int64) *clerkError {
		c.imageURL, c.hasImage = DefaultImageURL, false
		return nil
	})
}

// verifyPassword serves POST /v1/users/{id}/verify_password: 200
// {"verified": true}, 400 when the user has no password, 422 when it is
// wrong.
func (s *Server) verifyPassword(w http.ResponseWriter, r *http.Request) {
	b, e := readBody(r, "password")
	if e != nil {
		e.write(w)
		return
	}
	pw, ok := b.str("password")
	if e := b.err(); e != nil {
		e.write(w)
		return
	}
	if !ok {
		unprocessable(errParamMissing("password")).write(w)
		return
	}
	s.withUser(w, r, func(rec *record, _ int64) (any, *clerkError) {
		switch {
		case !rec.passwordEnabled:
			return nil, errNoPasswordSet()
		case rec.password == "" || rec.password != pw:
			return nil, errIncorrectPassword()
		}
		return map[string]bool{"verified": true}, nil
	})
}

// disableMFA serves DELETE /v1/users/{id}/mfa, /totp and /backup_code,
// which answer {"user_id": ...}.
func (s *Server) disableMFA(totp, backup bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if _, e := readBody(r); e != nil {
			e.write(w)
			return
		}
		s.withUser(w, r, func(rec *record, now int64) (any, *clerkError) {
			c := rec.clone()
			if totp {
				c.totp = false
			}
			if backup {
				c.backupCodes = false
			}
			if rec.totp != c.totp || rec.backupCodes != c.backupCodes {
				c.mfaDisabledAt = now
			}
			c.touch(now)
			s.users[c.id] = c
			return map[string]string{"user_id": c.id}, nil
		})
	}
}

// deleteIdentification serves DELETE of a user's web3 wallet
// (/web3_wallets/{item}), external account (/external_accounts/{item})
// and passkey (/passkeys/{item}; the fake holds none). An unknown item
// answers 404 resource_not_found ("Resource not found").
func (s *Server) deleteIdentification(object string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if _, e := readBody(r); e != nil {
			e.write(w)
			return
		}
		item := r.PathValue("item")
		s.withUser(w, r, func(rec *record, now int64) (any, *clerkError) {
			c := rec.clone()
			found := false
			switch object {
			case "web3_wallet":
				n := len(c.wallets)
				c.wallets = slices.DeleteFunc(c.wallets, func(e identification) bool { return e.id == item })
				found = len(c.wallets) < n
				if c.primaryWalletID == item {
					c.primaryWalletID = ""
				}
			case "external_account":
				n := len(c.externalAccounts)
				c.externalAccounts = slices.DeleteFunc(c.externalAccounts, func(a externalAccount) bool { return a.id == item })
				found = len(c.externalAccounts) < n
			}
			if !found {
				return nil, errResourceNotFound()
			}
			c.fillDefaults()
			c.touch(now)
			s.users[c.id] = c
			return deletedObject{Object: object, ID: item, Deleted: true}, nil
		})
	}
}

// listMemberships serves GET /v1/users/{id}/organization_memberships.
func (s *Server) listMemberships(w http.ResponseWriter, r *http.Request) {
	limit, offset, e := pageParams(r)
	if e != nil {
		e.write(w)
		return
	}
	s.withUser(w, r, func(rec *record, _ int64) (any, *clerkError) {
		data := []map[string]any{}
		for i := offset; i < len(rec.memberships) && len(data) < limit; i++ {
			m := rec.memberships[i]
			data = append(data, map[string]any{
				"object": "organization_membership", "id": m.id, "role": m.role, "role_name": m.role,
				"permissions": []string{}, "public_metadata": map[string]any{}, "private_metadata": map[string]any{},
				"organization": map[string]any{
					"object": "organization", "id": m.orgID, "name": m.orgID, "slug": m.orgID, "has_image": false,
					"max_allowed_memberships": 0, "admin_delete_enabled": true, "public_metadata": map[string]any{},
					"created_at": m.createdAt, "updated_at": m.createdAt,
				},
				"created_at": m.createdAt, "updated_at": m.createdAt,
			})
		}
		return map[string]any{"data": data, "total_count": len(rec.memberships)}, nil
	})
}

// listInvitations serves GET /v1/users/{id}/organization_invitations;
// the fake holds no invitations.
func (s *Server) listInvitations(w http.ResponseWriter, r *http.Request) {
	if _, _, e := pageParams(r); e != nil {
		e.write(w)
		return
	}
	for _, st := range r.URL.Query()["status"] {
		if !slices.Contains([]string{"pending", "accepted", "revoked", "expired"}, st) {
			unprocessable(errParamValue("status", st)).write(w)
			return
		}
	}
	s.withUser(w, r, func(*record, int64) (any, *clerkError) {
		return map[string]any{"data": []any{}, "total_count": 0}, nil
	})
}

// oauthTokens serves GET /v1/users/{id}/oauth_access_tokens/{provider}:
// a made-up token for each of the user's external accounts of that
// provider, as a {"data", "total_count"} page when paginated=true (as the
// SDK asks), else as a bare array.
func (s *Server) oauthTokens(w http.ResponseWriter, r *http.Request) {
	limit, offset, e := pageParams(r)
	if e != nil {
		e.write(w)
		return
	}
	provider := r.PathValue("provider")
	s.withUser(w, r, func(rec *record, _ int64) (any, *clerkError) {
		var all []map[string]any
		for _, a := range rec.externalAccounts {
			if a.provider == provider {
				all = append(all, map[string]any{
					"object": "oauth_access_token", "external_account_id": a.id, "token": "clerktest-oauth-" + a.id,
					"provider": a.provider, "public_metadata": map[string]any{}, "label": nil, "scopes": []string{},
				})
			}
		}
		page := []map[string]any{}
		for i := offset; i < len(all) && len(page) < limit; i++ {
			page = append(page, all[i])
		}
		if r.URL.Query().Get("paginated") == "true" {
			return map[string]any{"data": page, "total_count": len(all)}, nil
		}
		return page, nil
	})
}

// pageParams reads limit and offset (components.parameters).
func pageParams(r *http.Request) (limit, offset int, e *clerkError) {
	lq := listQuery{limit: defaultLimit}
	q := r.URL.Query()
	paging := make(map[string][]string)
	for _, k := range []string{"limit", "offset"} {
		if v, ok := q[k]; ok {
			paging[k] = v
		}
	}
	if errs := lq.parsePaging(paging); len(errs) > 0 {
		return 0, 0, unprocessable(errs...)
	}
	return lq.limit, lq.offset, nil
}

package clerktest

import (
	"cmp"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// GET /v1/users and GET /v1/users/count, after the parameters documented
// for them in clerk/openapi-specs bapi/2025-04-10.yml (paths./users.get
// and paths./users/count.get).

// maxArrayValues is how many values an array query parameter may carry:
// each is documented with "Accepts up to 100".
const maxArrayValues = 100

// Paging limits of components.parameters.LimitParameter.
const (
	defaultLimit = 10
	maxLimit     = 500
)

// orderFields are the order_by fields the spec lists ("created_at",
// "updated_at", "email_address", "web3wallet", "first_name",
// "last_name", "phone_number", "username", "last_active_at",
// "last_sign_in_at").
var orderFields = []string{
	"created_at", "updated_at", "email_address", "web3wallet", "first_name",
	"last_name", "phone_number", "username", "last_active_at", "last_sign_in_at",
}

// listQuery is a parsed GET /users or /users/count query.
type listQuery struct {
	limit, offset int
	order         orderBy
	startingAfter string
	filters       []func(*record) bool
}

type orderBy struct {
	field string
	desc  bool
}

// parseListQuery reads the query. paging says whether limit, offset,
// order_by and starting_after apply (GET /users); the count endpoint
// documents none of them and ignores them, since the SDK's List sends
// the same parameters to both.
func parseListQuery(q url.Values, paging bool) (listQuery, *clerkError) {
	lq := listQuery{limit: defaultLimit, order: orderBy{field: "created_at", desc: true}}
	var errs []apiError
	if paging {
		errs = append(errs, lq.parsePaging(q)...)
	}

	// Array parameters: each accepts up to 100 values.
	for _, p := range []string{"email_address", "phone_number", "external_id", "username", "web3_wallet", "user_id", "organization_id", "provider_user_id"} {
		if len(q[p]) > maxArrayValues {
			errs = append(errs, errTooManyValues(p))
		}
	}

	// Exact matches, any of the values. Email addresses, usernames and
	// web3 wallets compare without regard to case, as Clerk stores them
	// lower-cased.
	lq.anyOf(q["email_address"], func(r *record) []string { return values(r.emails) }, true)
	lq.anyOf(q["phone_number"], func(r *record) []string { return values(r.phones) }, false)
	lq.anyOf(q["web3_wallet"], func(r *record) []string { return values(r.wallets) }, true)
	lq.anyOf(q["username"], func(r *record) []string { return nonEmpty(r.username) }, true)

	// user_id, external_id and organization_id take "+" (include, also
	// implied) and "-" (exclude) prefixes.
	lq.prefixed(q["user_id"], func(r *record) []string { return []string{r.id} })
	lq.prefixed(q["external_id"], func(r *record) []string { return nonEmpty(r.externalID) })
	lq.prefixed(q["organization_id"], func(r *record) []string {
		ids := make([]string, len(r.memberships))
		for i, m := range r.memberships {
			ids[i] = m.orgID
		}
		return ids
	})

	// provider and provider_user_id: "Must be used in combination".
	provider, providerIDs := q.Get("provider"), q["provider_user_id"]
	switch {
	case provider != "" && len(providerIDs) == 0:
		errs = append(errs, errParamRequiredWith("provider_user_id", "provider"))
	case provider == "" && len(providerIDs) > 0:
		errs = append(errs, errParamRequiredWith("provider", "provider_user_id"))
	case provider != "":
		lq.filters = append(lq.filters, func(r *record) bool {
			for _, a := range r.externalAccounts {
				if a.provider == provider && slices.Contains(providerIDs, a.providerUserID) {
					return true
				}
			}
			return false
		})
	}

	// Case-insensitive partial matches.
	if v := q.Get("query"); v != "" {
		// "we check the email addresses, phone numbers, usernames, web3
		// wallets, user IDs, first and last names".
		lq.contains(v, func(r *record) []string {
			out := append(values(r.emails), values(r.phones)...)
			out = append(out, values(r.wallets)...)
			return append(out, r.username, r.id, r.firstName, r.lastName)
		})
	}
	if v := q.Get("email_address_query"); v != "" {
		lq.contains(v, func(r *record) []string { return values(r.emails) })
	}
	if v := q.Get("phone_number_query"); v != "" {
		lq.contains(v, func(r *record) []string { return values(r.phones) })
	}
	if v := q.Get("username_query"); v != "" {
		lq.contains(v, func(r *record) []string { return []string{r.username} })
	}
	if v := q.Get("name_query"); v != "" {
		lq.contains(v, func(r *record) []string {
			return []string{r.firstName, r.lastName, strings.TrimSpace(r.firstName + " " + r.lastName)}
		})
	}

	if v := q.Get("banned"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			errs = append(errs, errQueryParamType("banned", "boolean"))
		} else {
			lq.filters = append(lq.filters, func(r *record) bool { return r.banned == b })
		}
	}

	// Times, in Unix milliseconds, compared strictly. A user without the
	// time (never active, never signed in) matches neither bound: Clerk
	// does not document this case.
	for _, t := range []struct {
		param string
		get   func(*record) int64
		after bool
	}{
		{"created_at_before", func(r *record) int64 { return r.createdAt }, false},
		{"created_at_after", func(r *record) int64 { return r.createdAt }, true},
		{"last_active_at_before", func(r *record) int64 { return r.lastActiveAt }, false},
		{"last_active_at_after", func(r *record) int64 { return r.lastActiveAt }, true},
		{"last_active_at_since", func(r *record) int64 { return r.lastActiveAt }, true},
		{"last_sign_in_at_before", func(r *record) int64 { return r.lastSignInAt }, false},
		{"last_sign_in_at_after", func(r *record) int64 { return r.lastSignInAt }, true},
	} {
		v := q.Get(t.param)
		if v == "" {
			continue
		}
		ms, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			errs = append(errs, errInvalidDate(t.param))
			continue
		}
		get, after := t.get, t.after
		lq.filters = append(lq.filters, func(r *record) bool {
			v := get(r)
			if v == 0 {
				return false
			}
			if after {
				return v > ms
			}
			return v < ms
		})
	}
	if len(errs) > 0 {
		return lq, unprocessable(errs...)
	}
	return lq, nil
}

// parsePaging reads limit, offset, order_by and starting_after.
func (lq *listQuery) parsePaging(q url.Values) []apiError {
	var errs []apiError
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		switch {
		case err != nil:
			errs = append(errs, errQueryParamType("limit", "integer"))
		case n < 1:
			errs = append(errs, errParamValue("limit", v))
		case n > maxLimit:
			errs = append(errs, errParamTooLarge("limit", maxLimit))
		default:
			lq.limit = n
		}
	}
	if v := q.Get("offset"); v != "" {
		n, err := strconv.Atoi(v)
		switch {
		case err != nil:
			errs = append(errs, errQueryParamType("offset", "integer"))
		case n < 0:
			errs = append(errs, errParamValue("offset", v))
		default:
			lq.offset = n
		}
	}
	// "We only support one order_by parameter, and if multiple order_by
	// parameters are provided, we will only keep the first one"; "If you
	// don't use + or -, then + is implied".
	if v := q.Get("order_by"); v != "" {
		o := orderBy{field: strings.TrimPrefix(strings.TrimPrefix(v, "+"), "-"), desc: strings.HasPrefix(v, "-")}
		if !slices.Contains(orderFields, o.field) {
			errs = append(errs, errParamValue("order_by", v))
		} else {
			lq.order = o
		}
	}
	// starting_after "Requires ordering by created_at ... Any other
	// order_by value is rejected with a 422" and "Cannot be combined with
	// a non-zero offset, which is also a 422".
	if v := q.Get("starting_after"); v != "" {
		lq.startingAfter = v
		if lq.order.field != "created_at" {
			errs = append(errs, errParamDisallowedWhen("starting_after", "order_by", q.Get("order_by")))
		}
		if lq.offset != 0 {
			errs = append(errs, errParamDisallowedWith("starting_after", "offset"))
		}
	}
	return errs
}

// anyOf keeps users with one of wants among the values get returns.
func (lq *listQuery) anyOf(wants []string, get func(*record) []string, fold bool) {
	if len(wants) == 0 {
		return
	}
	lq.filters = append(lq.filters, func(r *record) bool {
		for _, have := range get(r) {
			for _, w := range wants {
				if have == w || fold && strings.EqualFold(have, w) {
					return true
				}
			}
		}
		return false
	})
}

// prefixed keeps users with one of the included values (no prefix or
// "+") and none of the excluded ones ("-"). A "+" sent unencoded in a
// query string arrives as a space, and counts as "+".
func (lq *listQuery) prefixed(vals []string, get func(*record) []string) {
	var include, exclude []string
	for _, v := range vals {
		switch {
		case strings.HasPrefix(v, "-"):
			exclude = append(exclude, v[1:])
		case strings.HasPrefix(v, "+"), strings.HasPrefix(v, " "):
			include = append(include, v[1:])
		default:
			include = append(include, v)
		}
	}
	if len(include) == 0 && len(exclude) == 0 {
		return
	}
	lq.filters = append(lq.filters, func(r *record) bool {
		have := get(r)
		for _, h := range have {
			if slices.Contains(exclude, h) {
				return false
			}
		}
		if len(include) == 0 {
			return true
		}
		for _, h := range have {
			if slices.Contains(include, h) {
				return true
			}
		}
		return false
	})
}

// contains keeps users one of whose values contains sub, ignoring case.
func (lq *listQuery) contains(sub string, get func(*record) []string) {
	sub = strings.ToLower(sub)
	lq.filters = append(lq.filters, func(r *record) bool {
		for _, v := range get(r) {
			if v != "" && strings.Contains(strings.ToLower(v), sub) {
				return true
			}
		}
		return false
	})
}

func values(list []identification) []string {
	out := make([]string, len(list))
	for i, e := range list {
		out[i] = e.value
	}
	return out
}

func nonEmpty(s string) []string {
	if s == "" {
		return nil
	}
	return []string{s}
}

func (lq listQuery) match(r *record) bool {
	for _, f := range lq.filters {
		if !f(r) {
			return false
		}
	}
	return true
}

// sortKey returns r's value for an order_by field: a time, or a
// lower-cased string; zero or "" when r has none.
func sortKey(r *record, field string) (int64, string) {
	switch field {
	case "updated_at":
		return r.updatedAt, ""
	case "last_active_at":
		return r.lastActiveAt, ""
	case "last_sign_in_at":
		return r.lastSignInAt, ""
	case "email_address":
		return 0, strings.ToLower(primary(r.emails, r.primaryEmailID))
	case "web3wallet":
		return 0, strings.ToLower(primary(r.wallets, r.primaryWalletID))
	case "phone_number":
		return 0, primary(r.phones, r.primaryPhoneID)
	case "first_name":
		return 0, strings.ToLower(r.firstName)
	case "last_name":
		return 0, strings.ToLower(r.lastName)
	case "username":
		return 0, strings.ToLower(r.username)
	default:
		return r.createdAt, ""
	}
}

// compareRecords orders a and b by o. Users without a value for the
// field sort last in either direction, and ties go by creation time, then
// by ID, in the direction asked: Clerk documents neither.
func compareRecords(a, b *record, o orderBy) int {
	ta, sa := sortKey(a, o.field)
	tb, sb := sortKey(b, o.field)
	aNone, bNone := ta == 0 && sa == "", tb == 0 && sb == ""
	switch {
	case aNone && !bNone:
		return 1
	case bNone && !aNone:
		return -1
	}
	c := cmp.Or(cmp.Compare(ta, tb), cmp.Compare(sa, sb), cmp.Compare(a.createdAt, b.createdAt), strings.Compare(a.id, b.id))
	if o.desc {
		c = -c
	}
	return c
}

// sortedLocked returns the users that match in the given order.
func (s *Server) sortedLocked(o orderBy, match func(*record) bool) []*record {
	var rs []*record
	for _, r := range s.users {
		if match == nil || match(r) {
			rs = append(rs, r)
		}
	}
	slices.SortFunc(rs, func(a, b *record) int { return compareRecords(a, b, o) })
	return rs
}

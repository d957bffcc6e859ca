package clerktest

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/clerk/clerk-sdk-go/v2"
	"github.com/go-jose/go-jose/v3"

	"github.com/stewardlabs/steward"
)

// TokenLifetime is how long a minted session token is valid, as Clerk's
// are: exp = iat + 60 s.
const TokenLifetime = 60 * time.Second

// notBeforeSkew is how far before iat Clerk sets nbf.
const notBeforeSkew = 10 * time.Second

// signingKey is one RSA key pair with its key ID.
type signingKey struct {
	kid  string
	priv *rsa.PrivateKey
}

// GenerateKey returns a new 2048-bit RSA key, for WithSigningKey and
// TokenSignedWith. It panics if the system's random source fails.
func GenerateKey() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(fmt.Sprintf("clerktest: generating an RSA key: %v", err))
	}
	return k
}

// currentKey returns the key that signs new tokens, making the first one
// on first use.
func (s *Server) currentKey() *signingKey {
	s.keyMu.Lock()
	defer s.keyMu.Unlock()
	if !s.keyOnce {
		s.keyOnce = true
		priv := s.cfg.signingKey
		if priv == nil {
			priv = GenerateKey()
		}
		s.keys = append(s.keys, &signingKey{kid: NewID("ins_"), priv: priv})
	}
	if len(s.keys) == 0 {
		return nil
	}
	return s.keys[len(s.keys)-1]
}

// KeyID returns the key ID ("kid") of the key that signs new tokens.
func (s *Server) KeyID() string {
	k := s.currentKey()
	if k == nil {
		return ""
	}
	return k.kid
}

// RotateKey makes a new key the one that signs new tokens and returns its
// key ID. Older keys stay in the JWKS until RetireKey removes them, as
// during a real rotation.
func (s *Server) RotateKey() string {
	s.currentKey() // the first key exists before the new one
	k := &signingKey{kid: NewID("ins_"), priv: GenerateKey()}
	s.keyMu.Lock()
	defer s.keyMu.Unlock()
	s.keys = append(s.keys, k)
	return k.kid
}

// RetireKey removes the key with the given ID from the JWKS. Tokens it
// signed no longer verify. Retiring the current key leaves the previous
// one signing, or none.
func (s *Server) RetireKey(kid string) {
	s.currentKey()
	s.keyMu.Lock()
	defer s.keyMu.Unlock()
	s.keys = slices.DeleteFunc(s.keys, func(k *signingKey) bool { return k.kid == kid })
}

// JSONWebKey returns the public half of the current signing key as the
// SDK's type, for jwt.VerifyParams.JWK.
func (s *Server) JSONWebKey() *clerk.JSONWebKey {
	k := s.currentKey()
	if k == nil {
		return nil
	}
	b, err := json.Marshal(publicJWK(k))
	if err != nil {
		panic(err)
	}
	out := &clerk.JSONWebKey{}
	if err := json.Unmarshal(b, out); err != nil {
		panic(err)
	}
	return out
}

func publicJWK(k *signingKey) jose.JSONWebKey {
	return jose.JSONWebKey{Key: &k.priv.PublicKey, KeyID: k.kid, Algorithm: string(jose.RS256), Use: "sig"}
}

func (s *Server) serveJWKS(w http.ResponseWriter, r *http.Request) {
	s.currentKey()
	s.keyMu.Lock()
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{}}
	for _, k := range s.keys {
		set.Keys = append(set.Keys, publicJWK(k))
	}
	s.keyMu.Unlock()
	writeJSON(w, set)
}

// defaultSessionClaims is the default session token template.
func defaultSessionClaims(u steward.User) map[string]any {
	md := u.PublicMetadata
	if md == nil {
		md = map[string]any{}
	}
	return map[string]any{"metadata": md, "email_verified": u.EmailVerified()}
}

// tokenConfig is what the token options set.
type tokenConfig struct {
	issuedAt  time.Time
	expiresAt time.Time
	notBefore time.Time
	issuer    *string
	azp       *string
	sid       string
	jti       string
	status    string
	version   int
	org       *organization
	claims    map[string]any
	key       *signingKey
	kid       *string
}

type organization struct {
	id, slug, role string
	permissions    []string
}

// TokenOption changes one session token minted by SessionToken.
type TokenOption func(*tokenConfig)

// TokenIssuedAt sets iat (default: the server's clock), from which nbf
// (iat - 10 s) and exp (iat + TokenLifetime) follow unless set.
func TokenIssuedAt(t time.Time) TokenOption { return func(c *tokenConfig) { c.issuedAt = t } }

// TokenExpiresAt sets exp.
func TokenExpiresAt(t time.Time) TokenOption { return func(c *tokenConfig) { c.expiresAt = t } }

// TokenNotBefore sets nbf.
func TokenNotBefore(t time.Time) TokenOption { return func(c *tokenConfig) { c.notBefore = t } }

// TokenIssuer sets iss, overriding WithIssuer.
func TokenIssuer(iss string) TokenOption { return func(c *tokenConfig) { c.issuer = &iss } }

// TokenAuthorizedParty sets azp, overriding WithAuthorizedParty; "" leaves
// the claim out.
func TokenAuthorizedParty(azp string) TokenOption { return func(c *tokenConfig) { c.azp = &azp } }

// TokenSessionID sets sid (default: a new "sess_..." ID).
func TokenSessionID(sid string) TokenOption { return func(c *tokenConfig) { c.sid = sid } }

// TokenJWTID sets jti, the token's unique ID, of a version 2 token
// (default: a new random ID).
func TokenJWTID(jti string) TokenOption { return func(c *tokenConfig) { c.jti = jti } }

// TokenSessionStatus sets sts, the session's status, of a version 2
// token: "active" by default, or "pending" for a session with tasks left
// (such as choosing an organization), which Clerk's SDKs treat as signed
// out ("By default, pending sessions are treated as signed-out",
// clerk-docs, guides/configure/session-tasks.mdx). "" leaves the claim
// out.
func TokenSessionStatus(status string) TokenOption {
	return func(c *tokenConfig) { c.status = status }
}

// TokenOrganization scopes the session to an organization: the compact
// "o" claim (id, slg, rol without its "org:" prefix, per, fpm) and "fea"
// of version 2 tokens, or org_id, org_slug, org_role (such as
// "org:admin") and org_permissions (such as "org:posts:read") in version
// 1 tokens (see TokenVersion).
func TokenOrganization(id, slug, role string, permissions ...string) TokenOption {
	return func(c *tokenConfig) {
		c.org = &organization{id: id, slug: slug, role: role, permissions: slices.Clone(permissions)}
	}
}

// TokenVersion sets the token format: 2 (the default, with "v": 2,
// "jti", "sts", "fva" and organization claims in compact form) or 1, the
// format Clerk deprecated on April 14, 2025 (no "v" claim; clerk-docs,
// guides/sessions/session-tokens.mdx).
func TokenVersion(v int) TokenOption { return func(c *tokenConfig) { c.version = v } }

// TokenClaims adds custom claims, replacing any of the same name (the
// template's, or even registered ones); a nil value removes the claim.
func TokenClaims(claims map[string]any) TokenOption {
	return func(c *tokenConfig) {
		if c.claims == nil {
			c.claims = make(map[string]any)
		}
		for k, v := range claims {
			c.claims[k] = v
		}
	}
}

// TokenSignedWith signs the token with key instead of the server's, with
// kid in the header ("" for none). The server's JWKS does not know key.
func TokenSignedWith(key *rsa.PrivateKey, kid string) TokenOption {
	return func(c *tokenConfig) { c.key = &signingKey{kid: kid, priv: key} }
}

// TokenKeyID puts kid in the header ("" for none) while signing with the
// server's current key.
func TokenKeyID(kid string) TokenOption { return func(c *tokenConfig) { c.kid = &kid } }

// SessionToken returns a session token for userID, an RS256 JWT signed by
// the server's current key with the default claims of Clerk's version 2
// session tokens (clerk-docs, guides/sessions/session-tokens.mdx): sub,
// sid, iss, azp, iat, nbf, exp, jti, v, fva and sts, plus the custom
// claims of the session token template (WithSessionClaims) when the
// server holds the user, and whatever the options add. The token verifies
// against the server's JWKS until it expires.
//
// SessionToken mints a token for any user ID, also one the server does
// not hold or holds banned: Clerk revokes a banned user's sessions, so it
// mints no new tokens for them, but a token minted before the ban stays
// valid until it expires, and tests need such tokens.
func (s *Server) SessionToken(userID string, opts ...TokenOption) string {
	c := tokenConfig{version: 2, status: "active"}
	for _, o := range opts {
		o(&c)
	}
	if c.issuedAt.IsZero() {
		c.issuedAt = s.cfg.now()
	}
	if c.expiresAt.IsZero() {
		c.expiresAt = c.issuedAt.Add(TokenLifetime)
	}
	if c.notBefore.IsZero() {
		c.notBefore = c.issuedAt.Add(-notBeforeSkew)
	}
	if c.sid == "" {
		c.sid = NewID("sess_")
	}
	claims := map[string]any{
		"sub": userID,
		"sid": c.sid,
		"iss": s.cfg.issuer,
		"iat": c.issuedAt.Unix(),
		"nbf": c.notBefore.Unix(),
		"exp": c.expiresAt.Unix(),
	}
	if c.issuer != nil {
		claims["iss"] = *c.issuer
	}
	azp := s.cfg.azp
	if c.azp != nil {
		azp = *c.azp
	}
	if azp != "" {
		claims["azp"] = azp
	}
	if s.cfg.sessionClaims != nil {
		if u, ok := s.User(userID); ok {
			for k, v := range s.cfg.sessionClaims(u) {
				claims[k] = v
			}
		}
	}
	if c.version == 2 {
		if c.jti == "" {
			c.jti = newTraceID()[:20]
		}
		claims["v"] = 2
		claims["fva"] = []int{0, -1}
		claims["jti"] = c.jti
		if c.status != "" {
			claims["sts"] = c.status
		}
	}
	if c.org != nil {
		if c.version == 2 {
			fea, o := compactOrg(c.org)
			claims["fea"] = fea
			claims["o"] = o
		} else {
			claims["org_id"] = c.org.id
			claims["org_slug"] = c.org.slug
			claims["org_role"] = c.org.role
			claims["org_permissions"] = c.org.permissions
		}
	}
	for k, v := range c.claims {
		if v == nil {
			delete(claims, k)
		} else {
			claims[k] = v
		}
	}

	key := c.key
	if key == nil {
		key = s.currentKey()
		if key == nil {
			panic("clerktest: SessionToken: every signing key was retired")
		}
		if c.kid != nil {
			key = &signingKey{kid: *c.kid, priv: key.priv}
		}
	}
	return sign(key, claims)
}

// sign serialises claims as a compact RS256 JWS.
func sign(k *signingKey, claims map[string]any) string {
	opts := (&jose.SignerOptions{}).WithType("JWT")
	if k.kid != "" {
		opts = opts.WithHeader("kid", k.kid)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: k.priv}, opts)
	if err != nil {
		panic(fmt.Sprintf("clerktest: making a signer: %v", err))
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		panic(fmt.Sprintf("clerktest: token claims cannot be encoded as JSON: %v", err))
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		panic(fmt.Sprintf("clerktest: signing a token: %v", err))
	}
	out, err := jws.CompactSerialize()
	if err != nil {
		panic(err)
	}
	return out
}

// compactOrg encodes an organization as version 2 session claims:
// "fea" lists the features ("o:posts"), "o.per" the distinct permission
// names, and "o.fpm" for each feature a bit mask over "o.per" of the
// permissions it has. The role loses its "org:" prefix.
func compactOrg(o *organization) (string, map[string]any) {
	var features, perms []string
	masks := map[string]int{}
	for _, p := range o.permissions {
		parts := strings.SplitN(p, ":", 3)
		if len(parts) != 3 || parts[0] != "org" {
			continue
		}
		feature, perm := parts[1], parts[2]
		if !slices.Contains(features, feature) {
			features = append(features, feature)
		}
		i := slices.Index(perms, perm)
		if i < 0 {
			perms = append(perms, perm)
			i = len(perms) - 1
		}
		masks[feature] |= 1 << i
	}
	fea := make([]string, len(features))
	fpm := make([]string, len(features))
	for i, f := range features {
		fea[i] = "o:" + f
		fpm[i] = fmt.Sprint(masks[f])
	}
	return strings.Join(fea, ","), map[string]any{
		"id":  o.id,
		"slg": o.slug,
		"rol": strings.TrimPrefix(o.role, "org:"),
		"per": strings.Join(perms, ","),
		"fpm": strings.Join(fpm, ","),
	}
}

// Package privacycenter serves the web pages through which people
// exercise their data rights and a privacy team works its queue: plain
// http.Handlers rendered with html/template, their stylesheet and two
// small scripts embedded, mounted under the application's own mux
// behind its own session middleware and roles.
//
//	center, err := privacycenter.New(svc, consents,
//		privacycenter.WithAudit(auditLog), privacycenter.WithAuditReader(store.AuditSink()),
//		privacycenter.WithHolds(retention.AuditedHolds{Holds: store.Holds(), Audit: auditLog}),
//		privacycenter.WithPolicyVersion(3))
//	mux.Handle("/privacy", center.Handler())
//	mux.Handle("/privacy/", center.Handler())
//	http.ListenAndServe(addr, auth.Handler(mux)) // clerkadapter's session middleware
//
// # Self-service
//
// The signed-in user (the rbac.Principal in the request's context)
// gets, under /privacy:
//   - / — what we hold (privacy.Service.Categories: the account and
//     each DataStore's records by category) and their open requests;
//   - /export — a queued export (Service.StartExport) with its status,
//     and a download link until it expires (Service.DownloadHandler);
//   - /delete — a confirmation step, then, with privacy.WithGracePeriod,
//     a countdown to the end of the grace period with a button that
//     cancels, then the result; the browser keeps the request's ID in
//     the ErasureCookie so the signed-out page can show it once the
//     fence has ended the session;
//   - /consent — a toggle per purpose with the current policy version
//     and the full history (consent.Manager.History);
//   - /requests — every request with its due date and per-step
//     progress.
//
// Without a principal every page answers 401 with a signed-out page. A
// user whose erasure has begun (privacy.Service.CheckFence) gets 409,
// then 410 once erased, with where the erasure stands.
//
// # Admin
//
// Principals allowed privacy.AdminPermission (admin:users, WithAuthorizer)
// get /privacy/admin: the request queue, filtered by kind, status and
// overdue, paged by keyset (privacy.RequestFilter.After), each request
// with a days-left badge (DaysLeft: red when overdue or under a quarter
// of its time left) and a CSV export of the filtered queue; each
// request's page with the timeline of its steps and the audit events
// naming it (WithAuditReader), and forms to resume it, extend its
// deadline or cancel it with a reason, and place or release a legal
// hold (WithHolds); /privacy/admin/lookup, the one page whose URL holds
// a user ID, which shows that user's requests and audit events beside
// their ID and writes a data_access audit event first; and
// /privacy/admin/audit, the audit chain's status (audit.Verify). Other
// admin pages show users by pseudonym only (WithPseudonymizer). Anyone
// else gets 403, with an access_denied audit event (WithAudit).
//
// # Consent banner
//
// Center.Banner returns the banner for any page of the application, and
// the center's pages carry it: shown to a signed-in user while some
// purpose has no decision under the current policy version
// (WithPolicyVersion), so it asks again when the version changes. It
// posts to /privacy/consent/banner; the script at BannerScript records
// the choice without leaving the page.
//
// # Security
//
// Every state-changing form is a POST refused when it comes from another
// origin (http.CrossOriginProtection; WithTrustedOrigins adds the
// application's other origins); every answer carries
// ContentSecurityPolicy (no inline script or style), nosniff,
// no-referrer and no-store. URLs hold request IDs and opaque cursors,
// never personal data, but for the admin lookup. Changes go through
// the same Service and Manager methods as the JSON endpoints, so the
// same fences and audit events apply; a request with Global Privacy
// Control is honoured (consent.Manager.HonourGPC). Every page works
// without JavaScript: scripts only count down, refresh a pending
// download and send the banner in the background.
//
// # Errors
//
// New returns errors wrapping ErrInvalidConfig for a nil Service or
// Manager or a bad option, naming it. The pages never show an error's
// text: failures are logged (WithLogger; the errors of privacy and
// consent hold no user IDs) and answered with a 500 page saying nothing
// was changed. Banner and NeedsConsent return the consent store's error.
package privacycenter

// Package audit is Steward's tamper-evident, pseudonymous audit trail.
package audit

// Package conformance holds what Steward's conformance suites
// (identitytest, privacytest, audittest, consenttest and retentiontest)
// share: T, the part of *testing.T a suite uses, and Recorder, a T that
// records failures instead of reporting them, so that a suite's own tests
// can run it on a deliberately broken implementation and check which
// rules it catches.
package conformance

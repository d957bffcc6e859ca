// Package benchmarks compares Steward with peer libraries side by side.
// It is a separate module so that users of Steward never download the
// peers. Run: go test -run '^$' -bench . ./...
package benchmarks

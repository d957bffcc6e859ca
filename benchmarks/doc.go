// Package benchmarks compares Steward with peer libraries side by side,
// and measures what takes several processes (audit appends to one
// PostgreSQL chain from one writer process and from three, the
// benchmark binary re-executed as the writers). It is a separate module
// so that users of Steward never download the peers. Run:
// go test -run '^$' -bench . ./...
package benchmarks

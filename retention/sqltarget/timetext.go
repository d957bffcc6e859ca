package sqltarget

import (
	"strings"
	"sync/atomic"
	"time"
)

// textLayouts are the text forms of a time that sqltarget reads, most
// common first. Times without an offset are UTC.
var textLayouts = []string{
	// time.Time.String, which modernc.org/sqlite writes by default, once
	// its zone abbreviation and " m=+..." monotonic reading are cut off
	// (see goString).
	"2006-01-02 15:04:05.999999999 -0700",
	// modernc.org/sqlite's _time_format=sqlite, mattn/go-sqlite3, and
	// SQLite's own date functions with an offset or Z.
	"2006-01-02 15:04:05.999999999Z07:00",
	// RFC 3339 (time.RFC3339, time.RFC3339Nano, JavaScript's toISOString).
	"2006-01-02T15:04:05.999999999Z07:00",
	"2006-01-02 15:04:05.999999999 Z07:00",
	"2006-01-02 15:04:05.999999999-0700",
	"2006-01-02T15:04:05.999999999-0700",
	// SQLite's datetime() and CURRENT_TIMESTAMP, UTC.
	"2006-01-02 15:04:05.999999999",
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04",
	"2006-01-02T15:04",
	time.DateOnly,
}

// parser reads text times, starting with the layout that read the last
// one: a column is usually written in one format.
type parser struct{ hint atomic.Int32 }

// parse returns the instant s names, or false when s is in none of
// textLayouts.
func (p *parser) parse(s string) (time.Time, bool) {
	s = goString(s)
	h := int(p.hint.Load())
	if t, err := time.Parse(textLayouts[h], s); err == nil {
		return t, true
	}
	for i, layout := range textLayouts {
		if i == h {
			continue
		}
		if t, err := time.Parse(layout, s); err == nil {
			p.hint.Store(int32(i))
			return t, true
		}
	}
	return time.Time{}, false
}

// goString cuts what follows the numeric offset of time.Time.String's
// form, "2006-01-02 15:04:05.999999999 -0700 MST m=+0.000000001": the
// zone's abbreviation (which can be anything, "+0545" among them) and
// the monotonic reading. Other forms are returned unchanged.
func goString(s string) string {
	f := strings.SplitN(s, " ", 4)
	if len(f) < 4 || !isOffset(f[2]) {
		return s
	}
	return s[:len(f[0])+len(f[1])+len(f[2])+2]
}

// isOffset reports a numeric UTC offset of the form ±hhmm.
func isOffset(s string) bool {
	if len(s) != 5 || (s[0] != '+' && s[0] != '-') {
		return false
	}
	for i := 1; i < 5; i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

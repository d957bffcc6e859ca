package sqltarget

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/stewardlabs/steward/sqldialect"
)

// Epoch says what the numbers of an integer time column count: units
// since 1970-01-01 00:00:00 UTC.
type Epoch int

// The epochs an integer TimeColumn can count in.
const (
	// UnixSeconds: seconds, as time.Time.Unix returns (and as
	// modernc.org/sqlite writes times with _time_integer_format=unix).
	UnixSeconds Epoch = iota + 1
	// UnixMilliseconds: milliseconds, as time.Time.UnixMilli returns
	// (JavaScript's Date.now()).
	UnixMilliseconds
	// UnixMicroseconds: microseconds, as time.Time.UnixMicro returns.
	UnixMicroseconds
	// UnixNanoseconds: nanoseconds, as time.Time.UnixNano returns.
	UnixNanoseconds
)

// String returns the epoch's name, such as "UnixSeconds".
func (e Epoch) String() string {
	switch e {
	case UnixSeconds:
		return "UnixSeconds"
	case UnixMilliseconds:
		return "UnixMilliseconds"
	case UnixMicroseconds:
		return "UnixMicroseconds"
	case UnixNanoseconds:
		return "UnixNanoseconds"
	case 0:
		return "none"
	}
	return fmt.Sprintf("Epoch(%d)", int(e))
}

// perSecond returns how many units of e make a second.
func (e Epoch) perSecond() int64 {
	switch e {
	case UnixSeconds:
		return 1
	case UnixMilliseconds:
		return 1e3
	case UnixMicroseconds:
		return 1e6
	case UnixNanoseconds:
		return 1e9
	}
	return 0
}

// kind is how a time column stores its times, which decides how the
// cutoff is written and compared.
type kind int

const (
	// kindTimestamptz is PostgreSQL's timestamptz: instants to the
	// microsecond.
	kindTimestamptz kind = iota + 1
	// kindTimestamp is PostgreSQL's timestamp (without time zone), read
	// as UTC.
	kindTimestamp
	// kindDate is PostgreSQL's date: a day, taken to begin at midnight
	// UTC.
	kindDate
	// kindInteger is an integer count of Epoch units.
	kindInteger
	// kindText is SQLite text in one of the formats parseTime reads,
	// whose order as text is not the order of the instants it names.
	kindText
)

func (k kind) String() string {
	switch k {
	case kindTimestamptz:
		return "timestamptz"
	case kindTimestamp:
		return "timestamp (read as UTC)"
	case kindDate:
		return "date (days from midnight UTC)"
	case kindInteger:
		return "integer"
	case kindText:
		return "text"
	}
	return "unknown"
}

// sqliteAffinity returns the affinity SQLite gives a column declared
// with type decl (https://sqlite.org/datatype3.html, 3.1).
func sqliteAffinity(decl string) string {
	u := strings.ToUpper(decl)
	switch {
	case strings.Contains(u, "INT"):
		return "INTEGER"
	case strings.Contains(u, "CHAR"), strings.Contains(u, "CLOB"), strings.Contains(u, "TEXT"):
		return "TEXT"
	case u == "", strings.Contains(u, "BLOB"):
		return "BLOB"
	case strings.Contains(u, "REAL"), strings.Contains(u, "FLOA"), strings.Contains(u, "DOUB"):
		return "REAL"
	}
	return "NUMERIC"
}

// classify decides how column (declared with type decl) is compared, or
// says why it cannot be.
func classify(d sqldialect.Dialect, decl string, e Epoch) (kind, string) {
	if e != 0 && e.perSecond() == 0 {
		return 0, fmt.Sprintf("Epoch %v is not one of UnixSeconds, UnixMilliseconds, UnixMicroseconds, UnixNanoseconds", e)
	}
	if d == sqldialect.Postgres {
		switch decl {
		case "int2", "int4", "int8":
			if e == 0 {
				return 0, "it holds integers: set Table.Epoch to say whether they count seconds or milliseconds (UnixSeconds, UnixMilliseconds, ...)"
			}
			return kindInteger, ""
		case "timestamptz", "timestamp", "date":
			if e != 0 {
				return 0, "Table.Epoch is only for integer columns"
			}
			return map[string]kind{"timestamptz": kindTimestamptz, "timestamp": kindTimestamp, "date": kindDate}[decl], ""
		}
		return 0, "sqltarget compares timestamptz, timestamp, date and integer columns (with Table.Epoch) on PostgreSQL"
	}
	u := strings.ToUpper(decl)
	dated := strings.Contains(u, "DATE") || strings.Contains(u, "TIME")
	switch aff := sqliteAffinity(decl); {
	case aff == "INTEGER" || (aff == "NUMERIC" && dated && e != 0):
		if e == 0 {
			return 0, "it holds integers: set Table.Epoch to say whether they count seconds or milliseconds (UnixSeconds, UnixMilliseconds, ...)"
		}
		return kindInteger, ""
	case aff == "TEXT" || (aff == "NUMERIC" && dated):
		if e != 0 {
			return 0, "Table.Epoch is only for columns of integers; this one holds text"
		}
		return kindText, ""
	}
	return 0, "sqltarget compares, on SQLite, columns declared TEXT, DATE, DATETIME or TIMESTAMP (times as text) and INTEGER (with Table.Epoch)"
}

// ceilMicro rounds t up to the microsecond, so that "column < bound"
// over microsecond values is exactly "column < t".
func ceilMicro(t time.Time) time.Time {
	u := t.Truncate(time.Microsecond)
	if u.Before(t) {
		u = u.Add(time.Microsecond)
	}
	return u
}

// ceilDay rounds t up to midnight UTC.
func ceilDay(t time.Time) time.Time {
	t = t.UTC()
	u := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
	if u.Before(t) {
		u = u.AddDate(0, 0, 1)
	}
	return u
}

// ceilEpoch returns the smallest count of e's units that is not before
// t, so that "column < bound" over integers is exactly "column < t".
func ceilEpoch(t time.Time, e Epoch) int64 {
	per := e.perSecond()
	unit := int64(time.Second) / per
	sec, ns := t.Unix(), int64(t.Nanosecond())
	n := ns / unit
	if ns%unit != 0 {
		n++
	}
	if sec > math.MaxInt64/per-1 {
		return math.MaxInt64
	}
	if sec < math.MinInt64/per+1 {
		return math.MinInt64
	}
	return sec*per + n
}

// maxOffset bounds the UTC offset a text time can carry; RFC 3339 and
// Go allow up to ±23:59.
const maxOffset = 24 * time.Hour

// textBounds returns, for text times, a prefix below which every row
// (whatever its offset) is past cutoff, and one at or above which none
// is. All the formats parseTime reads begin with the local date
// (YYYY-MM-DD), so comparing text with a bare date compares dates.
func textBounds(cutoff time.Time) (low, high string) {
	c := cutoff.UTC()
	return c.Add(-2 * maxOffset).Format(time.DateOnly), c.Add(2 * maxOffset).Format(time.DateOnly)
}

// dateGlob matches the text every format parseTime reads begins with:
// the local date, YYYY-MM-DD.
const dateGlob = "[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]*"

// bound returns the value that "column < bound" compares with: the
// cutoff in the column's own storage.
func (t *Target) bound(cutoff time.Time) any {
	switch t.kind {
	case kindTimestamptz, kindTimestamp:
		return ceilMicro(cutoff).UTC()
	case kindDate:
		return ceilDay(cutoff)
	case kindInteger:
		return ceilEpoch(cutoff, t.table.Epoch)
	}
	_, high := textBounds(cutoff)
	return high
}

// less orders two values read from the time column, for the batch
// cursor; values of different types (which only a broken column holds)
// compare as not less.
func less(a, b any) bool {
	switch x := a.(type) {
	case time.Time:
		if y, ok := b.(time.Time); ok {
			return x.Before(y)
		}
	case int64:
		switch y := b.(type) {
		case int64:
			return x < y
		case float64:
			return float64(x) < y
		}
	case float64:
		switch y := b.(type) {
		case int64:
			return x < float64(y)
		case float64:
			return x < y
		}
	case string:
		if y, ok := b.(string); ok {
			return x < y
		}
	case []byte:
		if y, ok := b.([]byte); ok {
			return string(x) < string(y)
		}
	}
	return false
}

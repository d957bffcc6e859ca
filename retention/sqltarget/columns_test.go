package sqltarget_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stewardlabs/steward/retention/sqltarget"
	"github.com/stewardlabs/steward/sqldialect"
	"github.com/stewardlabs/steward/sqlstore/sqltest"
)

// cutoff is between whole seconds and milliseconds, so rounding the
// cutoff the wrong way for any storage moves a row across it.
var cutoff = time.Date(2026, 3, 10, 12, 0, 0, 250_300_400, time.UTC)

var (
	est   = time.FixedZone("EST", -5*3600)
	tokyo = time.FixedZone("JST", 9*3600)
	nepal = time.FixedZone("+0545", 5*3600+45*60)
	fiji  = time.FixedZone("-1130", -(11*3600 + 30*60))
)

// columnCase is one way an application stores times.
type columnCase struct {
	name    string
	d       sqldialect.Dialect
	colType string // as declared in CREATE TABLE
	epoch   sqltarget.Epoch
	// res is the storage's resolution: rows are placed on multiples of it.
	res time.Duration
	// zones are the offsets rows are written in; nil means UTC only.
	zones []*time.Location
	// write turns an instant, seen in zone, into what the app stores.
	write func(at time.Time) any
}

func goString(at time.Time) any { return at }                               // modernc.org/sqlite writes t.String()
func withMono(at time.Time) any { return at.String() + " m=+12.000000001" } // t.String() of time.Now()
func rfc3339(at time.Time) any  { return at.Format(time.RFC3339Nano) }      // apps, JavaScript
func rfc3339s(at time.Time) any { return at.Format(time.RFC3339) }          // to the second
func sqliteFmt(at time.Time) any {
	return at.Format("2006-01-02 15:04:05.999999999-07:00") // _time_format=sqlite, mattn/go-sqlite3
}
func datetimeUTC(at time.Time) any { return at.UTC().Format(time.DateTime) } // SQLite's datetime('now')
func dateOnly(at time.Time) any    { return at.UTC().Format(time.DateOnly) }
func unixS(at time.Time) any       { return at.Unix() }
func unixMS(at time.Time) any      { return at.UnixMilli() }
func unixUS(at time.Time) any      { return at.UnixMicro() }
func unixNS(at time.Time) any      { return at.UnixNano() }
func utcWall(at time.Time) any     { return at.UTC() }

var allZones = []*time.Location{time.UTC, est, tokyo, nepal, fiji}

var columnCases = []columnCase{
	{"sqlite TIMESTAMP, the driver's own time.Time text", sqldialect.SQLite, "TIMESTAMP", 0, time.Nanosecond, allZones, goString},
	{"sqlite DATETIME, time.Time text with a monotonic reading", sqldialect.SQLite, "DATETIME", 0, time.Nanosecond, allZones, withMono},
	{"sqlite TEXT, RFC 3339 with nanoseconds", sqldialect.SQLite, "TEXT", 0, time.Nanosecond, allZones, rfc3339},
	{"sqlite TEXT, RFC 3339 to the second", sqldialect.SQLite, "TEXT", 0, time.Second, allZones, rfc3339s},
	{"sqlite VARCHAR(40), the sqlite time format with offset", sqldialect.SQLite, "VARCHAR(40)", 0, time.Nanosecond, allZones, sqliteFmt},
	{"sqlite TIMESTAMP, datetime() text in UTC", sqldialect.SQLite, "TIMESTAMP", 0, time.Second, nil, datetimeUTC},
	{"sqlite DATE, a date", sqldialect.SQLite, "DATE", 0, 24 * time.Hour, nil, dateOnly},
	{"sqlite INTEGER, unix seconds", sqldialect.SQLite, "INTEGER", sqltarget.UnixSeconds, time.Second, nil, unixS},
	{"sqlite BIGINT, unix milliseconds", sqldialect.SQLite, "BIGINT", sqltarget.UnixMilliseconds, time.Millisecond, nil, unixMS},
	{"sqlite INTEGER, unix microseconds", sqldialect.SQLite, "INTEGER", sqltarget.UnixMicroseconds, time.Microsecond, nil, unixUS},
	{"sqlite INTEGER, unix nanoseconds", sqldialect.SQLite, "INTEGER", sqltarget.UnixNanoseconds, time.Nanosecond, nil, unixNS},
	{"sqlite DATETIME holding unix seconds", sqldialect.SQLite, "DATETIME", sqltarget.UnixSeconds, time.Second, nil, unixS},
	{"postgres timestamptz", sqldialect.Postgres, "TIMESTAMPTZ", 0, time.Microsecond, allZones, goString},
	{"postgres timestamp, UTC", sqldialect.Postgres, "TIMESTAMP", 0, time.Microsecond, nil, utcWall},
	{"postgres date", sqldialect.Postgres, "DATE", 0, 24 * time.Hour, nil, utcWall},
	{"postgres bigint, unix seconds", sqldialect.Postgres, "BIGINT", sqltarget.UnixSeconds, time.Second, nil, unixS},
	{"postgres integer, unix seconds", sqldialect.Postgres, "INTEGER", sqltarget.UnixSeconds, time.Second, nil, unixS},
	{"postgres bigint, unix milliseconds", sqldialect.Postgres, "BIGINT", sqltarget.UnixMilliseconds, time.Millisecond, nil, unixMS},
	{"postgres bigint, unix nanoseconds", sqldialect.Postgres, "BIGINT", sqltarget.UnixNanoseconds, time.Nanosecond, nil, unixNS},
}

// floorTo and ceilTo place an instant on the storage's resolution (days
// from midnight UTC).
func floorTo(t time.Time, res time.Duration) time.Time {
	if res == 24*time.Hour {
		return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
	}
	return t.Truncate(res)
}

// instants returns the rows of a case: far past, 3 h past, the last
// representable instant before the cutoff, the first at or after it,
// 3 h inside, each labelled, and whether it is expired.
func instants(res time.Duration) map[string]time.Time {
	justPast := floorTo(cutoff, res)
	if !justPast.Before(cutoff) {
		justPast = justPast.Add(-res)
	}
	justInside := floorTo(cutoff, res)
	if justInside.Before(cutoff) {
		justInside = justInside.Add(res)
	}
	m := map[string]time.Time{
		"30 days past":  floorTo(cutoff.Add(-30*24*time.Hour), res),
		"just past":     justPast,
		"just inside":   justInside,
		"2 days inside": floorTo(cutoff.Add(48*time.Hour), res),
	}
	if res < time.Hour {
		m["3 h past"] = floorTo(cutoff.Add(-3*time.Hour), res)
		m["3 h inside"] = floorTo(cutoff.Add(3*time.Hour), res)
	}
	return m
}

// TestEveryColumnTypeAndFormat writes rows just past and just inside the
// cutoff, and hours and days either side, in every storage and (for text
// and timestamptz) in zones from -11:30 to +09:00, then checks that Count
// counts exactly the expired ones and that Purge, in small batches,
// deletes exactly those and reports as many; with and without a legal
// hold on half the rows.
func TestEveryColumnTypeAndFormat(t *testing.T) {
	sqltest.Each(t, func(t *testing.T, db *sql.DB, d sqldialect.Dialect) {
		ctx := context.Background()
		n := 0
		for _, tc := range columnCases {
			if tc.d != d {
				continue
			}
			for _, mode := range []struct {
				holds, anonymise bool
			}{{false, false}, {true, false}, {true, true}} {
				holds := mode.holds
				n++
				name := tc.name
				if holds {
					name += ", half held"
				}
				if mode.anonymise {
					name += ", anonymised"
				}
				t.Run(name, func(t *testing.T) {
					table := fmt.Sprintf("times_%d", n)
					key := "id INTEGER PRIMARY KEY"
					if d == sqldialect.Postgres {
						key = "id BIGSERIAL PRIMARY KEY"
					}
					for _, s := range []string{
						fmt.Sprintf(`CREATE TABLE %s (%s, label TEXT NOT NULL, user_id TEXT, at %s)`, table, key, tc.colType),
						fmt.Sprintf(`CREATE INDEX %s_at ON %s (at)`, table, table),
					} {
						if _, err := db.ExecContext(ctx, s); err != nil {
							t.Fatal(err)
						}
					}
					zones := tc.zones
					if zones == nil {
						zones = []*time.Location{time.UTC}
					}
					var wantLeft, wantAnonymised, all []string
					wantExpired := 0
					i := 0
					for what, at := range instants(tc.res) {
						for _, z := range zones {
							for _, user := range []string{"user_a", "user_held", ""} {
								i++
								label := fmt.Sprintf("%s in %s of %q", what, z, user)
								var subject any
								if user != "" {
									subject = user
								}
								if _, err := db.ExecContext(ctx, d.Rebind(`INSERT INTO `+table+` (label, user_id, at) VALUES (?, ?, ?)`),
									label, subject, tc.write(at.In(z))); err != nil {
									t.Fatal(err)
								}
								all = append(all, label)
								switch {
								case mode.anonymise && user == "":
									// Nothing to anonymise.
								case at.Before(cutoff) && !(holds && user == "user_held"):
									wantExpired++
									if mode.anonymise {
										wantAnonymised = append(wantAnonymised, label)
									}
									continue
								}
								wantLeft = append(wantLeft, label)
							}
						}
					}
					// A row without a time never expires.
					if _, err := db.ExecContext(ctx, `INSERT INTO `+table+` (label, user_id) VALUES ('no time', 'user_a')`); err != nil {
						t.Fatal(err)
					}
					wantLeft = append(wantLeft, "no time")
					var exclude []string
					if holds {
						exclude = []string{"user_b", "user_held"}
					}
					tg, err := sqltarget.New(ctx, db, d, sqltarget.Table{Name: table, TimeColumn: "at", SubjectColumn: "user_id", Epoch: tc.epoch})
					if err != nil {
						t.Fatal(err)
					}
					count, purge := tg.Count, tg.Purge
					if mode.anonymise {
						count, purge = tg.CountIdentified, tg.Anonymise
					}
					if got, err := count(ctx, cutoff, exclude); err != nil || got != wantExpired {
						t.Errorf("Count = %d, %v; want %d", got, err, wantExpired)
					}
					purged := 0
					for range 100 {
						got, err := purge(ctx, cutoff, 4, exclude)
						if err != nil {
							t.Fatal(err)
						}
						if got > 4 {
							t.Errorf("a batch of 4 purged %d", got)
						}
						if got == 0 {
							break
						}
						purged += got
					}
					if purged != wantExpired {
						t.Errorf("purged %d, want %d", purged, wantExpired)
					}
					if mode.anonymise {
						if diff := cmp.Diff(sorted(wantAnonymised), labels(t, db, table, "user_id IS NULL AND label NOT LIKE '%\"\"'")); diff != "" {
							t.Errorf("rows anonymised (-want +got):\n%s", diff)
						}
						wantLeft = all
						wantLeft = append(wantLeft, "no time")
					}
					if diff := cmp.Diff(sorted(wantLeft), labels(t, db, table, "")); diff != "" {
						t.Errorf("rows left (-want +got):\n%s", diff)
					}
					if got, err := count(ctx, cutoff, exclude); err != nil || got != 0 {
						t.Errorf("Count after the purge = %d, %v; want 0", got, err)
					}
				})
			}
		}
	})
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

func labels(t *testing.T, db *sql.DB, table, where string) []string {
	t.Helper()
	if where != "" {
		where = " WHERE " + where
	}
	rows, err := db.Query(`SELECT label FROM ` + table + where + ` ORDER BY label`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		var l string
		if err := rows.Scan(&l); err != nil {
			t.Fatal(err)
		}
		got = append(got, l)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return sorted(got)
}

// TestUnsupportedColumnsAreRefused: New refuses, naming the column and
// its declared type, every time column it could not compare correctly.
func TestUnsupportedColumnsAreRefused(t *testing.T) {
	sqltest.Each(t, func(t *testing.T, db *sql.DB, d sqldialect.Dialect) {
		ctx := context.Background()
		type refusal struct {
			colType string
			epoch   sqltarget.Epoch
			says    string // in the error, besides the column's name
		}
		refusals := map[sqldialect.Dialect][]refusal{
			sqldialect.SQLite: {
				{"REAL", 0, `"REAL"`},
				{"DOUBLE", sqltarget.UnixSeconds, `"DOUBLE"`},
				{"BLOB", 0, `"BLOB"`},
				{"", 0, "declared without a type"},
				{"NUMERIC", 0, `"NUMERIC"`},
				{"BOOLEAN", 0, `"BOOLEAN"`},
				{"INTEGER", 0, "set Table.Epoch"},
				{"BIGINT", 0, "set Table.Epoch"},
				{"TEXT", sqltarget.UnixSeconds, "only for columns of integers"},
				{"INTEGER", sqltarget.Epoch(9), "Epoch(9)"},
			},
			sqldialect.Postgres: {
				{"TEXT", 0, `"text"`},
				{"VARCHAR(40)", 0, `"varchar"`},
				{"NUMERIC", sqltarget.UnixSeconds, `"numeric"`},
				{"DOUBLE PRECISION", sqltarget.UnixSeconds, `"float8"`},
				{"JSONB", 0, `"jsonb"`},
				{"TIME", 0, `"time"`},
				{"BIGINT", 0, "set Table.Epoch"},
				{"TIMESTAMPTZ", sqltarget.UnixMilliseconds, "only for integer columns"},
			},
		}
		for i, r := range refusals[d] {
			t.Run(fmt.Sprintf("%s epoch %v", r.colType, r.epoch), func(t *testing.T) {
				table := fmt.Sprintf("refused_%d", i)
				if _, err := db.ExecContext(ctx, fmt.Sprintf(`CREATE TABLE %s (id INTEGER PRIMARY KEY, made_at %s)`, table, r.colType)); err != nil {
					t.Fatal(err)
				}
				_, err := sqltarget.New(ctx, db, d, sqltarget.Table{Name: table, TimeColumn: "made_at", Epoch: r.epoch})
				if !errors.Is(err, sqltarget.ErrUnsupportedColumn) || !errors.Is(err, sqltarget.ErrInvalidTable) {
					t.Fatalf("New = %v, want ErrUnsupportedColumn and ErrInvalidTable", err)
				}
				for _, want := range []string{`"made_at"`, table, r.says} {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("error %q does not say %s", err, want)
					}
				}
			})
		}
	})
}

// TestUnreadableTimesAreNotDeleted: a text time in no known format fails
// the batch before anything of it is deleted, and Count fails alike for
// one it has to read (within two days of the cutoff).
func TestUnreadableTimesAreNotDeleted(t *testing.T) {
	db := sqltest.Open(t, sqldialect.SQLite)
	ctx := context.Background()
	for _, s := range []string{
		`CREATE TABLE log (id INTEGER PRIMARY KEY, user_id TEXT, at TIMESTAMP)`,
		`INSERT INTO log (user_id, at) VALUES ('user_a', '2026-01-01 10:00:00'), ('user_a', '2026-03-10 soon'), ('user_a', '2026-01-03 10:00:00')`,
	} {
		if _, err := db.Exec(s); err != nil {
			t.Fatal(err)
		}
	}
	tg, err := sqltarget.New(ctx, db, sqldialect.SQLite, sqltarget.Table{Name: "log", TimeColumn: "at", SubjectColumn: "user_id"})
	if err != nil {
		t.Fatal(err)
	}
	for _, exclude := range [][]string{nil, {"user_held"}} {
		if n, err := tg.Purge(ctx, cutoff, 10, exclude); !errors.Is(err, sqltarget.ErrUnreadableTime) || n != 0 {
			t.Errorf("Purge = %d, %v; want 0 and ErrUnreadableTime", n, err)
		}
	}
	if n, err := tg.Count(ctx, cutoff, nil); !errors.Is(err, sqltarget.ErrUnreadableTime) {
		t.Errorf("Count = %d, %v; want ErrUnreadableTime", n, err)
	}
	var left int
	if err := db.QueryRow(`SELECT count(*) FROM log`).Scan(&left); err != nil || left != 3 {
		t.Errorf("%d rows left, %v; want all 3", left, err)
	}
	// An integer among text times is no time either.
	if _, err := db.Exec(`UPDATE log SET at = 1700000000 WHERE at = '2026-03-10 soon'`); err != nil {
		t.Fatal(err)
	}
	if _, err := tg.Purge(ctx, cutoff, 10, nil); !errors.Is(err, sqltarget.ErrUnreadableTime) || !strings.Contains(err.Error(), "an integer") {
		t.Errorf("Purge = %v; want ErrUnreadableTime saying the row holds an integer", err)
	}
}

// TestCountReadsWhatSortsBelowEveryDate: SQLite sorts integers and reals
// before any text, and text such as "1700000000" or "03/01/2026" before
// every date, so such a value lies below the range Count leaves to the
// database. Count must not count it as expired: Purge fails on it, and a
// dry run must not report rows that the real run would refuse (an hour-old
// unix time would otherwise be "expired" by a 90-day policy).
func TestCountReadsWhatSortsBelowEveryDate(t *testing.T) {
	hourAgo := cutoff.Add(90*24*time.Hour - time.Hour)
	for _, c := range []struct {
		name, colType string
		value         any
		want          string // in Count's error
	}{
		{"unix seconds in a TIMESTAMP column", "TIMESTAMP", hourAgo.Unix(), "an integer"},
		{"unix seconds in a TEXT column", "TEXT", hourAgo.Unix(), "none of the time formats"},
		{"a real in a DATETIME column", "DATETIME", 2461000.5, "a real"},
		{"a US date in a TEXT column", "TEXT", "03/01/2026", "none of the time formats"},
	} {
		t.Run(c.name, func(t *testing.T) {
			db := sqltest.Open(t, sqldialect.SQLite)
			ctx := context.Background()
			if _, err := db.Exec(`CREATE TABLE log (id INTEGER PRIMARY KEY, user_id TEXT, at ` + c.colType + `)`); err != nil {
				t.Fatal(err)
			}
			if _, err := db.Exec(`INSERT INTO log (user_id, at) VALUES ('user_a', '2026-01-01 10:00:00'), ('user_b', ?)`, c.value); err != nil {
				t.Fatal(err)
			}
			tg, err := sqltarget.New(ctx, db, sqldialect.SQLite, sqltarget.Table{Name: "log", TimeColumn: "at", SubjectColumn: "user_id"})
			if err != nil {
				t.Fatal(err)
			}
			for _, exclude := range [][]string{nil, {"user_b"}} {
				if _, err := tg.Purge(ctx, cutoff, 10, exclude); !errors.Is(err, sqltarget.ErrUnreadableTime) {
					t.Errorf("Purge(exclude %v) = %v; want ErrUnreadableTime", exclude, err)
				}
				if n, err := tg.Count(ctx, cutoff, exclude); !errors.Is(err, sqltarget.ErrUnreadableTime) || !strings.Contains(err.Error(), c.want) {
					t.Errorf("Count(exclude %v) = %d, %v; want ErrUnreadableTime saying %q, as Purge fails", exclude, n, err, c.want)
				}
			}
		})
	}
	t.Run("dates well past the cutoff are still counted", func(t *testing.T) {
		db := sqltest.Open(t, sqldialect.SQLite)
		ctx := context.Background()
		if _, err := db.Exec(`CREATE TABLE log (id INTEGER PRIMARY KEY, user_id TEXT, at TEXT)`); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec(`INSERT INTO log (user_id, at) VALUES ('user_a', '2025-01-01'), ('user_b', '2025-06-01T10:00:00+09:00'), ('user_b', ?), ('user_c', ?)`,
			cutoff.Add(-time.Hour).In(tokyo), cutoff.Add(time.Hour).In(est)); err != nil {
			t.Fatal(err)
		}
		tg, err := sqltarget.New(ctx, db, sqldialect.SQLite, sqltarget.Table{Name: "log", TimeColumn: "at", SubjectColumn: "user_id"})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			exclude []string
			want    int
		}{{nil, 3}, {[]string{"user_b"}, 1}, {[]string{"user_a", "user_b"}, 0}} {
			if n, err := tg.Count(ctx, cutoff, c.exclude); err != nil || n != c.want {
				t.Errorf("Count(exclude %v) = %d, %v; want %d", c.exclude, n, err, c.want)
			}
		}
	})
}

// TestTextInAColumnOfIntegers: SQLite stores what it cannot read as a
// number as text, even in an INTEGER column (a time.Time passed to one
// becomes its String()), and sorts it after every number, so no cutoff
// reaches it. Count, Purge and Anonymise fail on such a row instead of
// keeping it for ever unseen.
func TestTextInAColumnOfIntegers(t *testing.T) {
	old := cutoff.Add(-200 * 24 * time.Hour)
	for _, c := range []struct {
		name, colType string
		value         any
		want          string
	}{
		{"a time.Time in an INTEGER column", "INTEGER", old, "text"},
		{"RFC 3339 text in a BIGINT column", "BIGINT", old.Format(time.RFC3339), "text"},
		{"a blob in a TIMESTAMP column of numbers", "TIMESTAMP", []byte{1, 2, 3}, "blob"},
	} {
		t.Run(c.name, func(t *testing.T) {
			db := sqltest.Open(t, sqldialect.SQLite)
			ctx := context.Background()
			for _, s := range []string{
				`CREATE TABLE log (id INTEGER PRIMARY KEY, user_id TEXT, at ` + c.colType + `)`,
				`CREATE INDEX log_at ON log (at)`,
			} {
				if _, err := db.Exec(s); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := db.Exec(`INSERT INTO log (user_id, at) VALUES ('user_a', ?), ('user_b', ?)`, old.Unix(), c.value); err != nil {
				t.Fatal(err)
			}
			tg, err := sqltarget.New(ctx, db, sqldialect.SQLite, sqltarget.Table{Name: "log", TimeColumn: "at", SubjectColumn: "user_id", Epoch: sqltarget.UnixSeconds})
			if err != nil {
				t.Fatal(err)
			}
			check := func(what string, n int, err error) {
				t.Helper()
				if !errors.Is(err, sqltarget.ErrUnreadableTime) || !strings.Contains(err.Error(), c.want) || n != 0 {
					t.Errorf("%s = %d, %v; want 0 and ErrUnreadableTime saying the row holds %s", what, n, err, c.want)
				}
			}
			n, err := tg.Count(ctx, cutoff, nil)
			check("Count", n, err)
			n, err = tg.Purge(ctx, cutoff, 10, nil)
			check("Purge", n, err)
			n, err = tg.Anonymise(ctx, cutoff, 10, nil)
			check("Anonymise", n, err)
			var left int
			if err := db.QueryRow(`SELECT count(*) FROM log WHERE user_id IS NOT NULL`).Scan(&left); err != nil || left != 2 {
				t.Errorf("%d rows left as they were, %v; want both", left, err)
			}
		})
	}
}

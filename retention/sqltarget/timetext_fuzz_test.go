package sqltarget

import (
	"testing"
	"time"
)

// FuzzParseTextTime checks the text time parser: it never panics; what
// it reads, written back as RFC 3339, reads as the same instant; and a
// time written in each form the drivers use (in any zone of whole
// minutes, to the nanosecond) reads back as that instant.
func FuzzParseTextTime(f *testing.F) {
	for _, s := range []string{
		"2026-08-23 18:00:09.654946774 +0000 UTC",
		"2026-08-23 18:00:09.654946774 +0000 UTC m=+0.000761527",
		"2026-12-01 15:50:27.00263988 -0300 -03",
		"2026-03-10T12:00:00+09:00", "2026-03-10 12:00:00Z", "2026-03-10", "2026-03-10 12:00",
		"", "2026-13-40", " m=", "2026-03-10 12:00:00 +0545 +0545 m=+1",
	} {
		f.Add(s, int64(0), 0)
	}
	f.Add("", int64(1_773_144_000_250_300_400), 5*60+45)
	f.Fuzz(func(t *testing.T, s string, ns int64, offset int) {
		var p parser
		if at, ok := p.parse(s); ok {
			again, ok := p.parse(at.Format(time.RFC3339Nano))
			if !ok || !again.Equal(at) {
				t.Fatalf("parse(%q) = %v, but its RFC 3339 form reads as %v, %v", s, at, again, ok)
			}
		}
		offset = offset % (24 * 60) * 60 // zones are whole minutes; text offsets carry no seconds
		at := time.Unix(0, ns).In(time.FixedZone("Z"+s, offset))
		for _, text := range []string{
			at.String(),
			at.Format("2006-01-02 15:04:05.999999999-07:00"),
			at.Format(time.RFC3339Nano),
		} {
			if at.Year() < 0 || at.Year() > 9999 || at.Location().String() != "Z"+s {
				return
			}
			got, ok := p.parse(text)
			if !ok || !got.Equal(at) {
				t.Fatalf("parse(%q) = %v, %v; want %v", text, got, ok, at)
			}
		}
	})
}

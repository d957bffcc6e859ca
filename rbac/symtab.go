package rbac

import (
	"hash/maphash"
	"math/bits"
)

// symtab maps the role or permission names of one compiled policy to
// their indexes. It is a cuckoo hash table, built once by Compile and
// read-only afterwards: every name has two candidate slots, taken from
// the two halves of one hash, and sits in one of them, so a lookup reads
// at most two slots, both known before either is read. No lookup probes
// further, so a name costs the same in a policy of five names as in one
// of thousands, and no name is slower than its neighbours.
//
// Names are hashed by their length and their first and last eight bytes,
// which for names of up to 16 bytes determine the name, so neither
// hashing nor comparing reads it byte by byte. Longer names replace the
// last eight bytes by a hash of the whole name and are compared in full.
type symtab struct {
	salt  uint64       // mixed into every hash; chosen while building
	seed  maphash.Seed // hashes names longer than 16 bytes
	mask  uint64       // len(slots)-1
	slots []slot
	names []string // by index, to compare long names in full
}

type slot struct {
	a, b uint64 // the name's key words (see key)
	n    int32  // the name's length; -1 in an empty slot, so nothing matches it
	val  int32  // the name's index
}

// newSymtab builds the table for names, which must be distinct. With
// four slots per name a build almost never fails; when one does (a
// cycle of evictions), another salt spreads the names differently, and
// every 16 failed salts the table doubles.
func newSymtab(names []string) symtab {
	for attempt := uint64(1); ; attempt++ {
		t := symtab{salt: attempt * 0x9e3779b97f4a7c15, seed: maphash.MakeSeed(), names: names}
		if t.build(4 << min(attempt/16, 8)) {
			return t
		}
	}
}

// build places every name with perName slots per name, or reports that
// evictions went round in circles.
func (t *symtab) build(perName uint64) bool {
	size := uint64(4)
	for size < perName*uint64(len(t.names)) {
		size *= 2
	}
	t.mask = size - 1
	t.slots = make([]slot, size)
	for i := range t.slots {
		t.slots[i] = slot{n: -1, val: -1}
	}
	for v, name := range t.names {
		a, b := t.key(name)
		cur := slot{a: a, b: b, n: int32(len(name)), val: int32(v)}
		// Take a free candidate; otherwise evict the occupant of the
		// first and move it to its other slot, and so on.
		i, _ := t.candidates(a, b, len(name))
		for kicks := 0; ; kicks++ {
			i1, i2 := t.candidates(cur.a, cur.b, int(cur.n))
			if t.slots[i1].val < 0 {
				t.slots[i1] = cur
				break
			}
			if t.slots[i2].val < 0 {
				t.slots[i2] = cur
				break
			}
			if kicks == 100 {
				return false
			}
			t.slots[i], cur = cur, t.slots[i]
			if j1, j2 := t.candidates(cur.a, cur.b, int(cur.n)); j1 == i {
				i = j2
			} else {
				i = j1
			}
		}
	}
	return true
}

// words packs a name into two words: its first and last eight bytes, or
// all its bytes when it is shorter than eight. For names of up to 16
// bytes the pair and the length determine the name, so lookups need no
// byte-by-byte comparison. Longer names need key instead.
func words(s string) (a, b uint64) {
	switch n := len(s); {
	case n >= 8:
		return load64(s[:8]), load64(s[n-8:])
	case n >= 4: // two overlapping four-byte loads cover every byte
		return uint64(load32(s[:4])) | uint64(load32(s[n-4:]))<<32, 0
	case n > 0:
		return uint64(s[0]) | uint64(s[n/2])<<8 | uint64(s[n-1])<<16, 0
	default:
		return 0, 0
	}
}

// key returns the words the table files s under: its words, except that
// names longer than 16 bytes get a hash of the whole name as their second
// word, so that names sharing their first and last eight bytes spread
// over the table too.
func (t *symtab) key(s string) (a, b uint64) {
	a, b = words(s)
	if len(s) > 16 {
		b = maphash.String(t.seed, s)
	}
	return a, b
}

// candidates returns the two slots a name with words a and b and length
// n may occupy.
func (t *symtab) candidates(a, b uint64, n int) (i1, i2 uint64) {
	// One 64×64→128-bit multiply of the two words, folded (wyhash's
	// mix): every output bit depends on every input bit.
	hi, lo := bits.Mul64(a^t.salt, b^uint64(n)^0xe7037ed1a0b428db)
	h := hi ^ lo
	return h & t.mask, h >> 32 & t.mask
}

func load64(s string) uint64 {
	_ = s[7]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}

func load32(s string) uint32 {
	_ = s[3]
	return uint32(s[0]) | uint32(s[1])<<8 | uint32(s[2])<<16 | uint32(s[3])<<24
}

// holds reports whether sl holds the name s, whose key words are a and b.
func (t *symtab) holds(sl *slot, s string, a, b uint64) bool {
	return sl.a == a && sl.b == b && int(sl.n) == len(s) && (len(s) <= 16 || t.names[sl.val] == s)
}

// find returns the index of the name s, whose key words are a and b, or -1.
// The table must not be empty.
func (t *symtab) find(s string, a, b uint64) int {
	i1, i2 := t.candidates(a, b, len(s))
	if sl := &t.slots[i1]; t.holds(sl, s, a, b) {
		return int(sl.val)
	}
	if sl := &t.slots[i2]; t.holds(sl, s, a, b) {
		return int(sl.val)
	}
	return -1
}

func (t *symtab) get(s string) (int, bool) {
	if len(t.slots) == 0 {
		return 0, false
	}
	a, b := t.key(s)
	v := t.find(s, a, b)
	return v, v >= 0
}

package rbac

import "math/bits"

// symtab maps the role and permission names of one compiled policy to
// their indexes. It is an open-addressing table with a cheap hash over a
// name's length and its first and last eight bytes, built once by Compile
// and read-only afterwards. For the short names policies use, a lookup is
// a few loads and one string comparison, which is what keeps Can well
// below a general-purpose map lookup. Names that share their first and
// last eight bytes still resolve correctly, through probing.
type symtab struct {
	mask  uint64
	slots []slot
}

type slot struct {
	a, b uint64 // the name's first and last eight bytes (see words)
	n    int
	val  int32 // -1: empty
	key  string
}

func newSymtab(names []string) symtab {
	size := 4
	for size < 2*len(names) {
		size *= 2
	}
	t := symtab{mask: uint64(size - 1), slots: make([]slot, size)}
	for i := range t.slots {
		t.slots[i].val = -1
	}
	for v, name := range names {
		a, b := words(name)
		i := t.hash(a, b, len(name)) & t.mask
		for t.slots[i].val >= 0 {
			i = (i + 1) & t.mask
		}
		t.slots[i] = slot{a: a, b: b, n: len(name), val: int32(v), key: name}
	}
	return t
}

// words packs a name into two words: its first and last eight bytes, or
// all its bytes when it is shorter than eight. For names of up to 16
// bytes the pair and the length determine the name, so lookups need no
// byte-by-byte comparison.
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

func (t *symtab) hash(a, b uint64, n int) uint64 {
	// Fold the words together, then the murmur3 finaliser spreads every
	// input bit over the low bits the mask keeps.
	h := a ^ bits.RotateLeft64(b, 29) ^ uint64(n)<<58
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	return h
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

func (t *symtab) get(s string) (int, bool) {
	if len(t.slots) == 0 {
		return 0, false
	}
	a, b := words(s)
	n := len(s)
	i := t.hash(a, b, n) & t.mask
	for {
		sl := &t.slots[i]
		if sl.val < 0 {
			return 0, false
		}
		if sl.a == a && sl.b == b && sl.n == n && (n <= 16 || sl.key == s) {
			return int(sl.val), true
		}
		i = (i + 1) & t.mask
	}
}

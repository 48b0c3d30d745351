package layer

import (
	"math/rand/v2"
	"testing"
)

// The set against a map, under random adds and removes of colliding keys.
func TestHashSet(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var s hashSet
	m := map[uint64]bool{}
	for i := range 200000 {
		// Few distinct low bits, so that probes collide; 0 included.
		h := uint64(r.IntN(5000)) << 40 * uint64(1+i%3)
		switch r.IntN(3) {
		case 0, 1:
			s.add(h)
			m[h] = true
		case 2:
			s.remove(h)
			delete(m, h)
		}
		if k := uint64(r.IntN(5000)) << 40; s.has(k) != m[k] {
			t.Fatalf("step %d: has(%x) = %v, want %v", i, k, s.has(k), m[k])
		}
	}
	if s.n != len(m) {
		t.Errorf("%d entries, want %d", s.n, len(m))
	}
	for k := range m {
		if !s.has(k) {
			t.Fatalf("lost %x", k)
		}
	}
}

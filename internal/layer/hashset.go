package layer

// hashSet is a set of 64-bit path hashes with open addressing: 8 bytes a
// slot, at most three quarters full, so 11 to 21 bytes an entry; a map
// costs about 36. A layer can have millions of files.
type hashSet struct {
	slots []uint64 // 0 is empty; the hash 0 is stored as 1
	n     int
}

func (s *hashSet) slot(h uint64) uint64 {
	if h == 0 {
		return 1
	}
	return h
}

// has reports whether h is in the set.
func (s *hashSet) has(h uint64) bool {
	if len(s.slots) == 0 {
		return false
	}
	h = s.slot(h)
	mask := uint64(len(s.slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		switch s.slots[i] {
		case h:
			return true
		case 0:
			return false
		}
	}
}

// add adds h.
func (s *hashSet) add(h uint64) {
	if (s.n+1)*4 > len(s.slots)*3 {
		s.grow()
	}
	h = s.slot(h)
	mask := uint64(len(s.slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		switch s.slots[i] {
		case h:
			return
		case 0:
			s.slots[i] = h
			s.n++
			return
		}
	}
}

// remove removes h (backward-shift deletion keeps probes short).
func (s *hashSet) remove(h uint64) {
	if len(s.slots) == 0 {
		return
	}
	h = s.slot(h)
	mask := uint64(len(s.slots) - 1)
	i := h & mask
	for ; s.slots[i] != h; i = (i + 1) & mask {
		if s.slots[i] == 0 {
			return
		}
	}
	for j := (i + 1) & mask; s.slots[j] != 0; j = (j + 1) & mask {
		home := s.slots[j] & mask
		// Move slots[j] into the hole at i unless its home lies in (i, j].
		if (j > i && (home <= i || home > j)) || (j < i && home <= i && home > j) {
			s.slots[i] = s.slots[j]
			i = j
		}
	}
	s.slots[i] = 0
	s.n--
}

func (s *hashSet) grow() {
	old := s.slots
	s.slots = make([]uint64, max(64, 2*len(old)))
	s.n = 0
	for _, h := range old {
		if h != 0 {
			s.add(h)
		}
	}
}

//go:build linux

package rootfs

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// stack answers what the lower layers show at a path, as overlayfs would
// merge them, without mounting them. The directories are the cache's, which
// nothing changes once made, so plain path lookups are safe: a path is only
// looked up in a layer where each of its parents is a real directory.
type stack struct {
	dirs    []string // top first
	overlay bool     // whiteouts and opaque directories in overlayfs form
	memo    map[string][]int
}

func newStack(dirs []string, overlay bool) *stack {
	return &stack{dirs: dirs, overlay: overlay, memo: map[string][]int{".": allLayers(len(dirs))}}
}

func allLayers(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

func (s *stack) whiteout(st *unix.Stat_t) bool {
	return s.overlay && st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == 0
}

func (s *stack) opaque(p string) bool {
	return s.overlay && xattrIs(p, "trusted.overlay.opaque", "y")
}

// dirLayers returns the layers (top first) whose directory rel makes up the
// merged directory rel; none when the merged tree has no directory there.
func (s *stack) dirLayers(rel string) ([]int, error) {
	if ls, ok := s.memo[rel]; ok {
		return ls, nil
	}
	parent, err := s.dirLayers(parentOf(rel))
	if err != nil {
		return nil, err
	}
	var out []int
	for _, i := range parent {
		p := filepath.Join(s.dirs[i], rel)
		var st unix.Stat_t
		err := unix.Lstat(p, &st)
		if errors.Is(err, unix.ENOENT) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("rootfs: lower %s: %w", p, err)
		}
		if st.Mode&unix.S_IFMT != unix.S_IFDIR {
			break // a whiteout or a non-directory hides the layers below
		}
		out = append(out, i)
		if s.opaque(p) {
			break
		}
	}
	s.memo[rel] = out
	return out, nil
}

// lookup returns what the merged lower tree has at rel.
func (s *stack) lookup(rel string) (unix.Stat_t, bool, error) {
	var st unix.Stat_t
	i, ok, err := s.find(rel, &st)
	_ = i
	return st, ok, err
}

// path returns the lower path of what the merged tree shows at rel.
func (s *stack) path(rel string) (string, bool) {
	var st unix.Stat_t
	i, ok, err := s.find(rel, &st)
	if err != nil || !ok {
		return "", false
	}
	return filepath.Join(s.dirs[i], rel), true
}

func (s *stack) find(rel string, st *unix.Stat_t) (int, bool, error) {
	parent, err := s.dirLayers(parentOf(rel))
	if err != nil {
		return -1, false, err
	}
	for _, i := range parent {
		p := filepath.Join(s.dirs[i], rel)
		err := unix.Lstat(p, st)
		if errors.Is(err, unix.ENOENT) {
			continue
		}
		if err != nil {
			return -1, false, fmt.Errorf("rootfs: lower %s: %w", p, err)
		}
		if s.whiteout(st) {
			return -1, false, nil
		}
		return i, true, nil
	}
	return -1, false, nil
}

// list returns the entries of the merged lower directory rel, by name.
func (s *stack) list(rel string) (map[string]unix.Stat_t, error) {
	layers, err := s.dirLayers(rel)
	if err != nil {
		return nil, err
	}
	out := map[string]unix.Stat_t{}
	hidden := map[string]bool{}
	for _, i := range layers {
		d := filepath.Join(s.dirs[i], rel)
		f, err := os.Open(d)
		if err != nil {
			return nil, fmt.Errorf("rootfs: lower %s: %w", d, err)
		}
		names, err := f.Readdirnames(-1)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("rootfs: lower %s: %w", d, err)
		}
		for _, n := range names {
			if _, ok := out[n]; ok || hidden[n] {
				continue
			}
			var st unix.Stat_t
			if err := unix.Lstat(path.Join(d, n), &st); err != nil {
				return nil, fmt.Errorf("rootfs: lower %s: %w", path.Join(d, n), err)
			}
			if s.whiteout(&st) {
				hidden[n] = true
				continue
			}
			out[n] = st
		}
	}
	return out, nil
}

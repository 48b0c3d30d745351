//go:build linux

package sandbox

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// cgroup is the set of cgroup directories (one on cgroup v2, one per
// controller on v1) that hold one sandbox.
type cgroup struct{ dirs []string }

// cgroupMounts finds the cgroup file systems: the cgroup2 mount, and the
// v1 mount of each controller.
func cgroupMounts() (v2 string, v1 map[string]string, err error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", nil, err
	}
	defer f.Close()
	v1 = map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// id parent maj:min root mountpoint options [optional...] - fstype source superoptions
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		pf, qf := strings.Fields(pre), strings.Fields(post)
		if len(pf) < 5 || len(qf) < 3 {
			continue
		}
		mp := unescapeMountinfo(pf[4])
		switch qf[0] {
		case "cgroup2":
			if v2 == "" {
				v2 = mp
			}
		case "cgroup":
			for _, o := range strings.Split(qf[2], ",") {
				if o == "pids" || o == "memory" {
					if _, ok := v1[o]; !ok {
						v1[o] = mp
					}
				}
			}
		}
	}
	return v2, v1, sc.Err()
}

func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// ownCgroups reads /proc/self/cgroup: the v2 path ("" key) and the v1 path
// of each controller.
func ownCgroups() (map[string]string, error) {
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[0] == "0" && parts[1] == "" {
			out[""] = parts[2]
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			out[c] = parts[2]
		}
	}
	return out, nil
}

// newCgroup makes the cgroup <own cgroup>/<rel> with the limits l and moves
// pid into it. Each controller is taken from cgroup v2 when v2 has it, else
// from its v1 hierarchy; a limit neither can apply is an error.
func newCgroup(rel string, l Limits, pid int) (*cgroup, error) {
	var want []string
	if l.Pids > 0 {
		want = append(want, "pids")
	}
	if l.Memory > 0 {
		want = append(want, "memory")
	}
	if len(want) == 0 {
		return &cgroup{}, nil
	}
	v2, v1, err := cgroupMounts()
	if err != nil {
		return nil, err
	}
	own, err := ownCgroups()
	if err != nil {
		return nil, err
	}
	cg := &cgroup{}
	fail := func(err error) (*cgroup, error) {
		cg.remove()
		return nil, err
	}
	values := map[string][][2]string{
		"pids":   {{"pids.max", strconv.FormatInt(l.Pids, 10)}},
		"memory": {{"memory.max", strconv.FormatInt(l.Memory, 10)}},
	}
	var missing []string
	var v2Ctl []string
	if v2 != "" {
		if p, ok := own[""]; ok {
			parent := filepath.Join(v2, p)
			for _, c := range want {
				if enableV2(parent, filepath.Dir(rel), c) == nil {
					v2Ctl = append(v2Ctl, c)
				}
			}
			if len(v2Ctl) > 0 {
				dir := filepath.Join(parent, rel)
				if err := os.MkdirAll(dir, 0o755); err != nil {
					return fail(fmt.Errorf("cgroup v2: %w", err))
				}
				cg.dirs = append(cg.dirs, dir)
				for _, c := range v2Ctl {
					for _, kv := range values[c] {
						if err := os.WriteFile(filepath.Join(dir, kv[0]), []byte(kv[1]), 0); err != nil {
							return fail(fmt.Errorf("cgroup v2 %s: %w", kv[0], err))
						}
					}
				}
				if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0); err != nil {
					return fail(fmt.Errorf("cgroup v2: add the sandbox: %w", err))
				}
			}
		}
	}
	v1Values := map[string][][2]string{
		"pids":   {{"pids.max", strconv.FormatInt(l.Pids, 10)}},
		"memory": {{"memory.limit_in_bytes", strconv.FormatInt(l.Memory, 10)}},
	}
	for _, c := range want {
		if slices.Contains(v2Ctl, c) {
			continue
		}
		mp, ok := v1[c]
		p, ok2 := own[c]
		if !ok || !ok2 {
			missing = append(missing, c)
			continue
		}
		dir := filepath.Join(mp, p, rel)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			missing = append(missing, fmt.Sprintf("%s (%v)", c, err))
			continue
		}
		cg.dirs = append(cg.dirs, dir)
		for _, kv := range v1Values[c] {
			if err := os.WriteFile(filepath.Join(dir, kv[0]), []byte(kv[1]), 0); err != nil {
				return fail(fmt.Errorf("cgroup v1 %s: %w", kv[0], err))
			}
		}
		if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0); err != nil {
			return fail(fmt.Errorf("cgroup v1 %s: add the sandbox: %w", c, err))
		}
	}
	if len(missing) > 0 {
		return fail(fmt.Errorf("%w: cannot apply limits: no writable cgroup (v2 or v1) with the %s controller", ErrUnsupported, strings.Join(missing, ", ")))
	}
	return cg, nil
}

// enableV2 makes controller c available to the cgroups below
// parent/sub: it must be in parent's cgroup.controllers, and is enabled in
// the subtree_control of parent and of each directory down to sub.
func enableV2(parent, sub, c string) error {
	b, err := os.ReadFile(filepath.Join(parent, "cgroup.controllers"))
	if err != nil || !slices.Contains(strings.Fields(string(b)), c) {
		return fmt.Errorf("controller %s not available", c)
	}
	dir := parent
	for _, part := range append([]string{""}, strings.Split(filepath.Clean(sub), "/")...) {
		if part == "." {
			continue
		}
		dir = filepath.Join(dir, part)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, "cgroup.subtree_control"), []byte("+"+c), 0); err != nil {
			return err
		}
	}
	return nil
}

// remove deletes the cgroup directories once the processes in them are
// gone (the kernel kills a PID namespace's processes when its init exits,
// which takes a moment).
func (cg *cgroup) remove() error {
	var errs []error
	for i := len(cg.dirs) - 1; i >= 0; i-- {
		d := cg.dirs[i]
		var err error
		for try := 0; try < 200; try++ {
			err = os.Remove(d)
			if err == nil || !errors.Is(err, syscall.EBUSY) {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	cg.dirs = nil
	return errors.Join(errs...)
}

package sandbox

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strconv"
	"strings"

	"github.com/lading-dev/lading/internal/errdefs"
)

// Cred is the identity a process runs as inside the sandbox.
type Cred struct {
	UID, GID uint32
	Groups   []uint32 // supplementary groups
	Home     string   // from the passwd entry, "/" without one
}

// maxIDFile bounds how much of an image's /etc/passwd or /etc/group is
// read (an image may be hostile).
const maxIDFile = 16 << 20

// LookupUser resolves user as Docker (runc) does against the passwd and group
// files that open returns ("/etc/passwd", "/etc/group" of the root):
//
//   - "" is root (uid 0).
//   - A name must have a passwd entry; a number need not (then gid 0 and
//     home "/"). Either way the entry found gives the gid and home.
//   - ":group" sets the primary group: a name must be in the group file, a
//     number need not. Without it, a user that has a passwd entry gets the
//     groups that list its name as supplementary groups.
//
// A missing passwd or group file is like an empty one.
func LookupUser(user string, open func(name string) (io.ReadCloser, error)) (Cred, error) {
	userArg, groupArg, hasGroup := strings.Cut(user, ":")
	if hasGroup && groupArg == "" {
		return Cred{}, errdefs.InvalidArgument(fmt.Errorf("user %q: empty group", user))
	}
	c := Cred{Home: "/"}
	uid, uidNumeric := parseID(userArg)
	if userArg == "" {
		uid, uidNumeric = 0, true
	}
	if !uidNumeric && !validName(userArg) {
		return Cred{}, errdefs.InvalidArgument(fmt.Errorf("user %q: not a valid user name or uid", userArg))
	}
	entries, err := readIDFile(open, "/etc/passwd", 7)
	if err != nil {
		return Cred{}, err
	}
	matched := ""
	for _, f := range entries {
		id, ok := parseID(f[2])
		if !ok {
			continue
		}
		if (uidNumeric && id == uid) || (!uidNumeric && f[0] == userArg) {
			c.UID = id
			if gid, ok := parseID(f[3]); ok {
				c.GID = gid
			}
			if f[5] != "" {
				c.Home = f[5]
			}
			matched = f[0]
			break
		}
	}
	if matched == "" {
		if !uidNumeric {
			return Cred{}, errdefs.NotFound(fmt.Errorf("unable to find user %s: no matching entries in passwd file", userArg))
		}
		c.UID = uid
	}
	if !hasGroup && matched == "" {
		return c, nil
	}
	groups, err := readIDFile(open, "/etc/group", 4)
	if err != nil {
		return Cred{}, err
	}
	if hasGroup {
		gid, numeric := parseID(groupArg)
		if !numeric && !validName(groupArg) {
			return Cred{}, errdefs.InvalidArgument(fmt.Errorf("group %q: not a valid group name or gid", groupArg))
		}
		found := numeric
		for _, f := range groups {
			if !numeric && f[0] == groupArg {
				if id, ok := parseID(f[2]); ok {
					gid, found = id, true
					break
				}
			}
		}
		if !found {
			return Cred{}, errdefs.NotFound(fmt.Errorf("unable to find group %s: no matching entries in group file", groupArg))
		}
		c.GID = gid
		return c, nil
	}
	for _, f := range groups {
		id, ok := parseID(f[2])
		if !ok {
			continue
		}
		for _, m := range strings.Split(f[3], ",") {
			if strings.TrimSpace(m) == matched {
				c.Groups = append(c.Groups, id)
				break
			}
		}
	}
	return c, nil
}

// readIDFile reads the colon-separated lines of an /etc/passwd-like file,
// each padded to n fields; comments and blank lines are skipped.
func readIDFile(open func(string) (io.ReadCloser, error), name string, n int) ([][]string, error) {
	rc, err := open(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	defer rc.Close()
	sc := bufio.NewScanner(io.LimitReader(rc, maxIDFile))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	var out [][]string
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		f := strings.SplitN(line, ":", n)
		for len(f) < n {
			f = append(f, "")
		}
		out = append(out, f)
	}
	if err := sc.Err(); err != nil {
		return nil, errdefs.InvalidArgument(fmt.Errorf("read %s: %w", name, err))
	}
	return out, nil
}

// parseID parses a uid or gid: a decimal number below 2^31 (larger ids are
// invalid on Linux and -1 means "unchanged" to the kernel).
func parseID(s string) (uint32, bool) {
	if s == "" || len(s) > 10 {
		return 0, false
	}
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil || n >= 1<<31 {
		return 0, false
	}
	return uint32(n), true
}

func validName(s string) bool {
	if s == "" || len(s) > 256 {
		return false
	}
	for _, r := range s {
		if r == ':' || r == '\n' || r == 0 || r == '/' {
			return false
		}
	}
	return true
}

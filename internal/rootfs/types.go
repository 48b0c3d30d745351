package rootfs

import "time"

// ChangeKind is the kind of a Change, as `docker diff` prints it.
type ChangeKind int

// Change kinds.
const (
	Changed ChangeKind = iota // C: changed, or a directory with changes below
	Added                     // A
	Deleted                   // D
)

func (k ChangeKind) String() string {
	switch k {
	case Added:
		return "A"
	case Deleted:
		return "D"
	}
	return "C"
}

// Change is one changed path.
type Change struct {
	Kind ChangeKind
	Path string // absolute, such as "/etc/passwd"
}

func (c Change) String() string { return c.Kind.String() + " " + c.Path }

// DiffOptions configure Diff.
type DiffOptions struct {
	// SourceDateEpoch, when set, clamps every modification time to it
	// (times after it become it), for reproducible layers.
	SourceDateEpoch *time.Time
}

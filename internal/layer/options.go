package layer

import (
	"log/slog"
	"time"
)

// Option configures [Walk], [Export], [Extract], [FromDir], [Decompress] and
// [Compress]. Each option says which of them it affects; the others ignore it.
type Option func(*options)

type options struct {
	name       string
	devices    bool
	lastWins   bool
	whiteouts  bool
	noOwners   bool
	xattrs     bool
	zeroTimes  bool
	zeroOwners bool
	tempDir    string
	maxSize    int64
	level      int
	log        *slog.Logger
	setModTime bool
	modTime    time.Time
}

func makeOptions(opts []Option) options {
	o := options{level: -1}
	for _, f := range opts {
		if f != nil {
			f(&o)
		}
	}
	if o.log == nil {
		o.log = slog.New(slog.DiscardHandler)
	}
	return o
}

// WithName sets the display name of the layer, such as
// "layer 2/5 sha256:abcd…", that errors start with ([Walk], [Extract],
// [Decompress]). [Export] takes the names from its sources instead.
func WithName(name string) Option { return func(o *options) { o.name = name } }

// AllowDevices accepts character and block device entries ([Walk],
// [Extract]). Without it they are an ErrInvalidArgument error. [Extract]
// skips, with a warning, those the process has no right to create. [Export]
// always accepts them, as docker export does.
func AllowDevices() Option { return func(o *options) { o.devices = true } }

// LastEntryWins makes [Walk] accept a path that one layer has twice, as
// docker and containerd apply such a layer: the later entry replaces the
// earlier one (a non-directory replaces a directory and everything this
// layer had below it, a directory replaces a non-directory, two directories
// merge). Walk delivers both entries in archive order; applying the rule is
// the caller's. Without it, such a layer is an ErrInvalidArgument error.
// [Export] and [Extract] always walk this way.
func LastEntryWins() Option { return func(o *options) { o.lastWins = true } }

// ApplyWhiteouts makes [Extract] apply the stream as one layer on top of what
// dir already holds, with overlay rules: whiteouts remove the paths they name,
// opaque markers empty their directory (at the root: everything), both only
// of content that was there before this stream; an existing non-directory
// where the layer needs a directory is replaced by one. Without
// ApplyWhiteouts, whiteout and opaque entries are written as the plain empty
// files they are in the archive.
func ApplyWhiteouts() Option { return func(o *options) { o.whiteouts = true } }

// IgnoreOwners makes [Extract] leave ownership alone even when running as
// root. (Not running as root, it never changes ownership.)
func IgnoreOwners() Option { return func(o *options) { o.noOwners = true } }

// WithXattrs makes [Extract] set the extended attributes an entry carries in
// SCHILY.xattr PAX records, and [FromDir] record them. [Export] always keeps
// them.
func WithXattrs() Option { return func(o *options) { o.xattrs = true } }

// ZeroTimes makes [FromDir] write every modification time as the Unix epoch.
func ZeroTimes() Option { return func(o *options) { o.zeroTimes = true } }

// WithModTime makes [FromDir] write every modification time as t (for
// example SOURCE_DATE_EPOCH). It overrides [ZeroTimes].
func WithModTime(t time.Time) Option {
	return func(o *options) { o.setModTime, o.modTime = true, t }
}

// ZeroOwners makes [FromDir] write every owner as uid 0, gid 0.
func ZeroOwners() Option { return func(o *options) { o.zeroOwners = true } }

// WithTempDir sets where [Export] spools content it may need again (default
// os.TempDir()).
func WithTempDir(dir string) Option { return func(o *options) { o.tempDir = dir } }

// MaxSize limits the uncompressed bytes [Decompress] returns; reading past n
// bytes fails with an ErrTooLarge error. n <= 0 means no limit.
func MaxSize(n int64) Option { return func(o *options) { o.maxSize = n } }

// WithLevel sets the compression level for [Compress]: for gzip 1 (fastest)
// to 9 (best); for zstd one of zstd's levels 1 to 22, which
// klauspost/compress maps to its four encoder speeds. Without it, or out of
// range, each format's default level is used.
func WithLevel(level int) Option { return func(o *options) { o.level = level } }

// WithLogger sets where warnings go, such as device entries [Extract] skips
// because it is not running as root (default: discarded).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

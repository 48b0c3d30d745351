// Package rootfs makes a writable root file system over an image's layers,
// for containers and build steps, and turns what was changed in it back into
// a layer.
//
// Layers are unpacked once into a cache keyed by their verified diffID
// (with internal/layer's safe extraction) and shared by every file system
// made over them. An [FS] works in one of two modes:
//
//   - [Overlay] (root, where the kernel allows it): the unpacked layers are
//     the lower directories of a kernel overlayfs mount, with whiteouts and
//     opaque directories in overlayfs form (0/0 character devices and the
//     trusted.overlay.opaque xattr); writes go to the FS's upper directory.
//     Changes are read from the upper directory.
//   - [Copy] (without root, or where overlayfs cannot be mounted): the
//     layers are merged once into a cached tree per chain of layers, and
//     the FS is a full copy of it. Changes are found by comparing the copy
//     with the cached tree (type, mode, owner, size, mtime with
//     nanoseconds, link target, device numbers, xattrs: content is not
//     compared, as with Docker's naive differ).
//
// [FromDir] compares a directory changed outside lading with the layers.
//
// On-disk layout of the cache (the directory given with [WithCache]):
//
//	<cache>/
//	  sha256/<diffid hex>/         one layer, unpacked, whiteouts in overlayfs form (Overlay)
//	  chains/sha256/<chainid hex>/ the merged tree of layers 1..n (Copy)
//	  empty/                       an empty lower directory (an image without layers)
//	  tmp/                         unpacking in progress (renamed into place when verified)
//
// and of one FS's directory ([WithDir]):
//
//	<dir>/
//	  rootfs.json                  mode and layer diffIDs, to reopen it ([Open])
//	  upper/ work/ merged/         Overlay: overlayfs upper and work directories, the mount point
//	  tree/                        Copy: the writable tree
//
// Cache entries appear only whole (unpacked under tmp/ and renamed), so
// concurrent processes can share a cache; two that unpack the same layer at
// once both succeed and one copy is kept. Nothing removes cache entries yet.
package rootfs

import (
	"errors"
	"log/slog"

	"github.com/lading-dev/lading/internal/errdefs"
)

// Mode is how an FS is made.
type Mode string

// Modes.
const (
	// Auto is Overlay when running as root and the mount works, else Copy.
	Auto    Mode = ""
	Overlay Mode = "overlay"
	Copy    Mode = "copy"
	// Dir is the mode of an FS made by FromDir.
	Dir Mode = "dir"
)

// Option configures New, Open and FromDir.
type Option func(*options)

type options struct {
	cache   string
	dir     string
	mode    Mode
	noMount bool
	log     *slog.Logger
}

func makeOptions(opts []Option) (options, error) {
	var o options
	for _, f := range opts {
		if f != nil {
			f(&o)
		}
	}
	if o.log == nil {
		o.log = slog.New(slog.DiscardHandler)
	}
	if o.cache == "" {
		return o, errdefs.InvalidArgument(errors.New("rootfs: no cache directory (WithCache)"))
	}
	return o, nil
}

// WithCache sets the directory where unpacked layers are cached, such as
// <lading root>/layers. Required.
func WithCache(dir string) Option { return func(o *options) { o.cache = dir } }

// WithDir sets the directory that holds the FS (its upper directory or
// tree); it is created if missing. Default: a new directory under the
// cache's tmp/, which Remove deletes.
func WithDir(dir string) Option { return func(o *options) { o.dir = dir } }

// WithMode chooses Overlay or Copy (default Auto).
func WithMode(m Mode) Option { return func(o *options) { o.mode = m } }

// WithoutMount makes an Overlay FS without mounting it: Changes and Diff
// work (they read the upper directory), Dir is empty. For reading a stopped
// container's changes.
func WithoutMount() Option { return func(o *options) { o.noMount = true } }

// WithLogger sets where warnings go (default: discarded).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// FS is a writable root file system over layers.
type FS struct {
	mode    Mode
	dir     string   // the FS's own directory
	tree    string   // the writable tree: merged (Overlay), tree (Copy), the directory (Dir)
	upper   string   // Overlay
	lowers  []string // top first: unpacked layers (Overlay form) or one merged tree
	overlay bool     // lowers are in overlayfs form (whiteout devices, opaque xattrs)
	mounted bool
	log     *slog.Logger
}

// Dir returns the directory of the writable tree to run in ("" for an
// Overlay FS made WithoutMount).
func (f *FS) Dir() string { return f.tree }

// Mode returns how the FS was made: Overlay, Copy or Dir.
func (f *FS) Mode() Mode { return f.mode }

//go:build !linux

package rootfs

import (
	"context"
	"fmt"
	"io"
	"runtime"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/lading-dev/lading/internal/errdefs"
)

var errOS = errdefs.Unsupported(fmt.Errorf("rootfs: root file systems need Linux, not %s", runtime.GOOS))

// New fails: root file systems need Linux.
func New(context.Context, []v1.Layer, ...Option) (*FS, error) { return nil, errOS }

// Open fails: root file systems need Linux.
func Open(context.Context, string, ...Option) (*FS, error) { return nil, errOS }

// FromDir fails: root file systems need Linux.
func FromDir(context.Context, string, []v1.Layer, ...Option) (*FS, error) { return nil, errOS }

// Changes fails: root file systems need Linux.
func (f *FS) Changes(context.Context) ([]Change, error) { return nil, errOS }

// Diff fails: root file systems need Linux.
func (f *FS) Diff(context.Context, io.Writer, DiffOptions) error { return errOS }

// Close does nothing.
func (f *FS) Close() error { return nil }

// Remove does nothing.
func (f *FS) Remove() error { return nil }

// Unmount does nothing.
func Unmount(string) error { return nil }

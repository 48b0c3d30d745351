//go:build !linux

package sandbox

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func rlimits() []specs.POSIXRlimit { return nil }

// Native returns a Runner that fails: sandboxes need Linux.
func Native(opts ...Option) Runner { return unsupported{} }

// Runc returns a Runner that fails: sandboxes need Linux.
func Runc(path string, opts ...Option) Runner { return unsupported{} }

type unsupported struct{}

func (unsupported) Run(context.Context, Spec) (int, error) {
	return -1, fmt.Errorf("sandbox: %w: containers need Linux, not %s", ErrUnsupported, runtime.GOOS)
}

// MaybeInit does nothing: sandboxes need Linux.
func MaybeInit() {}

// Init exits: sandboxes need Linux.
func Init() { os.Exit(1) }

func rootOpener(root string) func(string) (io.ReadCloser, error) {
	return func(string) (io.ReadCloser, error) { return nil, ErrUnsupported }
}

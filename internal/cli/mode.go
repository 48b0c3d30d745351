package cli

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/pflag"

	"github.com/lading-dev/lading/internal/analyze"
	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/image"
)

// modeFlag is --mode: what an analysis reports. image (the default) reports
// what is installed, as Trivy and Syft do for images; fs reports a source
// tree, a directory given as PATH or dir:PATH: its lockfiles and manifests
// as well as what is installed in it.
type modeFlag string

func (m *modeFlag) register(fs *pflag.FlagSet) {
	fs.StringVar((*string)(m), "mode", analyze.ModeImage,
		"image: what is installed (images, root filesystems); fs: a source tree DIR, lockfiles and manifests included")
}

// check validates the flag.
func (m modeFlag) check() error {
	switch string(m) {
	case analyze.ModeImage, analyze.ModeFS:
		return nil
	}
	return usageError{errdefs.InvalidArgument(fmt.Errorf("--mode %q: want image or fs", string(m)))}
}

// ref parses the argument: any image reference in image mode, a directory
// (PATH or dir:PATH) in fs mode.
func (m modeFlag) ref(e *env, arg string) (image.Reference, error) {
	if err := m.check(); err != nil {
		return image.Reference{}, err
	}
	if string(m) != analyze.ModeFS {
		return e.parseSource(arg)
	}
	p := strings.TrimPrefix(arg, "dir:")
	fi, err := os.Stat(p)
	switch {
	case err != nil:
		return image.Reference{}, usageError{errdefs.InvalidArgument(fmt.Errorf("--mode fs %s: %w", arg, err))}
	case !fi.IsDir():
		return image.Reference{}, usageError{errdefs.InvalidArgument(fmt.Errorf("--mode fs %s: not a directory (--mode fs scans a source tree)", arg))}
	}
	return image.Reference{Transport: image.Dir, Path: p}, nil
}

// option is the analyze option of the mode.
func (m modeFlag) option() analyze.Option { return analyze.WithMode(string(m)) }

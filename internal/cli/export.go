package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/lading-dev/lading/internal/container"
	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/image"
	"github.com/lading-dev/lading/internal/layer"
)

func newExportCommand(e *env) *cobra.Command {
	var (
		f       imageFlags
		output  string
		devices bool
	)
	cmd := &cobra.Command{
		Use:   "export IMAGE|CONTAINER [-o FILE|DIR/]",
		Short: "Write an image's or a container's merged root filesystem as a tar stream or into a directory",
		Long: `Merge the layers of IMAGE into the root filesystem a container would see, applying
whiteouts and opaque directories exactly as the kernel's overlayfs does, and
write it as one tar stream (standard output or -o FILE), or unpack it into a
directory (-o DIR/, created if needed; nothing is written outside it). Each
layer is read once and streamed: memory does not grow with layer size.

Layers are taken as docker and containerd apply them: device nodes and FIFOs
are exported as they are (unpacking into a directory skips them, with a
warning, where this process has no right to create them), a later entry of a
layer at a path replaces an earlier one, and an opaque marker at a layer's
root hides every lower layer. A layer whose media type is not a layer type,
or whose blob is compressed otherwise than its media type says, is refused,
and so is a blob that does not match its digest or content that does not
match its diffID.

When the argument names a container (lading ps -a: a name, ID or unique ID
prefix), its file system is written instead, as docker export does: the image's
layers with the container's changes on top (device nodes included). A
container wins over an image of the same name.`,
		Example: `  lading export alpine:3.20 | tar -tv
  lading export -o rootfs/ oci-archive:app.oci.tar
  lading export --platform linux/arm64 -o arm.tar docker.io/library/alpine:3.20`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if _, c, err := e.findContainer(args[0]); err != nil {
				return err
			} else if c != nil {
				return e.exportContainer(ctx, &f, c, output, lopts(devices, true))
			}
			ref, err := e.parseSource(args[0])
			if err != nil {
				return err
			}
			ss, err := e.begin(&f, false)
			if err != nil {
				return err
			}
			defer ss.Close()
			s, img, err := ss.openImage(ctx, ref)
			if err != nil {
				return err
			}
			defer s.Close()
			_ = devices // accepted for compatibility: devices are always exported
			lo := []layer.Option{layer.AllowDevices(), layer.WithLogger(e.log)}
			export := func(w io.Writer) error { return image.Export(ctx, w, args[0], img, lo...) }
			return e.writeExport(ctx, output, export, lo)
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "tar file to write, or a directory (ending in /) to unpack into (default: standard output)")
	cmd.Flags().BoolVar(&devices, "allow-devices", false, "no effect: device nodes are always exported")
	cmd.Flags().MarkHidden("allow-devices")
	f.register(cmd.Flags())
	return cmd
}

func lopts(devices, container bool) []layer.Option {
	if devices || container {
		return []layer.Option{layer.AllowDevices()}
	}
	return nil
}

// writeExport sends an export to standard output, a file or a directory.
func (e *env) writeExport(ctx context.Context, output string, export func(io.Writer) error, lo []layer.Option) error {
	switch {
	case output == "" || output == "-":
		if isTerminal(e.stdout) {
			return usageError{errdefs.InvalidArgument(fmt.Errorf("refusing to write a tar stream to a terminal; use -o or redirect"))}
		}
		return export(e.stdout)
	case strings.HasSuffix(output, "/") || isDir(output):
		return exportToDir(ctx, output, export, lo)
	}
	return image.WriteFileAtomic(output, export)
}

// exportContainer writes a container's file system.
func (e *env) exportContainer(ctx context.Context, f *imageFlags, c *container.Container, output string, lo []layer.Option) error {
	ss, err := e.begin(f, false)
	if err != nil {
		return err
	}
	defer ss.Close()
	return e.writeExport(ctx, output, func(w io.Writer) error { return c.Export(ctx, w, ss.st) }, lo)
}

// exportToDir streams the export into layer.Extract.
func exportToDir(ctx context.Context, dir string, export func(io.Writer) error, lopts []layer.Option) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(export(pw)) }()
	err := layer.Extract(ctx, dir, pr, lopts...)
	pr.CloseWithError(err)
	return err
}

func isDir(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}

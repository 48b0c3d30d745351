package cli

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/spf13/cobra"

	"github.com/lading-dev/lading/internal/image"
)

func newImportCommand(e *env) *cobra.Command {
	var (
		f          imageFlags
		cmdArgs    []string
		entrypoint []string
		envs       []string
		workdir    string
		user       string
		message    string
	)
	cmd := &cobra.Command{
		Use:   "import FILE|DIR|- [NAME]",
		Short: "Make a single-layer image from a tarball or a directory",
		Long: `Make an image of one layer from a root filesystem: a tar file (plain, gzip or
zstd; - for standard input) or a directory. The tar is checked as every layer is
(no names that escape, no links out, no device nodes, no duplicates) and stored
uncompressed. The image gets the platform of --platform (default: this
machine's) and the run config the flags give, and is stored under NAME.`,
		Example: `  lading import rootfs.tar.gz example/base:1 --cmd /bin/sh
  lading import ./rootfs example/app:1 --entrypoint /app/server --env PORT=8080`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			name := ""
			if len(args) == 2 {
				r, err := localName(args[1])
				if err != nil {
					return err
				}
				name = r.Name
			}
			plat, err := image.ParsePlatform(f.platform)
			if err != nil {
				return usageError{err}
			}
			st, err := e.openStore()
			if err != nil {
				return err
			}
			defer st.Close()
			var lf *image.LayerFile
			if src := args[0]; src != "-" && isDir(src) {
				lf, err = image.LayerFromDir(ctx, src, "")
			} else {
				var r io.Reader = e.stdin
				if src != "-" {
					file, err := os.Open(src)
					if err != nil {
						return err
					}
					defer file.Close()
					r = file
				}
				lf, err = image.LayerFromTar(ctx, r, src, "")
			}
			if err != nil {
				return err
			}
			defer lf.Remove()
			cfg := image.DefaultConfig(plat, time.Now())
			cfg.Config.Cmd = cmdArgs
			cfg.Config.Entrypoint = entrypoint
			cfg.Config.Env = envs
			cfg.Config.WorkingDir = workdir
			cfg.Config.User = user
			if !hasPath(envs) {
				cfg.Config.Env = append([]string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}, envs...)
			}
			cfg.History = []v1.History{{Created: cfg.Created, CreatedBy: "lading import " + args[0], Comment: message}}
			img, err := image.FromLayerFile(lf, cfg, "")
			if err != nil {
				return err
			}
			opts, err := f.options(e, st, nil)
			if err != nil {
				return err
			}
			if _, err := image.Write(ctx, image.Reference{Transport: image.Local, Name: name}, image.Artifact{Image: img}, opts...); err != nil {
				return err
			}
			id, _ := img.ConfigName()
			fmt.Fprintln(e.stdout, id)
			return nil
		},
	}
	cmd.Flags().StringSliceVar(&cmdArgs, "cmd", nil, "default command (repeat or comma-separate for arguments)")
	cmd.Flags().StringSliceVar(&entrypoint, "entrypoint", nil, "entrypoint (repeat or comma-separate for arguments)")
	cmd.Flags().StringArrayVar(&envs, "env", nil, "environment variable KEY=VALUE (repeatable)")
	cmd.Flags().StringVar(&workdir, "workdir", "", "working directory")
	cmd.Flags().StringVar(&user, "user", "", "user to run as")
	cmd.Flags().StringVarP(&message, "message", "m", "", "history comment")
	f.register(cmd.Flags(), "compress")
	return cmd
}

func hasPath(envs []string) bool {
	for _, e := range envs {
		if strings.HasPrefix(e, "PATH=") {
			return true
		}
	}
	return false
}

package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/lading-dev/lading/internal/container"
	"github.com/lading-dev/lading/internal/errdefs"
)

func newCommitCommand(e *env) *cobra.Command {
	var (
		f         imageFlags
		o         container.CommitOptions
		rootfsDir string
		base      string
	)
	cmd := &cobra.Command{
		Use:   "commit [-m MSG] [--change INSTR]... CONTAINER [NAME]\n  lading commit --rootfs DIR --base IMAGE NAME",
		Short: "Make an image from a container's changes",
		Long: `Turn what a container changed into a new layer on its image and store the
result in the local store under NAME (untagged without it), as docker commit
does: the layer is gzip, deletions are whiteouts (.wh.NAME; a directory emptied
and made again is opaque, .wh..wh..opq); the config is the container's (the
image's with the run's Cmd, Env, ...), changed by --change instructions (CMD,
ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, STOPSIGNAL, USER, VOLUME, WORKDIR);
history gets an entry with the container's command and -m as comment. A
running container is committed as it is (not paused).

With --rootfs, DIR is a root file system changed outside lading: the layer holds
what differs between DIR and the merged layers of --base (any transport; pulled
into the store first), compared by type, mode, owner, size, mtime, link target
and xattrs.

With SOURCE_DATE_EPOCH set, the image's creation time is it and file times in
the layer are clamped to it. Prints the new image ID.`,
		Example: `  lading commit -m "add curl" --change 'CMD ["curl"]' box example/curl:1
  lading commit --rootfs ./rootfs --base alpine:3.20 example/patched:1`,
		Args: func(cmd *cobra.Command, args []string) error {
			if rootfsDir != "" {
				return cobra.ExactArgs(1)(cmd, args)
			}
			return cobra.RangeArgs(1, 2)(cmd, args)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if (rootfsDir == "") != (base == "") {
				return usageError{errdefs.InvalidArgument(fmt.Errorf("--rootfs and --base go together"))}
			}
			nameArg := ""
			if rootfsDir != "" {
				nameArg = args[0]
			} else if len(args) == 2 {
				nameArg = args[1]
			}
			if nameArg != "" {
				r, err := localName(nameArg)
				if err != nil {
					return err
				}
				o.Name = r.Name
			}
			epoch, err := sourceDateEpoch()
			if err != nil {
				return usageError{err}
			}
			if epoch != nil {
				o.Created, o.SourceDateEpoch = *epoch, epoch
			}
			ss, err := e.begin(&f, rootfsDir != "")
			if err != nil {
				return err
			}
			defer ss.Close()
			cs, err := e.openContainers()
			if err != nil {
				return err
			}
			var res container.Committed
			if rootfsDir != "" {
				ref, err := parseRef(base)
				if err != nil {
					return err
				}
				img, err := ss.storedImage(ctx, ref)
				if err != nil {
					return err
				}
				if !isDir(rootfsDir) {
					return errdefs.InvalidArgument(fmt.Errorf("--rootfs %s: not a directory", rootfsDir))
				}
				res, err = container.CommitDir(ctx, ss.st, cs.LayerCache(), rootfsDir, img, o)
				if err != nil {
					return err
				}
			} else {
				c, err := cs.Get(args[0])
				if err != nil {
					return err
				}
				if res, err = c.Commit(ctx, ss.st, o); err != nil {
					return err
				}
			}
			fmt.Fprintln(e.stdout, res.ID)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&o.Message, "message", "m", "", "commit message (the history entry's comment)")
	fl.StringVarP(&o.Author, "author", "a", "", "author")
	fl.StringArrayVarP(&o.Changes, "change", "c", nil, "apply a Dockerfile instruction to the config (repeatable)")
	fl.StringVar(&rootfsDir, "rootfs", "", "commit this root file system directory instead of a container")
	fl.StringVar(&base, "base", "", "with --rootfs: the image DIR was made from")
	f.register(fl)
	return cmd
}

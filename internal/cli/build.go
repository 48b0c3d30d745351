package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/lading-dev/lading/internal/build"
	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/image"
	"github.com/lading-dev/lading/internal/sandbox"
)

func newBuildCommand(e *env) *cobra.Command {
	var (
		f          imageFlags
		file       string
		tags       []string
		target     string
		buildArgs  []string
		noCache    bool
		network    string
		runtime    string
		memory     string
		pids       int64
		output     string
		sourceDate string
	)
	cmd := &cobra.Command{
		Use:   "build [flags] CONTEXT",
		Short: "Build an image from a Dockerfile",
		Long: `Build an image from a Dockerfile, without a daemon. CONTEXT is a directory,
- (a tar archive on standard input) or a tar file, plain or compressed. The
Dockerfile is parsed with BuildKit's own parser, so its syntax and errors are
Docker's. Base images come from any transport (a bare name: the local store,
else its registry) and are pulled into the store. Each step is cached by its
parent, its instruction and, for COPY and ADD, the content of the files it
copies; a rebuild with nothing changed makes no new layer.

The result is stored under each -t name; with --output it is written to that
destination (oci:DIR, oci-archive:FILE, docker-archive:FILE, a registry) and,
without -t, no image is added to the store. With neither it is stored unnamed.
The image ID is printed on standard output.

With SOURCE_DATE_EPOCH set (the environment, --build-arg or
--source-date-epoch), file times in new layers are clamped to it and every new
history entry and the config are dated with it: the same context then gives
the same image digest anywhere.`,
		Example: `  lading build -t app:1 .
  lading build -f build/Dockerfile --target runtime --build-arg VERSION=1.2 -t app:1.2 .
  tar -c . | lading build -t app:1 -
  SOURCE_DATE_EPOCH=1704067200 lading build --output oci-archive:app.tar .`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			var names []string
			for _, t := range tags {
				r, err := localName(t)
				if err != nil {
					return err
				}
				names = append(names, r.Name)
			}
			var out *image.Reference
			if output != "" {
				r, err := parseRef(output)
				if err != nil {
					return err
				}
				if r.Transport == image.Auto {
					r.Transport = image.Registry
				}
				out = &r
			}
			bargs, err := parseBuildArgs(buildArgs)
			if err != nil {
				return err
			}
			switch network {
			case "none", "host":
			default:
				return usageError{errdefs.InvalidArgument(fmt.Errorf("--network %q: want none or host", network))}
			}
			if e.wantsPrivateMounts() && needsRun(ctx, args[0], file) {
				if ok, err := e.inPrivateMounts(ctx); ok {
					return err
				}
			}
			if sourceDate == "" {
				sourceDate = bargs["SOURCE_DATE_EPOCH"]
			}
			if sourceDate == "" {
				sourceDate = os.Getenv("SOURCE_DATE_EPOCH")
			}
			ss, err := e.begin(&f, true)
			if err != nil {
				return err
			}
			defer ss.Close()
			plat, err := image.ParsePlatform(f.platform)
			if err != nil {
				return usageError{err}
			}
			opts := []build.Option{
				build.WithTarget(target),
				build.WithBuildArgs(bargs),
				build.WithPlatform(plat),
				build.WithNoCache(noCache),
				build.WithNetwork(network),
				build.WithImageOptions(ss.opts...),
				build.WithLogger(e.log),
				build.WithOutput(e.stderr),
			}
			if e.progress == "none" {
				opts = append(opts, build.WithOutput(nil))
			}
			if sourceDate != "" {
				sec, err := strconv.ParseInt(sourceDate, 10, 64)
				if err != nil || sec < 0 {
					return usageError{errdefs.InvalidArgument(fmt.Errorf("SOURCE_DATE_EPOCH %q: want seconds since 1970", sourceDate))}
				}
				opts = append(opts, build.WithSourceDateEpoch(time.Unix(sec, 0)))
			}
			mem, err := parseBytes(memory)
			if err != nil {
				return usageError{err}
			}
			if pids < 0 {
				return usageError{errdefs.InvalidArgument(fmt.Errorf("--pids-limit %d: want a positive number (0: no limit)", pids))}
			}
			limits := build.WithLimits(sandbox.Limits{Memory: mem, Pids: pids})
			runner, err := build.NewRunner(runtime, filepath.Join(e.root, "layers"), e.log, limits)
			if err != nil {
				return usageError{err}
			}
			if runner != nil {
				opts = append(opts, build.WithRunner(runner))
			}
			in, err := build.OpenInput(ctx, args[0], file, e.stdin, "")
			if err != nil {
				return err
			}
			defer in.Close()
			res, err := build.New(ss.st, opts...).Build(ctx, in.Dockerfile, in.Context)
			if err != nil {
				return err
			}
			art := image.Artifact{Image: res.Image}
			for _, n := range names {
				if d, err := ss.st.Resolve(ctx, n); err == nil && d.Digest == res.Descriptor.Digest {
					continue // already there: a cached rebuild writes nothing
				}
				if err := ss.st.SetRef(ctx, n, res.Descriptor); err != nil {
					return err
				}
			}
			if out != nil {
				if _, err := image.Write(ctx, *out, art, ss.opts...); err != nil {
					return err
				}
			} else if len(names) == 0 {
				if _, err := image.Write(ctx, image.Reference{Transport: image.Local}, art, ss.opts...); err != nil {
					return err
				}
			}
			fmt.Fprintln(e.stdout, res.ID)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&file, "file", "f", "", "the Dockerfile (default CONTEXT/Dockerfile, else CONTEXT/Containerfile; - for standard input)")
	fl.StringArrayVarP(&tags, "tag", "t", nil, "name the image in the local store (repeatable)")
	fl.StringVar(&target, "target", "", "build this stage (default: the last)")
	fl.StringArrayVar(&buildArgs, "build-arg", nil, "set a build argument KEY=VALUE (KEY alone: from the environment; repeatable)")
	fl.BoolVar(&noCache, "no-cache", false, "run every step again")
	fl.StringVar(&network, "network", "none", "network of RUN steps: none or host")
	fl.StringVar(&runtime, "runtime", "native", "what runs RUN steps: native (lading's own sandbox) or runc")
	fl.StringVarP(&memory, "memory", "m", "", "memory limit of each RUN step, such as 256m")
	fl.Int64Var(&pids, "pids-limit", 0, "maximum number of processes of each RUN step")
	fl.StringVarP(&output, "output", "o", "", "write the image to this destination (oci:DIR, oci-archive:FILE, docker-archive:FILE, a registry)")
	fl.StringVar(&sourceDate, "source-date-epoch", "", "clamp times to these seconds since 1970 (default $SOURCE_DATE_EPOCH)")
	f.register(fl, "compress")
	return cmd
}

// needsRun reports whether a build may run RUN steps: its Dockerfile has
// one, or it cannot be read without consuming the input (standard input, a
// tar file).
func needsRun(ctx context.Context, contextArg, file string) bool {
	if contextArg == "-" || file == "-" {
		return true
	}
	if fi, err := os.Stat(contextArg); err != nil || !fi.IsDir() {
		return true
	}
	in, err := build.OpenInput(ctx, contextArg, file, nil, "")
	if err != nil {
		return false // the build fails the same way here
	}
	defer in.Close()
	return in.Dockerfile.HasRun()
}

// parseBuildArgs reads KEY=VALUE pairs; a KEY alone takes its value from
// the environment (and is left out when the environment has none), as
// docker build does.
func parseBuildArgs(args []string) (map[string]string, error) {
	out := map[string]string{}
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		if k == "" {
			return nil, usageError{errdefs.InvalidArgument(fmt.Errorf("--build-arg %q: want KEY=VALUE", a))}
		}
		if !ok {
			ev, set := os.LookupEnv(k)
			if !set {
				continue
			}
			v = ev
		}
		out[k] = v
	}
	return out, nil
}

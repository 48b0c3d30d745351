package cli

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/lading-dev/lading/internal/analyze"
	"github.com/lading-dev/lading/internal/cache"
	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/image"
	"github.com/lading-dev/lading/internal/pkg"
	"github.com/lading-dev/lading/internal/sbom"
)

// analyzeFlags are the flags of the commands that analyze an image.
type analyzeFlags struct {
	imageFlags
	noCache bool
	mode    modeFlag
}

func (f *analyzeFlags) register(fs *pflag.FlagSet) {
	f.imageFlags.register(fs)
	fs.BoolVar(&f.noCache, "no-cache", false, "analyze every layer again, without reading or writing the layer cache")
	f.mode.register(fs)
}

// cacheable reports whether the layers of ref may use the layer cache: the
// cache is keyed by blob digests that an image gives and a read verifies,
// and a dir: root filesystem has none (its layer's digest would be one
// lading computed from a directory that can change under it).
func cacheable(ref image.Reference) bool { return ref.Transport != image.Dir }

// cacheDir is where layer results are cached.
func (e *env) cacheDir() string { return filepath.Join(e.root, "cache", "layers") }

// inventoryOf opens arg and analyzes the image; warnings go to stderr.
func (e *env) inventoryOf(ctx context.Context, f *analyzeFlags, arg string) (sbom.Image, *analyze.Inventory, error) {
	ref, err := f.mode.ref(e, arg)
	if err != nil {
		return sbom.Image{}, nil, err
	}
	ss, err := e.begin(&f.imageFlags, false)
	if err != nil {
		return sbom.Image{}, nil, err
	}
	defer ss.Close()
	s, img, err := ss.openImage(ctx, ref)
	if err != nil {
		return sbom.Image{}, nil, err
	}
	defer s.Close()
	opts := []analyze.Option{analyze.WithLogger(e.log), analyze.WithName(arg), f.mode.option()}
	if !f.noCache && cacheable(ref) {
		c, err := cache.Open(e.cacheDir())
		if err != nil {
			return sbom.Image{}, nil, err
		}
		opts = append(opts, analyze.WithCache(c))
	}
	inv, err := analyze.Image(ctx, img, opts...)
	if err != nil {
		return sbom.Image{}, nil, err
	}
	for _, w := range inv.Warnings {
		fmt.Fprintf(e.stderr, "lading: warning: %s\n", w)
	}
	meta := sbom.Image{Name: arg}
	if d, err := img.Digest(); err == nil {
		meta.Digest = d.String()
	}
	if cf, err := img.ConfigFile(); err == nil {
		meta.Platform = platformOf(cf).String()
	}
	if n, err := img.ConfigName(); err == nil {
		meta.ID = n.String()
	}
	return meta, inv, nil
}

func ladingVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}

func newInventoryCommand(e *env) *cobra.Command {
	var (
		f      analyzeFlags
		format string
	)
	cmd := &cobra.Command{
		Use:   "inventory IMAGE",
		Short: "List the OS and the packages of an image, with the layer that put each there",
		Long: `List what IMAGE holds, without running it: its OS, then a table per target (the
OS package database first, then each lockfile, package directory, binary or
archive) of the packages the merged filesystem has, each with the layer that
introduced it (and, after an arrow, the layer that last changed its record
when that is a later one). Then the packages that a layer installed and a
later layer removed, and the layers.

Every layer is read once, layers in parallel, and each layer's results are
cached under the lading root by the digest of the layer blob (--no-cache to
analyze again), so a layer shared by many images is analyzed once. --format
json prints the inventory as lading's JSON (the same as lading sbom --format
json). A layer that is not what the image says it is (a missing blob, a blob
that does not match its digest, content that does not match the config's
diffID) fails the command, naming the layer and its digest. Files that cannot
be analyzed (a corrupt package database) and layers whose entries are refused
as hostile are reported as warnings on standard error; the rest is still
analyzed.

--mode image (the default) reports what is installed, as Trivy and Syft do
for images: node_modules, not package-lock.json; a Go binary's modules, not
go.mod. --mode fs DIR reports a source tree: its lockfiles and manifests
too.`,
		Example: `  lading inventory alpine:3.20
  lading inventory oci-archive:app.oci.tar --format json
  lading inventory --platform linux/arm64 docker://debian:12
  lading inventory --mode fs ./myproject`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			switch format {
			case "table", "json":
			default:
				return usageError{errdefs.InvalidArgument(fmt.Errorf("--format %q: want table or json", format))}
			}
			img, inv, err := e.inventoryOf(cmd.Context(), &f, args[0])
			if err != nil {
				return err
			}
			if format == "json" {
				return sbom.JSON(e.stdout, img, inv)
			}
			return writeInventory(e.stdout, img, inv)
		},
	}
	cmd.Flags().StringVar(&format, "format", "table", "output format: table or json")
	f.register(cmd.Flags())
	return cmd
}

// writeInventory prints the inventory tables.
func writeInventory(w io.Writer, img sbom.Image, inv *analyze.Inventory) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "Image:\t%s\n", img.Name)
	if img.Digest != "" {
		fmt.Fprintf(tw, "Digest:\t%s\n", img.Digest)
	}
	switch os := inv.OS; {
	case os == nil:
		fmt.Fprintf(tw, "OS:\tunknown\n")
	default:
		name := os.Name
		if name == "" {
			name = os.ID
		}
		detail := strings.TrimSpace(os.ID + " " + os.VersionID)
		if os.Distroless {
			detail += ", distroless"
		}
		fmt.Fprintf(tw, "OS:\t%s (%s)\n", name, detail)
	}
	total := 0
	for _, t := range inv.Targets {
		total += len(t.Packages)
	}
	fmt.Fprintf(tw, "Packages:\t%d in %d targets\n", total, len(inv.Targets))
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, t := range inv.Targets {
		fmt.Fprintf(w, "\n%s (%s, %d)\n", t.Path, t.Type, len(t.Packages))
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		showLoc := t.Class == analyze.ClassLang && hasNested(t)
		showSrc := false
		for _, p := range t.Packages {
			showSrc = showSrc || source(&p) != ""
		}
		cols := []string{"NAME", "VERSION"}
		if showSrc {
			cols = append(cols, "SOURCE")
		}
		cols = append(cols, "LAYER")
		if showLoc {
			cols = append(cols, "LOCATION")
		}
		fmt.Fprintln(tw, strings.Join(cols, "\t"))
		for _, p := range t.Packages {
			row := []string{p.Name, p.Version}
			if showSrc {
				row = append(row, source(&p))
			}
			row = append(row, layerOf(p.Layer))
			if showLoc {
				row = append(row, strings.TrimPrefix(p.Location, t.Path+"/"))
			}
			fmt.Fprintln(tw, strings.Join(row, "\t"))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if len(inv.Removed) > 0 {
		fmt.Fprintf(w, "\nRemoved by a later layer (%d)\n", len(inv.Removed))
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tVERSION\tINSTALLED IN\tREMOVED IN\tFROM")
		for _, r := range inv.Removed {
			from := r.Location
			if n := len(r.Locations); n > 1 {
				from += fmt.Sprintf(" (and %d more)", n-1)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\n", r.Name, r.Version, layerOf(r.Layer), r.RemovedIn.Index, from)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	fmt.Fprintf(w, "\nLayers\n")
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "#\tDIFF ID\tPACKAGES\tCREATED BY")
	counts := map[int]int{}
	for _, t := range inv.Targets {
		for _, p := range t.Packages {
			if p.Layer != nil {
				counts[p.Layer.Introduced.Index]++
			}
		}
	}
	for _, l := range inv.Layers {
		by := strings.Join(strings.Fields(l.CreatedBy), " ")
		if len(by) > 60 {
			by = by[:59] + "…"
		}
		fmt.Fprintf(tw, "%d\t%s\t%d\t%s\n", l.Index, shortID(l.DiffID), counts[l.Index], by)
	}
	return tw.Flush()
}

// hasNested reports whether some package of t is declared somewhere else
// than the target itself (a package directory, an archive with nested
// archives).
func hasNested(t analyze.Target) bool {
	for _, p := range t.Packages {
		if p.Location != t.Path {
			return true
		}
	}
	return false
}

func source(p *pkg.Package) string {
	if p.Source == nil || p.Source.Name == p.Name {
		return ""
	}
	return p.Source.Name
}

// layerOf is "N", or "N→M" when the record last changed in a later layer.
func layerOf(a *pkg.Attribution) string {
	if a == nil {
		return ""
	}
	s := strconv.Itoa(a.Introduced.Index)
	if a.Changed.Index != a.Introduced.Index {
		s += "→" + strconv.Itoa(a.Changed.Index)
	}
	return s
}

func shortID(d string) string {
	d = strings.TrimPrefix(d, "sha256:")
	if len(d) > 12 {
		return d[:12]
	}
	return d
}

package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/lading-dev/lading/internal/bench"
	"github.com/lading-dev/lading/internal/corpus"
	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/progress"
	"github.com/lading-dev/lading/internal/vulndb"
)

func newBenchCommand(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure lading against baselines on the corpus",
		Long: `Measure lading on the real images of the test corpus (../shared/corpus or
$LADING_CORPUS) against a baseline run on the same machine in the same run,
and print the ratio (below 1: lading is faster).`,
	}
	cmd.AddCommand(newBenchImagesCommand(e), newBenchScanCommand(e), newBenchSBOMCommand(e))
	return cmd
}

func newBenchScanCommand(e *env) *cobra.Command {
	var (
		corpusDir, db, format string
		runs                  int
		only                  []string
	)
	cmd := &cobra.Command{
		Use:   "scan",
		Short: "cold and warm scan time against gzip -dc | tar -t of the same layers, and peak RSS",
		Long: `For every OCI image of the corpus, run this lading binary's scan (JSON output,
discarded) as a user would: cold, with an empty layer cache, and warm, with every
layer cached; and, as the baseline, gzip -dc LAYER | tar -t over the image's
layers one after another. Prints the medians of --runs runs, the cold time as a
ratio to the baseline, and the largest resident set of a scan process. The
database comes from --db, or is built from the corpus feeds first.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if corpusDir == "" {
				corpusDir, _ = corpus.Find()
			}
			if corpusDir == "" {
				return usageError{errdefs.InvalidArgument(fmt.Errorf("no corpus found; pass --corpus DIR or set LADING_CORPUS"))}
			}
			exe, err := os.Executable()
			if err != nil {
				return err
			}
			if db == "" {
				tmp, err := os.MkdirTemp("", "lading-bench-db-")
				if err != nil {
					return err
				}
				defer os.RemoveAll(tmp)
				db = filepath.Join(tmp, vulndb.FileName)
				fmt.Fprintf(e.stderr, "bench scan: building a database from %s/feeds\n", corpusDir)
				// In a process of its own, so that this one stays small:
				// its peak would count in the scans' (see bench.ScanResult).
				build := exec.CommandContext(ctx, exe, "-q", "db", "build", "--from", filepath.Join(corpusDir, "feeds"), "-o", db)
				build.Stderr = e.stderr
				if err := build.Run(); err != nil {
					return fmt.Errorf("bench scan: lading db build: %w", err)
				}
			}
			rs, err := bench.Scan(ctx, corpusDir, bench.ScanOptions{Exe: exe, DB: db, Runs: runs, Only: only, Log: e.stderr})
			if err != nil {
				return err
			}
			if format == "json" {
				enc := json.NewEncoder(e.stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(rs)
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
			fmt.Fprintln(tw, "image\tcold\tgzip -dc | tar -t\tratio\twarm\tpeak RSS\t(bench RSS)\t")
			ms := func(d time.Duration) string { return fmt.Sprintf("%.1fms", float64(d.Microseconds())/1000) }
			for _, r := range rs {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%.2f\t%s\t%s\t(%s)\t\n", r.Image, ms(r.Cold), ms(r.Baseline), r.ColdRatio(), ms(r.Warm), progress.HumanSize(r.PeakRSS), progress.HumanSize(r.BenchRSS))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&corpusDir, "corpus", "", "corpus directory (default ../shared/corpus or $LADING_CORPUS)")
	cmd.Flags().StringVar(&db, "db", "", "vulnerability database (default: built from the corpus feeds)")
	cmd.Flags().IntVar(&runs, "runs", 5, "runs per measurement; the median is reported")
	cmd.Flags().StringSliceVar(&only, "image", nil, "only these corpus files (such as debian-12-app.oci.tar)")
	cmd.Flags().StringVar(&format, "format", "table", "output format: table or json")
	return cmd
}

func newBenchImagesCommand(e *env) *cobra.Command {
	var (
		corpusDir string
		runs      int
		only      []string
		format    string
	)
	cmd := &cobra.Command{
		Use:   "images",
		Short: "save, load and export throughput as a ratio to tar -xzf of the same layers",
		Long: `For every OCI image of the corpus: time lading save (a docker-archive from the
local store), lading load (that archive into an empty store), lading export
(the merged root filesystem as a stream, to /dev/null) and export-dir (unpacked
into a directory); and two baselines: tar -xzf of the image's layer blobs one
after another into an empty directory, and tar -tzf of the same blobs (the same
decompression and parsing without creating files). Each time is
the median of --runs runs with warm caches. Peak heap is the largest live heap
seen during the operation.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if corpusDir == "" {
				corpusDir, _ = corpus.Find()
			}
			if corpusDir == "" {
				return usageError{errdefs.InvalidArgument(fmt.Errorf("no corpus found; pass --corpus DIR or set LADING_CORPUS"))}
			}
			rs, err := bench.Images(cmd.Context(), corpusDir, bench.Options{Runs: runs, Only: only, Log: e.stderr})
			if err != nil {
				return err
			}
			if format == "json" {
				enc := json.NewEncoder(e.stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(rs)
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
			fmt.Fprintln(tw, "image\top\ttime\ttar -xzf\tratio\ttar -tzf\tratio\tMB/s\tpeak heap\t")
			ms := func(d time.Duration) string { return fmt.Sprintf("%.1fms", float64(d.Microseconds())/1000) }
			for _, r := range rs {
				mbps := float64(r.Bytes) / r.Time.Seconds() / 1e6
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%.2f\t%s\t%.2f\t%.0f\t%s\t\n", r.Image, r.Op,
					ms(r.Time), ms(r.Baseline), r.Ratio(), ms(r.Stream), r.StreamRatio(), mbps, progress.HumanSize(int64(r.PeakHeap)))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&corpusDir, "corpus", "", "corpus directory (default ../shared/corpus or $LADING_CORPUS)")
	cmd.Flags().IntVar(&runs, "runs", 5, "runs per measurement; the median is reported")
	cmd.Flags().StringSliceVar(&only, "image", nil, "only these corpus files (such as debian-12-app.oci.tar)")
	cmd.Flags().StringVar(&format, "format", "table", "output format: table or json")
	return cmd
}

func newBenchSBOMCommand(e *env) *cobra.Command {
	var (
		files   []int
		runs    int
		dir     string
		format  string
		sbomFmt string
	)
	cmd := &cobra.Command{
		Use:   "sbom",
		Short: "lading sbom on generated images of many files: peak RSS and time against tar -t",
		Long: `Generate one-layer images of --files files each (an Alpine-like root filesystem:
an apk database listing every file, small files of 1 to 11 KiB, an npm package
per 1,000 files; 305,000 files make about 2.1 GB), then run this lading binary's
sbom on each, cold (empty layer cache) and warm, and report the time, its ratio
to tar -tf of the same layer, and the peak resident set of the sbom process.
Memory should stay flat as the file count grows. --dir keeps the generated
images for later runs.`,
		Example: `  lading bench sbom --files 30000,100000,305000`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			exe, err := os.Executable()
			if err != nil {
				return err
			}
			rs, err := bench.SBOM(cmd.Context(), bench.SBOMOptions{Exe: exe, Files: files, Runs: runs, Dir: dir, Format: sbomFmt, Log: e.stderr})
			if err != nil {
				return err
			}
			if format == "json" {
				enc := json.NewEncoder(e.stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(rs)
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
			fmt.Fprintln(tw, "files\tlayer\tpackages\tcold\ttar -t\tratio\twarm\tpeak RSS cold\twarm\t")
			ms := func(d time.Duration) string { return fmt.Sprintf("%.1fs", d.Seconds()) }
			for _, r := range rs {
				fmt.Fprintf(tw, "%d\t%s\t%d\t%s\t%s\t%.2f\t%s\t%s\t%s\t\n", r.Files, progress.HumanSize(r.LayerBytes), r.Packages,
					ms(r.Cold), ms(r.Baseline), r.ColdRatio(), ms(r.Warm), progress.HumanSize(r.ColdRSS), progress.HumanSize(r.WarmRSS))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().IntSliceVar(&files, "files", []int{30000, 100000, 305000}, "image sizes, in files")
	cmd.Flags().IntVar(&runs, "runs", 1, "runs per measurement; the median is reported")
	cmd.Flags().StringVar(&dir, "dir", "", "where to generate the images (default: a temporary directory, removed afterwards)")
	cmd.Flags().StringVar(&sbomFmt, "sbom-format", "cyclonedx", "the SBOM format: cyclonedx, spdx or json")
	cmd.Flags().StringVar(&format, "format", "table", "output format: table or json")
	return cmd
}

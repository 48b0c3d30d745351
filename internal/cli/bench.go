package cli

import (
	"encoding/json"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/lading-dev/lading/internal/bench"
	"github.com/lading-dev/lading/internal/corpustest"
	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/progress"
)

func newBenchCommand(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure lading against baselines on the corpus",
		Long: `Measure lading on the real images of the test corpus (../shared/corpus or
$LADING_CORPUS) against a baseline run on the same machine in the same run,
and print the ratio (below 1: lading is faster).`,
	}
	cmd.AddCommand(newBenchImagesCommand(e))
	return cmd
}

func newBenchImagesCommand(e *env) *cobra.Command {
	var (
		corpus string
		runs   int
		only   []string
		format string
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
			if corpus == "" {
				corpus = corpustest.Lookup()
			}
			if corpus == "" {
				return usageError{errdefs.InvalidArgument(fmt.Errorf("no corpus found; pass --corpus DIR or set LADING_CORPUS"))}
			}
			rs, err := bench.Images(cmd.Context(), corpus, bench.Options{Runs: runs, Only: only, Log: e.stderr})
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
	cmd.Flags().StringVar(&corpus, "corpus", "", "corpus directory (default ../shared/corpus or $LADING_CORPUS)")
	cmd.Flags().IntVar(&runs, "runs", 5, "runs per measurement; the median is reported")
	cmd.Flags().StringSliceVar(&only, "image", nil, "only these corpus files (such as debian-12-app.oci.tar)")
	cmd.Flags().StringVar(&format, "format", "table", "output format: table or json")
	return cmd
}

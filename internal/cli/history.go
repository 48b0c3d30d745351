package cli

import (
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/progress"
)

// historyEntry is one row of `lading history`.
type historyEntry struct {
	ID         string    `json:"id"`
	Created    time.Time `json:"created"`
	CreatedBy  string    `json:"created_by"`
	Size       int64     `json:"size"`
	Comment    string    `json:"comment,omitempty"`
	EmptyLayer bool      `json:"empty_layer,omitempty"`
	Layer      string    `json:"layer,omitempty"`   // layer digest
	DiffID     string    `json:"diff_id,omitempty"` // layer diffID
}

func newHistoryCommand(e *env) *cobra.Command {
	var (
		f       imageFlags
		noTrunc bool
		format  string
	)
	cmd := &cobra.Command{
		Use:   "history IMAGE",
		Short: "Show how an image was built, newest step first",
		Long: `Show an image's history like docker history: when each step ran, the command
that created it, the size of the layer it added (as stored: compressed when the
layer is) and its comment. Steps that added no layer show size 0. The first
row is the image's ID; earlier rows show <missing>, as docker does for pulled
images. --format json prints every field, with the layer digest and diffID.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
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
			cf, err := img.ConfigFile()
			if err != nil {
				return err
			}
			m, err := img.Manifest()
			if err != nil {
				return err
			}
			var rows []historyEntry
			li := 0
			for _, h := range cf.History {
				r := historyEntry{ID: "<missing>", Created: h.Created.Time, CreatedBy: h.CreatedBy, Comment: h.Comment, EmptyLayer: h.EmptyLayer}
				if !h.EmptyLayer && li < len(m.Layers) {
					r.Size = m.Layers[li].Size
					r.Layer = m.Layers[li].Digest.String()
					if li < len(cf.RootFS.DiffIDs) {
						r.DiffID = cf.RootFS.DiffIDs[li].String()
					}
					li++
				}
				rows = append(rows, r)
			}
			// Layers without history entries (images built without history).
			for ; li < len(m.Layers); li++ {
				r := historyEntry{ID: "<missing>", Size: m.Layers[li].Size, Layer: m.Layers[li].Digest.String()}
				if li < len(cf.RootFS.DiffIDs) {
					r.DiffID = cf.RootFS.DiffIDs[li].String()
				}
				rows = append(rows, r)
			}
			// Newest first.
			for i, j := 0, len(rows)-1; i < j; i, j = i+1, j-1 {
				rows[i], rows[j] = rows[j], rows[i]
			}
			if len(rows) > 0 {
				rows[0].ID = m.Config.Digest.String()
			}
			switch format {
			case "json":
				enc := json.NewEncoder(e.stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(rows)
			case "table", "":
			default:
				return usageError{errdefs.InvalidArgument(fmt.Errorf("--format %q: want table or json", format))}
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 4, 3, ' ', 0)
			fmt.Fprintln(tw, "IMAGE\tCREATED\tCREATED BY\tSIZE\tCOMMENT")
			for _, r := range rows {
				id := r.ID
				if id != "<missing>" && !noTrunc {
					id = strings.TrimPrefix(id, "sha256:")[:12]
				}
				by := strings.ReplaceAll(r.CreatedBy, "\t", " ")
				if !noTrunc && len(by) > 45 {
					by = by[:44] + "…"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", id, humanAgo(r.Created), by, progress.HumanSize(r.Size), r.Comment)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&noTrunc, "no-trunc", false, "do not truncate IDs and commands")
	cmd.Flags().StringVar(&format, "format", "table", "output format: table or json")
	f.register(cmd.Flags())
	return cmd
}

package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/spf13/cobra"

	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/image"
	"github.com/lading-dev/lading/internal/progress"
	"github.com/lading-dev/lading/internal/store"
)

// lsEntry is one row of `lading ls`.
type lsEntry struct {
	Repository string    `json:"repository"`
	Tag        string    `json:"tag"`
	Name       string    `json:"name,omitempty"`
	ID         string    `json:"id"`
	Digest     string    `json:"digest"`
	Created    time.Time `json:"created,omitempty"`
	Size       int64     `json:"size"`
	Platforms  []string  `json:"platforms,omitempty"`
}

func newLsCommand(e *env) *cobra.Command {
	var (
		digests bool
		format  string
	)
	cmd := &cobra.Command{
		Use:     "ls",
		Aliases: []string{"images"},
		Short:   "List the images in the local store",
		Long: `List the images in the local store like docker images: repository, tag,
image ID (config digest), creation time and size (the blobs as stored). A
multi-platform image shows its index digest and platforms.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			st, err := e.openStore()
			if err != nil {
				return err
			}
			defer st.Close()
			idx, err := st.Index(ctx)
			if err != nil {
				return err
			}
			var rows []lsEntry
			for _, d := range idx.Manifests {
				if d.ArtifactType != "" && d.Annotations[store.RefNameAnnotation] == "" {
					continue // a signature or other referrer kept beside its image
				}
				rows = append(rows, lsRow(ctx, e, st, d))
			}
			sort.SliceStable(rows, func(i, j int) bool {
				if rows[i].Repository != rows[j].Repository {
					return rows[i].Repository < rows[j].Repository
				}
				return rows[i].Tag < rows[j].Tag
			})
			switch format {
			case "json":
				enc := json.NewEncoder(e.stdout)
				enc.SetIndent("", "  ")
				if rows == nil {
					rows = []lsEntry{}
				}
				return enc.Encode(rows)
			case "table", "":
			default:
				return usageError{errdefs.InvalidArgument(fmt.Errorf("--format %q: want table or json", format))}
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 4, 3, ' ', 0)
			if digests {
				fmt.Fprintln(tw, "REPOSITORY\tTAG\tDIGEST\tIMAGE ID\tCREATED\tSIZE")
			} else {
				fmt.Fprintln(tw, "REPOSITORY\tTAG\tIMAGE ID\tCREATED\tSIZE")
			}
			for _, r := range rows {
				id := strings.TrimPrefix(r.ID, "sha256:")
				if len(id) > 12 {
					id = id[:12]
				}
				created := humanAgo(r.Created)
				if len(r.Platforms) > 0 {
					created = strings.Join(r.Platforms, ",")
				}
				if digests {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.Repository, r.Tag, r.Digest, id, created, progress.HumanSize(r.Size))
				} else {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.Repository, r.Tag, id, created, progress.HumanSize(r.Size))
				}
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&digests, "digests", false, "show manifest digests")
	cmd.Flags().StringVar(&format, "format", "table", "output format: table or json")
	return cmd
}

func lsRow(ctx context.Context, e *env, st *store.Store, d v1.Descriptor) lsEntry {
	name := d.Annotations[store.RefNameAnnotation]
	r := lsEntry{Repository: "<none>", Tag: "<none>", Name: name, Digest: d.Digest.String(), ID: d.Digest.String()}
	if name != "" && !image.IsID(name) {
		repo, tag := image.SplitName(image.FamiliarName(name))
		r.Repository, r.Tag = repo, tag
		if strings.HasPrefix(tag, "@") {
			r.Tag = "<none>"
		}
	}
	s, err := image.Open(ctx, image.Reference{Transport: image.Local, Name: d.Digest.String()}, image.WithStore(st))
	if err != nil {
		e.log.Warn("ls: cannot read image", "name", name, "err", err)
		return r
	}
	defer s.Close()
	sizeOf := func(img v1.Image) int64 {
		m, err := img.Manifest()
		if err != nil {
			return 0
		}
		n := m.Config.Size
		for _, l := range m.Layers {
			n += l.Size
		}
		return n
	}
	if s.Image != nil {
		if cn, err := s.Image.ConfigName(); err == nil {
			r.ID = cn.String()
		}
		if cf, err := s.Image.ConfigFile(); err == nil {
			r.Created = cf.Created.Time
		}
		r.Size = sizeOf(s.Image)
		return r
	}
	r.Platforms = platformsOf(s.Index)
	if m, err := s.Index.IndexManifest(); err == nil {
		for _, c := range m.Manifests {
			if img, err := s.Index.Image(c.Digest); err == nil {
				r.Size += sizeOf(img)
			}
		}
	}
	return r
}

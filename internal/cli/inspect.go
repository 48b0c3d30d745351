package cli

import (
	"encoding/json"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/spf13/cobra"

	"github.com/lading-dev/lading/internal/image"
)

// inspectOutput is the JSON `lading inspect` prints.
type inspectOutput struct {
	Name        string            `json:"Name,omitempty"`
	ID          string            `json:"Id"`
	Digest      string            `json:"Digest"`
	IndexDigest string            `json:"IndexDigest,omitempty"`
	MediaType   types.MediaType   `json:"MediaType"`
	Platform    v1.Platform       `json:"Platform"`
	Platforms   []string          `json:"Platforms,omitempty"`
	Created     *time.Time        `json:"Created,omitempty"`
	Author      string            `json:"Author,omitempty"`
	Size        int64             `json:"Size"`
	Config      v1.Config         `json:"Config"`
	Layers      []inspectLayer    `json:"Layers"`
	Annotations map[string]string `json:"Annotations,omitempty"`
}

type inspectLayer struct {
	Digest    string          `json:"Digest"`
	DiffID    string          `json:"DiffID"`
	Size      int64           `json:"Size"`
	MediaType types.MediaType `json:"MediaType"`
	URLs      []string        `json:"URLs,omitempty"`
}

func newInspectCommand(e *env) *cobra.Command {
	var (
		f      imageFlags
		raw    bool
		config bool
	)
	cmd := &cobra.Command{
		Use:   "inspect IMAGE",
		Short: "Show an image's identity, platform, config and layers as JSON",
		Long: `Show an image as JSON: its ID (config digest), manifest digest, platform,
creation time, total size, run config (env, cmd, entrypoint...) and layers with
their digests, diffIDs, sizes and media types. IMAGE is any transport reference;
a bare name is looked up in the local store first, then in its registry. For a
multi-platform image, the image for --platform is shown, with the index digest
and the platforms it offers. --raw prints the manifest (or index) as stored,
--config the config blob.`,
		Example: `  lading inspect alpine:3.20
  lading inspect --platform linux/arm64 oci-archive:multi.oci.tar
  lading inspect --raw docker://alpine:3.20`,
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
			s, err := image.Open(ctx, ref, ss.opts...)
			if err != nil {
				return err
			}
			defer s.Close()
			if raw && (s.Index != nil && f.platform == "") {
				b, err := s.Index.RawManifest()
				if err != nil {
					return err
				}
				_, err = e.stdout.Write(append(b, '\n'))
				return err
			}
			img, err := s.Select(mustPlatform(f.platform))
			if err != nil {
				return err
			}
			switch {
			case raw:
				b, err := img.RawManifest()
				if err != nil {
					return err
				}
				_, err = e.stdout.Write(append(b, '\n'))
				return err
			case config:
				b, err := img.RawConfigFile()
				if err != nil {
					return err
				}
				_, err = e.stdout.Write(append(b, '\n'))
				return err
			}
			out, err := describe(img)
			if err != nil {
				return err
			}
			if len(s.Names) > 0 {
				out.Name = s.Names[0]
			} else if (ref.Transport == image.Auto || ref.Transport == image.Registry || ref.Transport == image.Local || ref.Transport == image.Daemon) && !image.IsID(ref.Name) {
				out.Name = ref.Name
			}
			if s.Index != nil {
				d, _ := s.Index.Digest()
				out.IndexDigest = d.String()
				out.Platforms = platformsOf(s.Index)
			}
			enc := json.NewEncoder(e.stdout)
			enc.SetIndent("", "  ")
			return enc.Encode(out)
		},
	}
	cmd.Flags().BoolVar(&raw, "raw", false, "print the manifest or index as stored")
	cmd.Flags().BoolVar(&config, "config", false, "print the config blob")
	f.register(cmd.Flags())
	return cmd
}

// describe fills the inspect output from an image.
func describe(img v1.Image) (*inspectOutput, error) {
	m, err := img.Manifest()
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	d, err := img.Digest()
	if err != nil {
		return nil, err
	}
	mt, _ := img.MediaType()
	out := &inspectOutput{
		ID:          m.Config.Digest.String(),
		Digest:      d.String(),
		MediaType:   mt,
		Platform:    v1.Platform{OS: cf.OS, Architecture: cf.Architecture, Variant: cf.Variant, OSVersion: cf.OSVersion},
		Author:      cf.Author,
		Config:      cf.Config,
		Annotations: m.Annotations,
		Layers:      []inspectLayer{},
	}
	if !cf.Created.IsZero() {
		t := cf.Created.Time.UTC()
		out.Created = &t
	}
	for i, l := range m.Layers {
		il := inspectLayer{Digest: l.Digest.String(), Size: l.Size, MediaType: l.MediaType, URLs: l.URLs}
		if i < len(cf.RootFS.DiffIDs) {
			il.DiffID = cf.RootFS.DiffIDs[i].String()
		}
		out.Size += l.Size
		out.Layers = append(out.Layers, il)
	}
	return out, nil
}

// platformsOf lists the platforms of an index, nested indexes included.
func platformsOf(x v1.ImageIndex) []string {
	m, err := x.IndexManifest()
	if err != nil {
		return nil
	}
	var out []string
	for _, d := range m.Manifests {
		if d.MediaType == types.OCIImageIndex || d.MediaType == types.DockerManifestList {
			if c, err := x.ImageIndex(d.Digest); err == nil {
				out = append(out, platformsOf(c)...)
			}
			continue
		}
		if d.Platform != nil {
			out = append(out, d.Platform.String())
		}
	}
	return out
}

package cli

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/lading-dev/lading/internal/analyze"
	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/image"
	"github.com/lading-dev/lading/internal/sbom"
)

func newSBOMCommand(e *env) *cobra.Command {
	var (
		f      analyzeFlags
		format string
		output string
	)
	cmd := &cobra.Command{
		Use:   "sbom IMAGE --format cyclonedx|spdx|json [-o FILE]",
		Short: "Write a software bill of materials of an image",
		Long: `Analyze IMAGE (as lading inventory does) and write its bill of materials:
CycloneDX 1.6 JSON, SPDX 2.3 JSON, or lading's own JSON inventory. Every
package carries its package URL, licenses, the file that declared it and the
layers that introduced and last changed it. IMAGE is any transport reference.
A package found in several places is one component with every place.
--mode fs DIR describes a source tree (lockfiles and manifests included)
instead of what an image has installed.`,
		Example: `  lading sbom alpine:3.20 --format cyclonedx -o alpine.cdx.json
  lading sbom oci-archive:app.oci.tar --format spdx
  lading sbom docker-daemon:app:1 --format json
  lading sbom --mode fs ./myproject --format cyclonedx`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var write func(io.Writer, sbom.Image, *analyze.Inventory) error
			switch strings.ToLower(format) {
			case "cyclonedx", "cdx":
				write = func(w io.Writer, img sbom.Image, inv *analyze.Inventory) error {
					return sbom.CycloneDX(w, img, inv, sbom.Options{ToolVersion: ladingVersion()})
				}
			case "spdx", "spdx-json":
				write = func(w io.Writer, img sbom.Image, inv *analyze.Inventory) error {
					return sbom.SPDX(w, img, inv, sbom.Options{ToolVersion: ladingVersion()})
				}
			case "json":
				write = sbom.JSON
			case "":
				return usageError{errdefs.InvalidArgument(fmt.Errorf("--format is required: cyclonedx, spdx or json"))}
			default:
				return usageError{errdefs.InvalidArgument(fmt.Errorf("--format %q: want cyclonedx, spdx or json", format))}
			}
			img, inv, err := e.inventoryOf(cmd.Context(), &f, args[0])
			if err != nil {
				return err
			}
			if output == "" || output == "-" {
				return write(e.stdout, img, inv)
			}
			return image.WriteFileAtomic(output, func(w io.Writer) error { return write(w, img, inv) })
		},
	}
	cmd.Flags().StringVar(&format, "format", "", "cyclonedx, spdx or json (required)")
	cmd.Flags().StringVarP(&output, "output", "o", "", "file to write (default: standard output)")
	f.register(cmd.Flags())
	return cmd
}

// Package sbom writes an image's inventory (package analyze) as a software
// bill of materials: CycloneDX 1.6 JSON (through CycloneDX's Go library),
// SPDX 2.3 JSON (through the SPDX Go tools), or lading's own JSON, the
// Inventory as it is with the image it describes.
//
// Every package carries its package URL, licenses, the file that declared
// it and the layers that introduced and last changed it; in CycloneDX as
// properties named "lading:…", in SPDX as the package's source information
// and a comment. License strings that are SPDX identifiers or expressions of
// them are written as such; any other license name is written as a name
// (CycloneDX) or as a LicenseRef with the name as extracted text (SPDX),
// so the documents stay valid.
package sbom

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/lading-dev/lading/internal/analyze"
)

// Image identifies the image an SBOM describes.
type Image struct {
	// Name is the reference the image was given by ("alpine:3.20",
	// "oci-archive:app.tar").
	Name string `json:"name"`
	// Digest is the manifest digest.
	Digest string `json:"digest,omitempty"`
	// ID is the config digest (docker's image ID).
	ID string `json:"id,omitempty"`
	// Platform is "os/arch[/variant]".
	Platform string `json:"platform,omitempty"`
}

// Options set what does not come from the inventory.
type Options struct {
	// Tool is the name and version of the tool that writes the SBOM
	// ("lading (devel)").
	ToolName, ToolVersion string
	// Time is the creation time (default: now).
	Time time.Time
	// Serial is the document's unique ID, a UUID (default: a random one).
	Serial string
}

func (o Options) normalize() Options {
	if o.ToolName == "" {
		o.ToolName = "lading"
	}
	if o.ToolVersion == "" {
		o.ToolVersion = "(devel)"
	}
	if o.Time.IsZero() {
		o.Time = time.Now()
	}
	o.Time = o.Time.UTC().Truncate(time.Second)
	if o.Serial == "" {
		o.Serial = newUUID()
	}
	return o
}

func newUUID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// Document is lading's own JSON: the image and its inventory.
type Document struct {
	Schema string `json:"schema"`
	Image  Image  `json:"image"`
	*analyze.Inventory
}

// Schema names the version of lading's JSON.
const Schema = "lading-inventory/v1"

// JSON writes lading's own JSON document.
func JSON(w io.Writer, img Image, inv *analyze.Inventory) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(Document{Schema: Schema, Image: img, Inventory: inv})
}

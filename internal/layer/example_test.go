package layer_test

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"log"

	"github.com/lading-dev/lading/internal/layer"
)

// layerOf returns a layer tar with the given files (a name ending in "/"
// is a directory).
func layerOf(files map[string]string, order ...string) []byte {
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, name := range order {
		h := &tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(files[name]))}
		if name[len(name)-1] == '/' {
			h.Typeflag, h.Mode = tar.TypeDir, 0o755
		}
		tw.WriteHeader(h)
		io.WriteString(tw, files[name])
	}
	tw.Close()
	return b.Bytes()
}

func source(name string, data []byte) layer.Source {
	return layer.Source{Name: name, Open: func(context.Context) (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	}}
}

// Export merges a base layer and a layer that removes /etc/motd.
func ExampleExport() {
	base := layerOf(map[string]string{"etc/motd": "Welcome!\n", "etc/os-release": "ID=alpine\n"},
		"etc/", "etc/motd", "etc/os-release")
	top := layerOf(map[string]string{"etc/hostname": "box\n"}, "etc/.wh.motd", "etc/hostname")

	var merged bytes.Buffer
	err := layer.Export(context.Background(), &merged, []layer.Source{source("layer 1/2", base), source("layer 2/2", top)})
	if err != nil {
		log.Fatal(err)
	}
	tr := tar.NewReader(&merged)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		fmt.Println(h.Name)
	}
	// Output:
	// etc/hostname
	// etc/os-release
	// etc/
}

// Walk finds one file in a layer, reads it and stops.
func ExampleWalk() {
	data := layerOf(map[string]string{"./etc/os-release": "ID=alpine\n"}, "./etc/", "./etc/os-release", "./bin/")
	err := layer.Walk(context.Background(), bytes.NewReader(data), func(e *layer.Entry) error {
		if e.Name != "etc/os-release" {
			return nil // content not read is skipped
		}
		b, err := io.ReadAll(e)
		if err != nil {
			return err
		}
		fmt.Printf("%s (%s): %s", e.Name, e.Kind, b)
		return fs.SkipAll
	}, layer.WithName("layer 1/1"))
	if err != nil {
		log.Fatal(err)
	}
	// Output:
	// etc/os-release (regular): ID=alpine
}

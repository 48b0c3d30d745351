package bench

import (
	"archive/tar"
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Generated images, for measuring how memory grows with the number of
// files of an image, not the number of packages: GenerateImage writes an
// OCI image layout of one uncompressed layer that looks like a distribution
// root filesystem of many small files:
//
//	etc/os-release                   Alpine 3.20
//	lib/apk/db/installed             one package per 200 files, listing them (F:/R: lines)
//	usr/share/pkgNNNNN/dNN/fNNN.dat  the files, 1 to 11 KiB each (6 KiB on average)
//	app/node_modules/mNNNNN/...      one npm package per 1,000 files
//
// so that 305,000 files make about 2.1 GB. Contents are pseudo-random from
// a fixed seed: the same count gives the same image.

// GenerateImage writes an OCI image layout of n files to dir, which must
// not exist or be empty, and returns the layer's size in bytes.
func GenerateImage(ctx context.Context, dir string, n int) (int64, error) {
	if err := os.MkdirAll(filepath.Join(dir, "blobs", "sha256"), 0o755); err != nil {
		return 0, err
	}
	tmp, err := os.CreateTemp(filepath.Join(dir, "blobs", "sha256"), "layer-")
	if err != nil {
		return 0, err
	}
	defer os.Remove(tmp.Name())
	h := sha256.New()
	cw := &countWriter{w: io.MultiWriter(tmp, h)}
	bw := bufio.NewWriterSize(cw, 1<<20)
	if err := writeLayer(ctx, bw, n); err != nil {
		tmp.Close()
		return 0, err
	}
	if err := bw.Flush(); err != nil {
		tmp.Close()
		return 0, err
	}
	if err := tmp.Close(); err != nil {
		return 0, err
	}
	layerDigest := "sha256:" + hex.EncodeToString(h.Sum(nil))
	if err := os.Rename(tmp.Name(), blobPath(dir, layerDigest)); err != nil {
		return 0, err
	}
	config, _ := json.Marshal(map[string]any{
		"architecture": "amd64",
		"os":           "linux",
		"created":      "2024-01-01T00:00:00Z",
		"config":       map[string]any{"Cmd": []string{"/bin/sh"}},
		"rootfs":       map[string]any{"type": "layers", "diff_ids": []string{layerDigest}},
		"history":      []map[string]string{{"created": "2024-01-01T00:00:00Z", "created_by": fmt.Sprintf("lading bench: %d generated files", n)}},
	})
	configDigest, err := writeBlob(dir, config)
	if err != nil {
		return 0, err
	}
	manifest, _ := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.manifest.v1+json",
		"config":        map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": configDigest, "size": len(config)},
		"layers":        []map[string]any{{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layerDigest, "size": cw.n}},
	})
	manifestDigest, err := writeBlob(dir, manifest)
	if err != nil {
		return 0, err
	}
	index, _ := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"manifests": []map[string]any{{
			"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": manifestDigest, "size": len(manifest),
			"annotations": map[string]string{"org.opencontainers.image.ref.name": "latest"},
		}},
	})
	if err := os.WriteFile(filepath.Join(dir, "index.json"), index, 0o644); err != nil {
		return 0, err
	}
	return cw.n, os.WriteFile(filepath.Join(dir, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644)
}

func blobPath(dir, digest string) string {
	return filepath.Join(dir, "blobs", "sha256", strings.TrimPrefix(digest, "sha256:"))
}

func writeBlob(dir string, b []byte) (string, error) {
	s := sha256.Sum256(b)
	d := "sha256:" + hex.EncodeToString(s[:])
	return d, os.WriteFile(blobPath(dir, d), b, 0o644)
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

const (
	filesPerPackage = 200
	filesPerDir     = 100
	filesPerNpm     = 1000
)

// writeLayer writes the layer's tar stream.
func writeLayer(ctx context.Context, w io.Writer, n int) error {
	tw := tar.NewWriter(w)
	mtime := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	dirs := map[string]bool{}
	mkdirs := func(p string) error {
		var parts []string
		for _, c := range strings.Split(p, "/") {
			parts = append(parts, c)
			d := strings.Join(parts, "/")
			if dirs[d] {
				continue
			}
			dirs[d] = true
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d + "/", Mode: 0o755, ModTime: mtime}); err != nil {
				return err
			}
		}
		return nil
	}
	put := func(name string, body []byte) error {
		if err := mkdirs(name[:strings.LastIndexByte(name, '/')]); err != nil {
			return err
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(body)), ModTime: mtime}); err != nil {
			return err
		}
		_, err := tw.Write(body)
		return err
	}
	if err := put("etc/os-release", []byte("NAME=\"Alpine Linux\"\nID=alpine\nVERSION_ID=3.20.3\nPRETTY_NAME=\"Alpine Linux v3.20\"\n")); err != nil {
		return err
	}
	// The database first, as the files it lists follow.
	var db strings.Builder
	for p := 0; p*filesPerPackage < n; p++ {
		fmt.Fprintf(&db, "C:Q1%027d=\nP:pkg%05d\nV:1.%d-r0\nA:x86_64\nS:1\nI:1\nT:generated\nU:https://example.org\nL:MIT\no:pkg%05d\n", p, p, p%7, p)
		for f := p * filesPerPackage; f < min(n, (p+1)*filesPerPackage); f += filesPerDir {
			fmt.Fprintf(&db, "F:%s\n", genDir(f))
			for k := f; k < min(n, f+filesPerDir, (p+1)*filesPerPackage); k++ {
				fmt.Fprintf(&db, "R:f%03d.dat\n", k%filesPerDir)
			}
		}
		db.WriteString("\n")
	}
	if err := put("lib/apk/db/installed", []byte(db.String())); err != nil {
		return err
	}
	r := rand.New(rand.NewPCG(uint64(n), 305))
	noise := make([]byte, 64<<10)
	for i := range noise {
		noise[i] = byte(r.Uint32())
	}
	for f := 0; f < n; f++ {
		if f%1000 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		if f%filesPerNpm == 0 {
			m := f / filesPerNpm
			pj := fmt.Sprintf(`{"name": "m%05d", "version": "1.0.%d", "license": "MIT"}`, m, m%10)
			if err := put(fmt.Sprintf("app/node_modules/m%05d/package.json", m), []byte(pj)); err != nil {
				return err
			}
		}
		size := 1024 + r.IntN(10<<10)
		off := r.IntN(len(noise) - size)
		if err := put(fmt.Sprintf("%s/f%03d.dat", genDir(f), f%filesPerDir), noise[off:off+size]); err != nil {
			return err
		}
	}
	return tw.Close()
}

// genDir is the directory of generated file f.
func genDir(f int) string {
	return fmt.Sprintf("usr/share/pkg%05d/d%02d", f/filesPerPackage, f%filesPerPackage/filesPerDir)
}

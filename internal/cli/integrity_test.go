package cli

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Images the tests build byte by byte, to say exactly what their manifests
// and configs claim.

type tarFile struct{ name, body string }

func tarBytes(t testing.TB, files ...tarFile) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, f := range files {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o644, Size: int64(len(f.body)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(f.body))
	}
	tw.Close()
	return b.Bytes()
}

func gzipBytes(b []byte) []byte {
	var out bytes.Buffer
	zw := gzip.NewWriter(&out)
	zw.Write(b)
	zw.Close()
	return out.Bytes()
}

func sha256Of(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

// testLayer is one layer of a hand-made image: the blob as stored, the
// digest and media type the manifest gives it, the diffID the config gives.
type testLayer struct {
	blob              []byte
	digest, mediaType string
	diffID            string
}

// gzLayer is a gzip layer whose manifest and config tell the truth.
func gzLayer(tarball []byte) testLayer {
	blob := gzipBytes(tarball)
	return testLayer{blob: blob, digest: sha256Of(blob), mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", diffID: sha256Of(tarball)}
}

// writeLayout writes an OCI layout of one image and returns its reference.
// Blobs of layers with a nil blob are left out (missing). diffIDs, when
// not nil, replace the layers' in the config.
func writeLayout(t testing.TB, dir string, layers []testLayer, diffIDs []string) string {
	t.Helper()
	blobs := filepath.Join(dir, "blobs", "sha256")
	if err := os.MkdirAll(blobs, 0o755); err != nil {
		t.Fatal(err)
	}
	put := func(digest string, b []byte) {
		if err := os.WriteFile(filepath.Join(blobs, strings.TrimPrefix(digest, "sha256:")), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	type desc struct {
		MediaType string `json:"mediaType"`
		Digest    string `json:"digest"`
		Size      int64  `json:"size"`
	}
	var descs []desc
	var ids []string
	for _, l := range layers {
		descs = append(descs, desc{l.mediaType, l.digest, int64(len(l.blob))})
		ids = append(ids, l.diffID)
		if l.blob != nil {
			put(l.digest, l.blob)
		}
	}
	if diffIDs != nil {
		ids = diffIDs
	}
	cfg, _ := json.Marshal(map[string]any{"architecture": "amd64", "os": "linux", "rootfs": map[string]any{"type": "layers", "diff_ids": ids}})
	put(sha256Of(cfg), cfg)
	m, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
		"config": desc{"application/vnd.oci.image.config.v1+json", sha256Of(cfg), int64(len(cfg))}, "layers": descs})
	put(sha256Of(m), m)
	idx, _ := json.Marshal(map[string]any{"schemaVersion": 2, "manifests": []desc{{"application/vnd.oci.image.manifest.v1+json", sha256Of(m), int64(len(m))}}})
	os.WriteFile(filepath.Join(dir, "index.json"), idx, 0o644)
	os.WriteFile(filepath.Join(dir, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644)
	return "oci:" + dir
}

func apkInstalled(pkgs ...string) string {
	var b strings.Builder
	for _, p := range pkgs {
		name, ver, _ := strings.Cut(p, "=")
		fmt.Fprintf(&b, "P:%s\nV:%s\nA:x86_64\n\n", name, ver)
	}
	return b.String()
}

// tinyDB builds a database from a hand-written Alpine secdb for 3.20.
func tinyDB(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	secdb := `distroversion: v3.20
reponame: main
urlprefix: https://dl-cdn.alpinelinux.org/alpine
packages:
  - pkg:
      name: musl
      secfixes:
        1.2.5-r1:
          - CVE-2025-26519
`
	if err := os.WriteFile(filepath.Join(dir, "main.yaml"), []byte(secdb), 0o644); err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(dir, "vuln.db")
	(&lading{t: t, root: dir}).ok("db", "build", "--from", filepath.Join(dir, "main.yaml"), "-o", db)
	return db
}

var alpineBase = []tarFile{{"etc/alpine-release", "3.20.3\n"}, {"lib/apk/db/installed", apkInstalled("musl=1.2.5-r0")}}

// An image whose layers are not what its manifest and config say fails
// scan, sbom and inventory with an error naming the layer and its digest;
// a package database that cannot be parsed stays a warning.
func TestIntegrityFailures(t *testing.T) {
	db := tinyDB(t)
	base := gzLayer(tarBytes(t, alpineBase...))
	app := gzLayer(tarBytes(t, tarFile{"app/x", "x"}))

	flipped := gzLayer(tarBytes(t, tarFile{"app/big", strings.Repeat("lading ", 4096)}))
	flipped.blob = bytes.Clone(flipped.blob)
	flipped.blob[len(flipped.blob)/2] ^= 0xff

	badDB := gzLayer(tarBytes(t, tarFile{"usr/lib/apk/db/installed", "P:" + strings.Repeat("x", 2<<20) + "\n"}))

	var many []testLayer
	for i := range 10000 {
		many = append(many, testLayer{digest: fmt.Sprintf("sha256:%064x", i+1), mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", diffID: fmt.Sprintf("sha256:%064x", i+1)})
	}

	for _, tc := range []struct {
		name    string
		layers  []testLayer
		diffIDs []string
		want    []string // in stderr; exit 1
		warning string   // exit 0 with this warning instead
	}{
		{name: "missing blob", layers: []testLayer{base, {digest: app.digest, mediaType: app.mediaType, diffID: app.diffID}},
			want: []string{"layer 2/2 " + app.digest, "missing"}},
		{name: "blob does not match its digest", layers: []testLayer{base, flipped},
			want: []string{"layer 2/2 " + flipped.digest, "got digest sha256:" + strings.TrimPrefix(sha256Of(flipped.blob), "sha256:")}},
		{name: "diffID does not match the content", layers: []testLayer{base, app}, diffIDs: []string{base.diffID, base.diffID},
			want: []string{"layer 2/2 " + app.digest, "the image config gives diffID " + base.diffID + ", but the layer's content has diffID " + app.diffID}},
		{name: "fewer diffIDs than layers", layers: []testLayer{base, app}, diffIDs: []string{base.diffID},
			want: []string{"the manifest lists 2 layers, but the config gives 1 diffIDs"}},
		{name: "10000 missing blobs", layers: many,
			want: []string{"layer 1/10000 sha256:0000000000000000000000000000000000000000000000000000000000000001", "missing"}},
		{name: "corrupt package database", layers: []testLayer{base, badDB},
			warning: "/usr/lib/apk/db/installed: apk: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ref := writeLayout(t, t.TempDir(), tc.layers, tc.diffIDs)
			l := newLading(t)
			for _, args := range [][]string{
				{"scan", "--db", db, ref},
				{"sbom", "--format", "cyclonedx", ref},
				{"inventory", ref},
			} {
				out, errs, code := l.run(args...)
				if tc.warning != "" {
					if code != 0 || !strings.Contains(errs, tc.warning) {
						t.Errorf("%s: exit %d, stderr %q, want 0 and a warning with %q", args[0], code, errs, tc.warning)
					}
					continue
				}
				if code != exitError {
					t.Errorf("%s: exit %d, want %d; stdout %.200q", args[0], code, exitError, out)
				}
				for _, w := range tc.want {
					if !strings.Contains(errs, w) {
						t.Errorf("%s: stderr %q lacks %q", args[0], errs, w)
					}
				}
				if strings.Contains(errs, "flate") {
					t.Errorf("%s: stderr %q blames the compression", args[0], errs)
				}
			}
		})
	}
}

// The cache is keyed by verified blob digests: an image whose config names
// the diffIDs of benign, cached layers over other blobs is reported
// truthfully (here: refused, its layers are not what its config says).
func TestCachePoisoningRefused(t *testing.T) {
	db := tinyDB(t)
	l := newLading(t)
	benign := gzLayer(tarBytes(t, alpineBase...))
	good := writeLayout(t, t.TempDir(), []testLayer{benign}, nil)
	out := l.ok("inventory", good)
	if !strings.Contains(out, "musl") {
		t.Fatalf("benign image:\n%s", out)
	}
	evil := gzLayer(tarBytes(t, tarFile{"etc/alpine-release", "3.20.3\n"}, tarFile{"lib/apk/db/installed", apkInstalled("musl=1.2.5-r0", "backdoor=1-r0")}))
	attack := writeLayout(t, t.TempDir(), []testLayer{evil}, []string{benign.diffID})
	for _, args := range [][]string{{"inventory", attack}, {"sbom", "--format", "json", attack}, {"scan", "--db", db, attack}} {
		_, errs, code := l.run(args...)
		if code != exitError || !strings.Contains(errs, "layer 1/1 "+evil.digest) || !strings.Contains(errs, "the image config gives diffID "+benign.diffID) {
			t.Errorf("%s of the attack image: exit %d, %q", args[0], code, errs)
		}
	}
	// The same blobs with a truthful config are reported as what they hold.
	honest := writeLayout(t, t.TempDir(), []testLayer{evil}, nil)
	if out := l.ok("inventory", honest); !strings.Contains(out, "backdoor") {
		t.Errorf("honest image:\n%s", out)
	}

	// A docker-archive has no blob digests: its layers' are the config's
	// diffIDs, claims that are verified when the layer is read, on a
	// cache hit too.
	dir := t.TempDir()
	benignTar := tarBytes(t, alpineBase...)
	evilTar := tarBytes(t, tarFile{"etc/alpine-release", "3.20.3\n"}, tarFile{"lib/apk/db/installed", apkInstalled("musl=1.2.5-r0", "backdoor=1-r0")})
	dockerArchiveFile(t, filepath.Join(dir, "benign.tar"), "example/benign:1", benignTar)
	dockerArchiveClaiming(t, filepath.Join(dir, "attack.tar"), "example/attack:1", []string{sha256Of(benignTar)}, evilTar)
	l.ok("inventory", "docker-archive:"+filepath.Join(dir, "benign.tar"))
	for _, args := range [][]string{{"inventory", "docker-archive:" + filepath.Join(dir, "attack.tar")}, {"scan", "--db", db, "docker-archive:" + filepath.Join(dir, "attack.tar")}} {
		_, errs, code := l.run(args...)
		if code != exitError || !strings.Contains(errs, "layer 1/1 "+sha256Of(benignTar)) || !strings.Contains(errs, "got digest "+sha256Of(evilTar)) {
			t.Errorf("%s of the docker-archive attack: exit %d, %q", args[0], code, errs)
		}
	}
}

// A dir: root filesystem has no blob digest a read verifies: its layer is
// analyzed every time and never cached.
func TestDirNotCached(t *testing.T) {
	l := newLading(t)
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "lib/apk/db"), 0o755)
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	os.WriteFile(filepath.Join(root, "etc/alpine-release"), []byte("3.20.3\n"), 0o644)
	os.WriteFile(filepath.Join(root, "lib/apk/db/installed"), []byte(apkInstalled("musl=1.2.5-r0")), 0o644)
	l.ok("inventory", "dir:"+root)
	l.ok("sbom", "--format", "json", "dir:"+root)
	if out := l.ok("cache", "info"); !strings.Contains(out, ": 0 layers, 0 entries") {
		t.Errorf("cache info after scans of a dir: %s", out)
	}
}

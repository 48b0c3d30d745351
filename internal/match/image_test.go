package match

// Helpers that read package lists from the corpus images for the corpus
// tests: just enough of OCI layouts, layer tars with whiteouts, the apk
// installed database and the dpkg status file.

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"io"
	"path"
	"strings"
	"testing"

	"github.com/lading-dev/lading/internal/corpustest"
)

// imageFile returns the content of file p in the merged filesystem of the
// first image of an OCI layout tar, or nil when it is not there.
func imageFile(t *testing.T, ociTar, p string) []byte {
	t.Helper()
	var content []byte
	dir, base := path.Split(p)
	for _, l := range corpustest.Layers(t, ociTar) {
		zr, err := gzip.NewReader(bytes.NewReader(l))
		if err != nil {
			t.Fatal(err)
		}
		lt := tar.NewReader(zr)
		for {
			h, err := lt.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			name := strings.TrimPrefix(h.Name, "./")
			switch name {
			case p:
				if content, err = io.ReadAll(lt); err != nil {
					t.Fatal(err)
				}
			case dir + ".wh." + base:
				content = nil
			}
		}
	}
	return content
}

// stanzas splits "Key: value" stanzas separated by blank lines (apk's
// installed database uses "K:value").
func stanzas(b []byte, sep string) []map[string]string {
	var out []map[string]string
	cur := map[string]string{}
	last := ""
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		l := sc.Text()
		if l == "" {
			if len(cur) > 0 {
				out = append(out, cur)
			}
			cur, last = map[string]string{}, ""
			continue
		}
		if (l[0] == ' ' || l[0] == '\t') && last != "" {
			continue
		}
		k, v, ok := strings.Cut(l, sep)
		if !ok {
			continue
		}
		last = k
		cur[k] = strings.TrimSpace(v)
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

// osRelease reads ID and VERSION_ID.
func osRelease(t *testing.T, ociTar string) (id, versionID string) {
	t.Helper()
	b := imageFile(t, ociTar, "etc/os-release")
	if len(b) == 0 { // Debian's is a symlink to ../usr/lib/os-release
		b = imageFile(t, ociTar, "usr/lib/os-release")
	}
	for _, l := range strings.Split(string(b), "\n") {
		k, v, _ := strings.Cut(l, "=")
		v = strings.Trim(v, `"`)
		switch k {
		case "ID":
			id = v
		case "VERSION_ID":
			versionID = v
		}
	}
	return id, versionID
}

// apkPackages lists the packages of an Alpine image.
func apkPackages(t *testing.T, ociTar, ns string) []Package {
	t.Helper()
	var out []Package
	for _, s := range stanzas(imageFile(t, ociTar, "lib/apk/db/installed"), ":") {
		out = append(out, Package{Name: s["P"], Version: s["V"], SourceName: s["o"], Namespace: ns})
	}
	return out
}

// dpkgPackages lists the installed packages of a dpkg status file.
func dpkgPackages(t *testing.T, ociTar, ns string) []Package {
	t.Helper()
	var out []Package
	for _, s := range stanzas(imageFile(t, ociTar, "var/lib/dpkg/status"), ": ") {
		if s["Status"] != "install ok installed" {
			continue
		}
		p := Package{Name: s["Package"], Version: s["Version"], SourceName: s["Package"], SourceVersion: s["Version"], Namespace: ns}
		if src := s["Source"]; src != "" {
			name, ver, _ := strings.Cut(src, " ")
			p.SourceName = name
			if ver = strings.Trim(ver, "()"); ver != "" {
				p.SourceVersion = ver
			}
		}
		out = append(out, p)
	}
	return out
}

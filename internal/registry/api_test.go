package registry_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/lading-dev/lading/internal/registry"
)

func TestBase(t *testing.T) {
	tr := newRegistry(t)
	r := tr.do(t, "GET", "/v2/", nil)
	want(t, "GET /v2/", r, http.StatusOK, "")
	if got := r.header.Get("Docker-Distribution-Api-Version"); got != "registry/2.0" {
		t.Errorf("Docker-Distribution-Api-Version = %q", got)
	}
	want(t, "GET /v2", tr.do(t, "GET", "/v2", nil), http.StatusOK, "")
	want(t, "POST /v2/", tr.do(t, "POST", "/v2/", nil), http.StatusMethodNotAllowed, "UNSUPPORTED")
	want(t, "unknown endpoint", tr.do(t, "GET", "/v2/repo/whatever/x", nil), http.StatusNotFound, "")
	want(t, "outside the API", tr.do(t, "GET", "/index.html", nil), http.StatusNotFound, "")
}

func TestBlobMonolithic(t *testing.T) {
	tr := newRegistry(t)
	b := randomBytes(3000)
	d := digestOf(b)
	r := tr.do(t, "POST", "/v2/a/b/blobs/uploads/?digest="+d, b)
	want(t, "POST ?digest", r, http.StatusCreated, "")
	if loc := r.header.Get("Location"); loc != "/v2/a/b/blobs/"+d {
		t.Errorf("Location = %q", loc)
	}
	if got := r.header.Get("Docker-Content-Digest"); got != d {
		t.Errorf("Docker-Content-Digest = %q", got)
	}
	r = tr.do(t, "HEAD", "/v2/a/b/blobs/"+d, nil)
	want(t, "HEAD", r, http.StatusOK, "")
	if r.header.Get("Content-Length") != "3000" || r.header.Get("Docker-Content-Digest") != d || len(r.body) != 0 {
		t.Errorf("HEAD headers %v, body %d bytes", r.header, len(r.body))
	}
	r = tr.do(t, "GET", "/v2/a/b/blobs/"+d, nil)
	want(t, "GET", r, http.StatusOK, "")
	if !bytes.Equal(r.body, b) {
		t.Error("GET returned other bytes")
	}
	// Another repository does not see it.
	want(t, "GET from another repository", tr.do(t, "GET", "/v2/other/blobs/"+d, nil), http.StatusNotFound, "BLOB_UNKNOWN")
	// POST then PUT with the body.
	b2 := randomBytes(100)
	r = tr.do(t, "POST", "/v2/a/b/blobs/uploads/", nil)
	want(t, "POST", r, http.StatusAccepted, "")
	loc := r.header.Get("Location")
	if r.header.Get("Docker-Upload-UUID") == "" || r.header.Get("Range") != "0-0" {
		t.Errorf("POST headers %v", r.header)
	}
	r = tr.do(t, "PUT", loc+"?digest="+digestOf(b2), b2)
	want(t, "PUT with body", r, http.StatusCreated, "")
	want(t, "session closed", tr.do(t, "GET", loc, nil), http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN")
	// The empty blob.
	want(t, "empty blob", tr.do(t, "POST", "/v2/a/b/blobs/uploads/?digest="+digestOf(nil), []byte{}), http.StatusCreated, "")
	r = tr.do(t, "GET", "/v2/a/b/blobs/"+digestOf(nil), nil)
	want(t, "GET empty", r, http.StatusOK, "")
	if r.header.Get("Content-Length") != "0" {
		t.Errorf("empty blob Content-Length %q", r.header.Get("Content-Length"))
	}
}

func TestBlobChunked(t *testing.T) {
	tr := newRegistry(t)
	b := randomBytes(10000)
	d := digestOf(b)
	r := tr.do(t, "POST", "/v2/repo/blobs/uploads/", nil, "Content-Length", "0")
	loc := r.header.Get("Location")
	chunk := func(start, end int, method, suffix string) response {
		return tr.do(t, method, loc+suffix, b[start:end+1],
			"Content-Range", fmt.Sprintf("%d-%d", start, end),
			"Content-Type", "application/octet-stream")
	}
	r = chunk(0, 3999, "PATCH", "")
	want(t, "chunk 1", r, http.StatusAccepted, "")
	if r.header.Get("Range") != "0-3999" {
		t.Errorf("Range after chunk 1 = %q", r.header.Get("Range"))
	}
	loc = r.header.Get("Location")
	// Out of order: a gap, then a repeat.
	r = chunk(5000, 5999, "PATCH", "")
	want(t, "chunk with a gap", r, http.StatusRequestedRangeNotSatisfiable, "BLOB_UPLOAD_INVALID")
	want(t, "chunk from the start again", chunk(0, 999, "PATCH", ""), http.StatusRequestedRangeNotSatisfiable, "BLOB_UPLOAD_INVALID")
	r = tr.do(t, "GET", loc, nil)
	want(t, "status", r, http.StatusNoContent, "")
	if r.header.Get("Range") != "0-3999" || r.header.Get("Location") == "" {
		t.Errorf("status headers %v", r.header)
	}
	// Content-Length that disagrees with Content-Range.
	r = tr.do(t, "PATCH", loc, b[4000:4500], "Content-Range", "4000-5999")
	want(t, "Content-Length mismatch", r, http.StatusBadRequest, "SIZE_INVALID")
	want(t, "malformed Content-Range", tr.do(t, "PATCH", loc, b[4000:4500], "Content-Range", "4000-x"), http.StatusBadRequest, "BLOB_UPLOAD_INVALID")
	want(t, "chunk 2", chunk(4000, 7999, "PATCH", ""), http.StatusAccepted, "")
	// Last chunk in the PUT.
	r = chunk(8000, 9999, "PUT", "?digest="+d)
	want(t, "closing PUT with the last chunk", r, http.StatusCreated, "")
	r = tr.do(t, "GET", "/v2/repo/blobs/"+d, nil)
	if !bytes.Equal(r.body, b) {
		t.Errorf("assembled blob differs (%d bytes)", len(r.body))
	}
	if ents, _ := os.ReadDir(filepath.Join(tr.root, "uploads")); len(ents) != 0 {
		t.Errorf("chunks left: %v", ents)
	}
}

func TestBlobStreamed(t *testing.T) {
	tr := newRegistry(t)
	b := randomBytes(70000)
	d := digestOf(b)
	r := tr.do(t, "POST", "/v2/repo/blobs/uploads/", nil)
	loc := r.header.Get("Location")
	// Docker's way: PATCH without Content-Range, then an empty PUT.
	r = tr.do(t, "PATCH", loc, b[:30000])
	want(t, "PATCH 1", r, http.StatusAccepted, "")
	r = tr.do(t, "PATCH", r.header.Get("Location"), b[30000:])
	want(t, "PATCH 2", r, http.StatusAccepted, "")
	if r.header.Get("Range") != "0-69999" {
		t.Errorf("Range %q", r.header.Get("Range"))
	}
	want(t, "PUT", tr.do(t, "PUT", r.header.Get("Location")+"?digest="+d, nil), http.StatusCreated, "")
	if r := tr.do(t, "GET", "/v2/repo/blobs/"+d, nil); !bytes.Equal(r.body, b) {
		t.Error("streamed blob differs")
	}
	// One PATCH: the chunk becomes the blob by a rename.
	b2 := randomBytes(5000)
	r = tr.do(t, "POST", "/v2/repo/blobs/uploads/", nil)
	r = tr.do(t, "PATCH", r.header.Get("Location"), b2)
	want(t, "PUT", tr.do(t, "PUT", r.header.Get("Location")+"?digest="+digestOf(b2), nil), http.StatusCreated, "")
	if r := tr.do(t, "GET", "/v2/repo/blobs/"+digestOf(b2), nil); !bytes.Equal(r.body, b2) {
		t.Error("single-chunk blob differs")
	}
}

func TestBlobSHA512(t *testing.T) {
	tr := newRegistry(t)
	b := randomBytes(2000)
	d := digest512(b)
	want(t, "monolithic sha512", tr.do(t, "POST", "/v2/r/blobs/uploads/?digest="+d, b), http.StatusCreated, "")
	r := tr.do(t, "GET", "/v2/r/blobs/"+d, nil)
	if !bytes.Equal(r.body, b) || r.header.Get("Docker-Content-Digest") != d {
		t.Errorf("sha512 blob: %d bytes, digest header %q", len(r.body), r.header.Get("Docker-Content-Digest"))
	}
	// Chunked with sha512: checked by reading the chunks.
	b2 := randomBytes(3000)
	r = tr.do(t, "POST", "/v2/r/blobs/uploads/", nil)
	r = tr.do(t, "PATCH", r.header.Get("Location"), b2[:1000], "Content-Range", "0-999")
	r = tr.do(t, "PATCH", r.header.Get("Location"), b2[1000:], "Content-Range", "1000-2999")
	want(t, "close sha512", tr.do(t, "PUT", r.header.Get("Location")+"?digest="+digest512(b2), nil), http.StatusCreated, "")
	// Wrong sha512.
	r = tr.do(t, "POST", "/v2/r/blobs/uploads/", nil)
	r = tr.do(t, "PATCH", r.header.Get("Location"), b2)
	want(t, "close with a wrong sha512", tr.do(t, "PUT", r.header.Get("Location")+"?digest="+digest512(b), nil), http.StatusBadRequest, "DIGEST_INVALID")
}

func TestBlobDigestMismatch(t *testing.T) {
	tr := newRegistry(t)
	b := randomBytes(5000)
	wrong := digestOf(append(b, 'x'))
	want(t, "monolithic", tr.do(t, "POST", "/v2/r/blobs/uploads/?digest="+wrong, b), http.StatusBadRequest, "DIGEST_INVALID")
	r := tr.do(t, "POST", "/v2/r/blobs/uploads/", nil)
	want(t, "POST+PUT", tr.do(t, "PUT", r.header.Get("Location")+"?digest="+wrong, b), http.StatusBadRequest, "DIGEST_INVALID")
	r = tr.do(t, "POST", "/v2/r/blobs/uploads/", nil)
	r = tr.do(t, "PATCH", r.header.Get("Location"), b)
	want(t, "chunked", tr.do(t, "PUT", r.header.Get("Location")+"?digest="+wrong, nil), http.StatusBadRequest, "DIGEST_INVALID")
	// Nothing became visible, in the API or in storage.
	want(t, "HEAD", tr.do(t, "HEAD", "/v2/r/blobs/"+wrong, nil), http.StatusNotFound, "")
	want(t, "HEAD of the real digest", tr.do(t, "HEAD", "/v2/r/blobs/"+digestOf(b), nil), http.StatusNotFound, "")
	filepath.Walk(filepath.Join(tr.root, "blobs"), func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			t.Errorf("file in blobs/ after failed pushes: %s", p)
		}
		return nil
	})
}

// A client that drops the query string of the closing PUT gets a clear
// 400, and the session stays usable.
func TestUploadWithoutDigestParameter(t *testing.T) {
	tr := newRegistry(t)
	b := randomBytes(1000)
	r := tr.do(t, "POST", "/v2/r/blobs/uploads/", nil)
	r = tr.do(t, "PATCH", r.header.Get("Location"), b)
	loc := r.header.Get("Location")
	r = tr.do(t, "PUT", loc, nil)
	want(t, "PUT without ?digest", r, http.StatusBadRequest, "DIGEST_INVALID")
	if !strings.Contains(string(r.body), "digest query parameter") {
		t.Errorf("message does not say what is missing: %s", r.body)
	}
	r = tr.do(t, "GET", loc, nil)
	want(t, "session after", r, http.StatusNoContent, "")
	if r.header.Get("Range") != "0-999" {
		t.Errorf("Range %q", r.header.Get("Range"))
	}
	want(t, "PUT with ?digest", tr.do(t, "PUT", loc+"?digest="+digestOf(b), nil), http.StatusCreated, "")
}

func TestUploadCancelAndUnknown(t *testing.T) {
	tr := newRegistry(t)
	r := tr.do(t, "POST", "/v2/r/blobs/uploads/", nil)
	loc := r.header.Get("Location")
	tr.do(t, "PATCH", loc, randomBytes(100))
	want(t, "DELETE", tr.do(t, "DELETE", loc, nil), http.StatusNoContent, "")
	want(t, "GET after DELETE", tr.do(t, "GET", loc, nil), http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN")
	want(t, "PATCH after DELETE", tr.do(t, "PATCH", loc, []byte("x")), http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN")
	for _, id := range []string{"nope", "0123456789abcdef0123456789abcdeg", strings.Repeat("a", 32), "%2e%2e"} {
		want(t, "session "+id, tr.do(t, "GET", "/v2/r/blobs/uploads/"+id, nil), http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN")
	}
	want(t, "session ../../etc", tr.do(t, "GET", "/v2/r/blobs/uploads/../../etc", nil), http.StatusNotFound, "")
	// A session of another repository.
	r = tr.do(t, "POST", "/v2/r/blobs/uploads/", nil)
	id := r.header.Get("Docker-Upload-UUID")
	want(t, "session from another repository", tr.do(t, "GET", "/v2/other/blobs/uploads/"+id, nil), http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN")
}

func TestBlobRange(t *testing.T) {
	tr := newRegistry(t)
	b := randomBytes(2048)
	d := tr.pushBlob(t, "r", b)
	tests := []struct {
		rng    string
		status int
		body   []byte
		cr     string
	}{
		{"bytes=500-1499", 206, b[500:1500], "bytes 500-1499/2048"},
		{"bytes=500-", 206, b[500:], "bytes 500-2047/2048"},
		{"bytes=-500", 206, b[1548:], "bytes 1548-2047/2048"},
		{"bytes=2000-5000", 206, b[2000:], "bytes 2000-2047/2048"},
		{"bytes=0-0", 206, b[:1], "bytes 0-0/2048"},
		{"bytes=500-0", 416, nil, "bytes */2048"},
		{"bytes=5000-10000", 416, nil, "bytes */2048"},
		{"bytes=-0", 416, nil, "bytes */2048"},
		{"bytes=0-1,5-6", 200, b, ""},
		{"items=0-1", 200, b, ""},
		{"bytes=x-y", 200, b, ""},
	}
	for _, tt := range tests {
		r := tr.do(t, "GET", "/v2/r/blobs/"+d, nil, "Range", tt.rng)
		if r.status != tt.status {
			t.Errorf("%s: status %d, want %d", tt.rng, r.status, tt.status)
			continue
		}
		if tt.body != nil && !bytes.Equal(r.body, tt.body) {
			t.Errorf("%s: body of %d bytes differs", tt.rng, len(r.body))
		}
		if got := r.header.Get("Content-Range"); got != tt.cr {
			t.Errorf("%s: Content-Range %q, want %q", tt.rng, got, tt.cr)
		}
		if tt.status == 206 && r.header.Get("Content-Length") != strconv.Itoa(len(tt.body)) {
			t.Errorf("%s: Content-Length %q", tt.rng, r.header.Get("Content-Length"))
		}
	}
}

func TestMount(t *testing.T) {
	tr := newRegistry(t)
	b := randomBytes(500)
	d := tr.pushBlob(t, "src", b)
	r := tr.do(t, "POST", "/v2/dst/blobs/uploads/?mount="+d+"&from=src", nil)
	want(t, "mount", r, http.StatusCreated, "")
	if r.header.Get("Location") != "/v2/dst/blobs/"+d {
		t.Errorf("Location %q", r.header.Get("Location"))
	}
	want(t, "GET mounted", tr.do(t, "GET", "/v2/dst/blobs/"+d, nil), http.StatusOK, "")
	// Without from: any repository that has it.
	want(t, "anonymous mount", tr.do(t, "POST", "/v2/dst2/blobs/uploads/?mount="+d, nil), http.StatusCreated, "")
	// A blob the source does not have: an upload session instead.
	missing := digestOf([]byte("missing"))
	r = tr.do(t, "POST", "/v2/dst/blobs/uploads/?mount="+missing+"&from=src", nil)
	want(t, "mount of a missing blob", r, http.StatusAccepted, "")
	if r.header.Get("Location") == "" {
		t.Error("no upload Location")
	}
	want(t, "mount from a bad name", tr.do(t, "POST", "/v2/dst3/blobs/uploads/?mount="+d+"&from=../src", nil), http.StatusAccepted, "")
	want(t, "mount of a bad digest", tr.do(t, "POST", "/v2/dst/blobs/uploads/?mount=sha256:nope", nil), http.StatusBadRequest, "DIGEST_INVALID")
}

func TestManifestPushPull(t *testing.T) {
	tr := newRegistry(t)
	body, m := tr.image(t, "app", randomBytes(1000), randomBytes(2000))
	d := digestOf(body)
	r := tr.putManifest(t, "app", "v1", body, registry.MediaTypeOCIManifest)
	want(t, "PUT by tag", r, http.StatusCreated, "")
	if r.header.Get("Docker-Content-Digest") != d || r.header.Get("Location") != "/v2/app/manifests/"+d {
		t.Errorf("PUT headers %v", r.header)
	}
	for _, ref := range []string{"v1", d} {
		for _, accept := range []string{"", registry.MediaTypeOCIManifest, "application/vnd.docker.distribution.manifest.v2+json", "*/*"} {
			hdr := []string{}
			if accept != "" {
				hdr = []string{"Accept", accept}
			}
			r := tr.do(t, "GET", "/v2/app/manifests/"+ref, nil, hdr...)
			want(t, "GET "+ref+" Accept "+accept, r, http.StatusOK, "")
			if !bytes.Equal(r.body, body) || r.header.Get("Content-Type") != registry.MediaTypeOCIManifest || r.header.Get("Docker-Content-Digest") != d {
				t.Errorf("GET %s: headers %v", ref, r.header)
			}
		}
		r := tr.do(t, "HEAD", "/v2/app/manifests/"+ref, nil)
		if r.status != 200 || r.header.Get("Content-Length") != strconv.Itoa(len(body)) || len(r.body) != 0 {
			t.Errorf("HEAD %s: %d %v", ref, r.status, r.header)
		}
	}
	ev := tr.notices.list("pushed")
	if len(ev) != 1 || ev[0].Digest != d || ev[0].Repository != "app" || !slices.Equal(ev[0].Tags, []string{"v1"}) {
		t.Errorf("push events %+v", ev)
	}
	_ = m
	want(t, "missing tag", tr.do(t, "GET", "/v2/app/manifests/nope", nil), http.StatusNotFound, "MANIFEST_UNKNOWN")
	want(t, "missing digest", tr.do(t, "GET", "/v2/app/manifests/"+digestOf([]byte("x")), nil), http.StatusNotFound, "MANIFEST_UNKNOWN")
	want(t, "unknown repository", tr.do(t, "GET", "/v2/nope/manifests/v1", nil), http.StatusNotFound, "MANIFEST_UNKNOWN")
}

func TestManifestRefusals(t *testing.T) {
	tr := newRegistry(t)
	body, m := tr.image(t, "app", randomBytes(100))

	// A layer the repository does not have (it is in another one).
	other := tr.pushBlob(t, "elsewhere", randomBytes(50))
	m2 := m
	m2.Layers = append(slices.Clone(m.Layers), registry_desc(other, 50))
	b2, _ := json.Marshal(m2)
	r := tr.putManifest(t, "app", "v1", b2, registry.MediaTypeOCIManifest)
	want(t, "manifest naming a blob of another repository", r, http.StatusBadRequest, "MANIFEST_BLOB_UNKNOWN")
	if !strings.Contains(string(r.body), other) {
		t.Errorf("error does not name the blob: %s", r.body)
	}
	want(t, "tag not created", tr.do(t, "GET", "/v2/app/manifests/v1", nil), http.StatusNotFound, "MANIFEST_UNKNOWN")

	// Digest mismatch.
	want(t, "digest mismatch", tr.putManifest(t, "app", digestOf([]byte("other")), body, registry.MediaTypeOCIManifest), http.StatusBadRequest, "DIGEST_INVALID")
	want(t, "malformed digest", tr.putManifest(t, "app", "sha256:baddigeststring", body, registry.MediaTypeOCIManifest), http.StatusBadRequest, "DIGEST_INVALID")
	// Content-Type that contradicts mediaType.
	want(t, "Content-Type mismatch", tr.putManifest(t, "app", "v1", body, registry.MediaTypeOCIIndex), http.StatusBadRequest, "MANIFEST_INVALID")
	// Not JSON, wrong schema, schema 1.
	for name, b := range map[string]string{
		"not JSON":        "{",
		"trailing data":   string(body) + "{}",
		"schemaVersion 1": `{"schemaVersion":1,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"a/b","digest":"` + m.Config.Digest + `","size":1},"layers":[]}`,
		"no config":       `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","layers":[]}`,
		"bad layer digest": `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"a/b","digest":"` + m.Config.Digest +
			`","size":1},"layers":[{"mediaType":"a/b","digest":"sha256:XYZ","size":1}]}`,
	} {
		want(t, name, tr.putManifest(t, "app", "v1", []byte(b), registry.MediaTypeOCIManifest), http.StatusBadRequest, "MANIFEST_INVALID")
	}
	want(t, "schema 1", tr.putManifest(t, "app", "v1", []byte(`{"schemaVersion":1}`), "application/vnd.docker.distribution.manifest.v1+prettyjws"), http.StatusBadRequest, "")
	want(t, "bad tag", tr.putManifest(t, "app", "-bad", body, registry.MediaTypeOCIManifest), http.StatusBadRequest, "MANIFEST_INVALID")
	want(t, "long tag", tr.putManifest(t, "app", strings.Repeat("t", 129), body, registry.MediaTypeOCIManifest), http.StatusBadRequest, "MANIFEST_INVALID")
}

func registry_desc(d string, size int64) desc {
	return desc{MediaType: "application/vnd.oci.image.layer.v1.tar+gzip", Digest: d, Size: size}
}

func TestManifestTooLarge(t *testing.T) {
	tr := newRegistry(t, registry.WithLimits(registry.Limits{MaxManifestSize: 10000}))
	_, m := tr.image(t, "app")
	m.Annotations = map[string]string{"big": strings.Repeat("a", 20000)}
	b, _ := json.Marshal(m)
	r := tr.putManifest(t, "app", "big", b, registry.MediaTypeOCIManifest)
	want(t, "oversized manifest", r, http.StatusRequestEntityTooLarge, "MANIFEST_INVALID")
	if !strings.Contains(string(r.body), "10000") {
		t.Errorf("message does not give the limit: %s", r.body)
	}
	// Without Content-Length (chunked transfer encoding).
	req, _ := http.NewRequest("PUT", tr.url+"/v2/app/manifests/big", io.MultiReader(bytes.NewReader(b)))
	req.Header.Set("Content-Type", registry.MediaTypeOCIManifest)
	req.ContentLength = -1
	resp, err := tr.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("chunked oversized manifest: status %d", resp.StatusCode)
	}
	// The default limit accepts 4 MiB.
	tr2 := newRegistry(t)
	_, m = tr2.image(t, "app")
	m.Annotations = map[string]string{"big": strings.Repeat("a", 4<<20-2000)}
	b, _ = json.Marshal(m)
	want(t, "4 MiB manifest", tr2.putManifest(t, "app", "big", b, registry.MediaTypeOCIManifest), http.StatusCreated, "")
}

func TestIndexAndDockerTypes(t *testing.T) {
	tr := newRegistry(t)
	amd, _ := tr.image(t, "multi", randomBytes(10))
	arm, _ := tr.image(t, "multi", randomBytes(10))
	idx := manifest{SchemaVersion: 2, MediaType: registry.MediaTypeOCIIndex, Manifests: []desc{
		{MediaType: registry.MediaTypeOCIManifest, Digest: digestOf(amd), Size: int64(len(amd)), Platform: map[string]string{"os": "linux", "architecture": "amd64"}},
		{MediaType: registry.MediaTypeOCIManifest, Digest: digestOf(arm), Size: int64(len(arm)), Platform: map[string]string{"os": "linux", "architecture": "arm64"}},
	}}
	ib, _ := json.Marshal(idx)
	want(t, "index before its manifests", tr.putManifest(t, "multi", "latest", ib, registry.MediaTypeOCIIndex), http.StatusBadRequest, "MANIFEST_BLOB_UNKNOWN")
	tr.putManifest(t, "multi", digestOf(amd), amd, registry.MediaTypeOCIManifest)
	tr.putManifest(t, "multi", digestOf(arm), arm, registry.MediaTypeOCIManifest)
	want(t, "index", tr.putManifest(t, "multi", "latest", ib, registry.MediaTypeOCIIndex), http.StatusCreated, "")
	want(t, "delete an index entry", tr.do(t, "DELETE", "/v2/multi/manifests/"+digestOf(amd), nil), http.StatusConflict, "DENIED")

	// Docker schema 2 and manifest list.
	cfg := tr.pushBlob(t, "docker", []byte(`{"os":"linux"}`))
	layer := tr.pushBlob(t, "docker", randomBytes(30))
	dm := fmt.Sprintf(`{"schemaVersion":2,"mediaType":"%s","config":{"mediaType":"application/vnd.docker.container.image.v1+json","size":14,"digest":"%s"},"layers":[{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","size":30,"digest":"%s"},{"mediaType":"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip","size":99,"digest":"%s","urls":["https://example.com/x"]}]}`,
		registry.MediaTypeDockerManifest, cfg, layer, digestOf([]byte("foreign")))
	want(t, "docker manifest with a foreign layer", tr.putManifest(t, "docker", "v1", []byte(dm), registry.MediaTypeDockerManifest), http.StatusCreated, "")
	dl := fmt.Sprintf(`{"schemaVersion":2,"mediaType":"%s","manifests":[{"mediaType":"%s","size":%d,"digest":"%s","platform":{"architecture":"amd64","os":"linux"}}]}`,
		registry.MediaTypeDockerList, registry.MediaTypeDockerManifest, len(dm), digestOf([]byte(dm)))
	want(t, "docker manifest list", tr.putManifest(t, "docker", "list", []byte(dl), registry.MediaTypeDockerList), http.StatusCreated, "")
	r := tr.do(t, "GET", "/v2/docker/manifests/list", nil, "Accept", registry.MediaTypeDockerList)
	if r.header.Get("Content-Type") != registry.MediaTypeDockerList || !bytes.Equal(r.body, []byte(dl)) {
		t.Errorf("docker list GET: %v", r.header)
	}
}

func TestDeletes(t *testing.T) {
	tr := newRegistry(t)
	layer := randomBytes(100)
	body, _ := tr.image(t, "r", layer)
	d := digestOf(body)
	tr.putManifest(t, "r", "v1", body, registry.MediaTypeOCIManifest)
	tr.putManifest(t, "r", "v2", body, registry.MediaTypeOCIManifest)
	want(t, "delete a referenced blob", tr.do(t, "DELETE", "/v2/r/blobs/"+digestOf(layer), nil), http.StatusConflict, "DENIED")
	want(t, "delete tag", tr.do(t, "DELETE", "/v2/r/manifests/v1", nil), http.StatusAccepted, "")
	want(t, "tag gone", tr.do(t, "HEAD", "/v2/r/manifests/v1", nil), http.StatusNotFound, "")
	want(t, "other tag kept", tr.do(t, "HEAD", "/v2/r/manifests/v2", nil), http.StatusOK, "")
	want(t, "delete tag twice", tr.do(t, "DELETE", "/v2/r/manifests/v1", nil), http.StatusNotFound, "MANIFEST_UNKNOWN")
	want(t, "delete manifest", tr.do(t, "DELETE", "/v2/r/manifests/"+d, nil), http.StatusAccepted, "")
	want(t, "manifest gone", tr.do(t, "GET", "/v2/r/manifests/"+d, nil), http.StatusNotFound, "MANIFEST_UNKNOWN")
	want(t, "its tags gone", tr.do(t, "GET", "/v2/r/manifests/v2", nil), http.StatusNotFound, "MANIFEST_UNKNOWN")
	want(t, "delete blob", tr.do(t, "DELETE", "/v2/r/blobs/"+digestOf(layer), nil), http.StatusAccepted, "")
	want(t, "blob gone", tr.do(t, "HEAD", "/v2/r/blobs/"+digestOf(layer), nil), http.StatusNotFound, "")
	want(t, "delete blob twice", tr.do(t, "DELETE", "/v2/r/blobs/"+digestOf(layer), nil), http.StatusNotFound, "BLOB_UNKNOWN")
}

func TestTagsAndCatalog(t *testing.T) {
	tr := newRegistry(t)
	body, _ := tr.image(t, "lib/app")
	tags := []string{"b", "a", "B", "1.0", "latest", "_x"}
	for _, tag := range tags {
		tr.putManifest(t, "lib/app", tag, body, registry.MediaTypeOCIManifest)
	}
	slices.Sort(tags)
	list := func(q string) ([]string, string) {
		r := tr.do(t, "GET", "/v2/lib/app/tags/list"+q, nil)
		want(t, "tags "+q, r, http.StatusOK, "")
		var tl struct {
			Name string   `json:"name"`
			Tags []string `json:"tags"`
		}
		json.Unmarshal(r.body, &tl)
		if tl.Name != "lib/app" {
			t.Errorf("name %q", tl.Name)
		}
		return tl.Tags, r.header.Get("Link")
	}
	got, link := list("")
	if diff := cmp.Diff(tags, got); diff != "" || link != "" {
		t.Errorf("all tags (-want +got):\n%s link %q", diff, link)
	}
	got, link = list("?n=2")
	if diff := cmp.Diff(tags[:2], got); diff != "" {
		t.Errorf("n=2 (-want +got):\n%s", diff)
	}
	if link != `</v2/lib/app/tags/list?last=`+tags[1]+`&n=2>; rel="next"` {
		t.Errorf("Link %q", link)
	}
	// Follow the links to the end.
	var all []string
	next := "/v2/lib/app/tags/list?n=4"
	for next != "" {
		r := tr.do(t, "GET", next, nil)
		var tl struct{ Tags []string }
		json.Unmarshal(r.body, &tl)
		all = append(all, tl.Tags...)
		next = ""
		if l := r.header.Get("Link"); l != "" {
			next = strings.TrimSuffix(strings.TrimPrefix(l, "<"), `>; rel="next"`)
		}
	}
	if diff := cmp.Diff(tags, all); diff != "" {
		t.Errorf("following Link (-want +got):\n%s", diff)
	}
	got, _ = list("?last=a")
	if diff := cmp.Diff([]string{"b", "latest"}, got); diff != "" {
		t.Errorf("last=a (-want +got):\n%s", diff)
	}
	got, link = list("?n=0")
	if len(got) != 0 || link != "" {
		t.Errorf("n=0: %v, link %q", got, link)
	}
	want(t, "bad n", tr.do(t, "GET", "/v2/lib/app/tags/list?n=-1", nil), http.StatusBadRequest, "")
	want(t, "unknown repository", tr.do(t, "GET", "/v2/nope/tags/list", nil), http.StatusNotFound, "NAME_UNKNOWN")

	tr.pushBlob(t, "a", []byte("x"))
	tr.pushBlob(t, "z/y", []byte("x"))
	r := tr.do(t, "GET", "/v2/_catalog?n=2", nil)
	var cat struct{ Repositories []string }
	json.Unmarshal(r.body, &cat)
	if diff := cmp.Diff([]string{"a", "lib/app"}, cat.Repositories); diff != "" {
		t.Errorf("catalog (-want +got):\n%s", diff)
	}
	if r.header.Get("Link") != `</v2/_catalog?last=lib%2Fapp&n=2>; rel="next"` {
		t.Errorf("catalog Link %q", r.header.Get("Link"))
	}
}

func TestReferrers(t *testing.T) {
	tr := newRegistry(t)
	subj, _ := tr.image(t, "r", randomBytes(10))
	sd := digestOf(subj)
	tr.putManifest(t, "r", "v1", subj, registry.MediaTypeOCIManifest)
	empty := tr.pushBlob(t, "r", []byte("{}"))
	art := func(at string, ann map[string]string) []byte {
		m := manifest{SchemaVersion: 2, MediaType: registry.MediaTypeOCIManifest, ArtifactType: at,
			Config:      &desc{MediaType: "application/vnd.oci.empty.v1+json", Digest: empty, Size: 2},
			Layers:      []desc{{MediaType: "application/vnd.oci.empty.v1+json", Digest: empty, Size: 2}},
			Subject:     &desc{MediaType: registry.MediaTypeOCIManifest, Digest: sd, Size: int64(len(subj))},
			Annotations: ann}
		b, _ := json.Marshal(m)
		return b
	}
	sig := art("application/vnd.example.sig", map[string]string{"k": "v"})
	sbom := art("application/spdx+json", nil)
	for _, b := range [][]byte{sig, sbom} {
		r := tr.putManifest(t, "r", digestOf(b), b, registry.MediaTypeOCIManifest)
		want(t, "referrer", r, http.StatusCreated, "")
		if r.header.Get("OCI-Subject") != sd {
			t.Errorf("OCI-Subject %q", r.header.Get("OCI-Subject"))
		}
	}
	get := func(q string) (registryIndex, response) {
		r := tr.do(t, "GET", "/v2/r/referrers/"+sd+q, nil)
		want(t, "referrers"+q, r, http.StatusOK, "")
		var idx registryIndex
		json.Unmarshal(r.body, &idx)
		if r.header.Get("Content-Type") != registry.MediaTypeOCIIndex || idx.SchemaVersion != 2 || idx.MediaType != registry.MediaTypeOCIIndex {
			t.Errorf("referrers response is not an index: %v %s", r.header, r.body)
		}
		return idx, r
	}
	idx, _ := get("")
	if len(idx.Manifests) != 2 {
		t.Fatalf("referrers: %+v", idx.Manifests)
	}
	idx, r := get("?artifactType=application/vnd.example.sig")
	if len(idx.Manifests) != 1 || idx.Manifests[0].Digest != digestOf(sig) || idx.Manifests[0].Annotations["k"] != "v" ||
		idx.Manifests[0].ArtifactType != "application/vnd.example.sig" || idx.Manifests[0].Size != int64(len(sig)) {
		t.Errorf("filtered referrers: %+v", idx.Manifests)
	}
	if r.header.Get("OCI-Filters-Applied") != "artifactType" {
		t.Errorf("OCI-Filters-Applied %q", r.header.Get("OCI-Filters-Applied"))
	}
	// Nothing refers to an unknown digest, in an unknown repository.
	r = tr.do(t, "GET", "/v2/nope/referrers/"+digestOf([]byte("x")), nil)
	want(t, "referrers of nothing", r, http.StatusOK, "")
	if !strings.Contains(string(r.body), `"manifests":[]`) {
		t.Errorf("empty referrers: %s", r.body)
	}
	want(t, "bad digest", tr.do(t, "GET", "/v2/r/referrers/sha256:zz", nil), http.StatusBadRequest, "DIGEST_INVALID")
}

type registryIndex struct {
	SchemaVersion int    `json:"schemaVersion"`
	MediaType     string `json:"mediaType"`
	Manifests     []desc `json:"manifests"`
}

// Malformed digests are 400 DIGEST_INVALID on every endpoint, never 5xx.
func TestMalformedDigests(t *testing.T) {
	tr := newRegistry(t)
	r := tr.do(t, "POST", "/v2/r/blobs/uploads/", nil)
	loc := r.header.Get("Location")
	bad := []string{"sha256:", "sha256:abc", "sha256:" + strings.Repeat("A", 64), "sha256:" + strings.Repeat("g", 64),
		"md5:d41d8cd98f00b204e9800998ecf8427e", ":abc", "sha256:" + strings.Repeat("a", 65), "sha512:" + strings.Repeat("a", 64),
		"sha256:%00", "sha256:..%2f..%2f"}
	for _, d := range bad {
		for _, c := range []struct{ method, path string }{
			{"GET", "/v2/r/blobs/" + d},
			{"HEAD", "/v2/r/blobs/" + d},
			{"DELETE", "/v2/r/blobs/" + d},
			{"GET", "/v2/r/manifests/" + d},
			{"DELETE", "/v2/r/manifests/" + d},
			{"PUT", "/v2/r/manifests/" + d},
			{"GET", "/v2/r/referrers/" + d},
			{"POST", "/v2/r/blobs/uploads/?digest=" + d},
			{"POST", "/v2/r/blobs/uploads/?mount=" + d},
			{"PUT", loc + "?digest=" + d},
		} {
			r := tr.do(t, c.method, c.path, []byte("{}"))
			if r.status != http.StatusBadRequest && r.status != http.StatusNotFound {
				t.Errorf("%s %s: status %d (%s)", c.method, c.path, r.status, r.body)
			}
			if c.method != "HEAD" && r.status == http.StatusBadRequest && r.code() != "DIGEST_INVALID" {
				t.Errorf("%s %s: code %q", c.method, c.path, r.code())
			}
		}
	}
}

// Names with path tricks never reach storage: they are 400 NAME_INVALID
// (or 404 for paths that are no endpoint), and nothing is written outside
// the storage root.
func TestRepositoryNameTricks(t *testing.T) {
	tr := newRegistry(t)
	b := []byte("payload")
	d := digestOf(b)
	for _, name := range []string{
		"..", "a/..", "../etc", "a/../b", "./a", "a/.", "a//b", "/a", "A", "a%2fb", "a%2F..%2Fb",
		"%2e%2e", "a/%2e%2e/b", "a\\b", "a b", "a_", "-a", "a--", "a.", ".a", "a__b_", "a:b",
		strings.Repeat("a/", 200) + "a",
	} {
		for _, c := range []struct{ method, path string }{
			{"POST", "/v2/" + name + "/blobs/uploads/?digest=" + d},
			{"GET", "/v2/" + name + "/manifests/latest"},
			{"PUT", "/v2/" + name + "/manifests/latest"},
			{"GET", "/v2/" + name + "/tags/list"},
		} {
			r := tr.do(t, c.method, c.path, b)
			if r.status != http.StatusBadRequest && r.status != http.StatusNotFound {
				t.Errorf("%s %s: status %d", c.method, c.path, r.status)
			}
			if r.status == http.StatusBadRequest && r.code() != "NAME_INVALID" {
				t.Errorf("%s %s: code %q", c.method, c.path, r.code())
			}
		}
	}
	// Names of the grammar are fine.
	for _, name := range []string{"a", "a/b/c", "a.b", "a_b", "a__b", "a-b", "a---b", "0/1"} {
		want(t, name, tr.do(t, "POST", "/v2/"+name+"/blobs/uploads/?digest="+d, b), http.StatusCreated, "")
	}
	// Nothing outside blobs/ and uploads/ under the root, nothing above it.
	ents, _ := os.ReadDir(tr.root)
	for _, e := range ents {
		if e.Name() != "blobs" && e.Name() != "uploads" {
			t.Errorf("unexpected entry in the storage root: %s", e.Name())
		}
	}
	parent, _ := os.ReadDir(filepath.Dir(tr.root))
	for _, e := range parent {
		if e.Name() != "content" && !strings.HasPrefix(e.Name(), "meta.db") {
			t.Errorf("unexpected entry beside the storage root: %s", e.Name())
		}
	}
}

// A client that stalls in the middle of a body is cut off after the idle
// timeout; the session is unchanged and can carry on.
func TestStalledUpload(t *testing.T) {
	tr := newRegistry(t, registry.WithLimits(registry.Limits{IdleTimeout: 300 * time.Millisecond}))
	r := tr.do(t, "POST", "/v2/r/blobs/uploads/", nil)
	loc := r.header.Get("Location")
	b := randomBytes(2000)

	conn, err := net.Dial("tcp", strings.TrimPrefix(tr.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "PATCH %s HTTP/1.1\r\nHost: x\r\nContent-Length: 2000\r\nContent-Range: 0-1999\r\n\r\n", loc)
	conn.Write(b[:500]) // ...and then nothing
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	reply, _ := io.ReadAll(conn)
	if !bytes.Contains(reply, []byte(" 408 ")) {
		t.Errorf("stalled PATCH got %q, want a 408", firstLine(reply))
	}
	r = tr.do(t, "GET", loc, nil)
	want(t, "session after the stall", r, http.StatusNoContent, "")
	if r.header.Get("Range") != "0-0" {
		t.Errorf("Range after a stalled chunk %q, want nothing received", r.header.Get("Range"))
	}
	want(t, "resume", tr.do(t, "PATCH", loc, b, "Content-Range", "0-1999"), http.StatusAccepted, "")
	want(t, "close", tr.do(t, "PUT", loc+"?digest="+digestOf(b), nil), http.StatusCreated, "")
	if !strings.Contains(tr.logs.String(), "stalled") {
		t.Error("the access log does not mention the stall")
	}
}

func firstLine(b []byte) string {
	l, _, _ := bytes.Cut(b, []byte("\r\n"))
	return string(l)
}

// A client that drops the connection mid-chunk leaves nothing visible;
// the chunk's temporary file is collectable.
func TestInterruptedUpload(t *testing.T) {
	tr := newRegistry(t)
	r := tr.do(t, "POST", "/v2/r/blobs/uploads/", nil)
	loc := r.header.Get("Location")
	conn, err := net.Dial("tcp", strings.TrimPrefix(tr.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "PUT %s?digest=%s HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n", loc, digestOf(make([]byte, 100000)))
	conn.Write(make([]byte, 40000))
	conn.Close()
	// Wait for the server to notice.
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(tr.logs.String(), "reading request body") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	want(t, "blob after the drop", tr.do(t, "HEAD", "/v2/r/blobs/"+digestOf(make([]byte, 100000)), nil), http.StatusNotFound, "")
	var files []string
	filepath.Walk(tr.root, func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			files = append(files, p)
		}
		return nil
	})
	if len(files) != 0 {
		t.Errorf("files left by an interrupted upload: %v", files)
	}
}

func TestMetricsAndAccessLog(t *testing.T) {
	tr := newRegistry(t)
	tr.pushBlob(t, "r", []byte("hello"))
	tr.do(t, "GET", "/v2/r/blobs/sha256:nope", nil)
	r := tr.do(t, "GET", "/metrics", nil)
	want(t, "metrics", r, http.StatusOK, "")
	for _, s := range []string{
		`lading_registry_http_requests_total{code="201",method="POST",route="upload-start"} 1`,
		`lading_registry_http_requests_total{code="400",method="GET",route="blob"} 1`,
		`lading_registry_blob_bytes_received_total 5`,
		`lading_registry_http_request_duration_seconds_bucket`,
		`go_goroutines`,
	} {
		if !strings.Contains(string(r.body), s) {
			t.Errorf("metrics lack %s", s)
		}
	}
	var lines []map[string]any
	for _, l := range strings.Split(tr.logs.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil && m["msg"] == "request" {
			lines = append(lines, m)
		}
	}
	if len(lines) < 2 {
		t.Fatalf("access log has %d request records", len(lines))
	}
	first := lines[0]
	for _, k := range []string{"time", "level", "method", "path", "route", "status", "bytes_in", "bytes_out", "duration_ms", "remote", "request_id", "repository"} {
		if _, ok := first[k]; !ok {
			t.Errorf("access log record lacks %q: %v", k, first)
		}
	}
	if first["bytes_in"] != float64(5) || first["status"] != float64(201) {
		t.Errorf("access record %v", first)
	}
	if lines[1]["error_code"] != "DIGEST_INVALID" {
		t.Errorf("error record %v", lines[1])
	}
}

// A request whose client has gone (its context is cancelled) is logged as
// 499, not as a server failure.
func TestClientGoneIsNotAServerError(t *testing.T) {
	tr := newRegistry(t)
	loc := tr.do(t, "POST", "/v2/r/blobs/uploads/", nil).header.Get("Location")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	b := randomBytes(1000)
	req := httptest.NewRequest("PATCH", loc, bytes.NewReader(b)).WithContext(ctx)
	req.Header.Set("Content-Range", "0-999")
	rec := httptest.NewRecorder()
	tr.Registry.ServeHTTP(rec, req)
	if rec.Code >= 500 {
		t.Errorf("PATCH of a gone client answered %d", rec.Code)
	}
	if logs := tr.logs.String(); strings.Contains(logs, "request failed") {
		t.Errorf("a gone client logged as a server failure:\n%s", logs)
	}
	// The session is still usable by a client that comes back.
	want(t, "resume", tr.do(t, "PATCH", loc, b, "Content-Range", "0-999"), http.StatusAccepted, "")
}

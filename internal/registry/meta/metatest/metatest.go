// Package metatest is the conformance suite every metadata backend runs:
// the contract of meta.Store, checked, including the blob lifecycle that
// keeps online garbage collection safe.
//
//	func TestConformance(t *testing.T) {
//		metatest.Run(t, func(t *testing.T) meta.Store { return open(t) })
//	}
//
// Each subtest gets a fresh, empty store from the factory.
package metatest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/registry/meta"
)

// Run runs the suite against stores made by newStore.
func Run(t *testing.T, newStore func(t *testing.T) meta.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s meta.Store)
	}{
		{"Blobs", testBlobs},
		{"Mount", testMount},
		{"Unlink", testUnlink},
		{"ManifestNeedsBlobs", testManifestNeedsBlobs},
		{"ManifestSizes", testManifestSizes},
		{"Tags", testTags},
		{"Index", testIndex},
		{"Referrers", testReferrers},
		{"Repositories", testRepositories},
		{"Uploads", testUploads},
		{"GCGrace", testGCGrace},
		{"GCProtectsReferenced", testGCProtectsReferenced},
		{"GCCandidatesUntagged", testGCCandidatesUntagged},
		{"GCClaimWhileDeleting", testGCClaimWhileDeleting},
		{"GCOrphan", testGCOrphan},
		{"GCDeadCollector", testGCDeadCollector},
		{"GCRace", testGCRace},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t)
			t.Cleanup(func() { s.Close() })
			tt.fn(t, s)
		})
	}
}

// locks are the collection locks the tests' collectors hold, by store.
var locks = struct {
	sync.Mutex
	m map[meta.Store]*meta.Lock
}{m: map[meta.Store]*meta.Lock{}}

// lock returns a collection lock on s, held until the test ends: the
// tests' collector is alive throughout.
func lock(t *testing.T, s meta.Store) *meta.Lock {
	t.Helper()
	locks.Lock()
	defer locks.Unlock()
	if l, ok := locks.m[s]; ok {
		return l
	}
	l, err := s.LockCollection(ctx)
	must(t, err)
	locks.m[s] = l
	t.Cleanup(func() {
		locks.Lock()
		delete(locks.m, s)
		locks.Unlock()
		l.Release()
	})
	return l
}

var ctx = context.Background()

func dg(n int) string { return fmt.Sprintf("sha256:%064x", n) }

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func wantClass(t *testing.T, what string, err, class error) {
	t.Helper()
	if !errors.Is(err, class) {
		t.Errorf("%s: got error %v, want class %v", what, err, class)
	}
}

func putBlob(t *testing.T, s meta.Store, repo, dgst string, size int64) {
	t.Helper()
	_, err := s.ClaimBlob(ctx, dgst)
	must(t, err)
	must(t, s.CommitBlob(ctx, repo, dgst, size))
}

// putImage stores an image manifest (digest m) with a config and a layer.
func putImage(t *testing.T, s meta.Store, repo string, m, cfg, layer int, tags ...string) meta.Manifest {
	t.Helper()
	putBlob(t, s, repo, dg(cfg), 10)
	putBlob(t, s, repo, dg(layer), 100)
	putBlob(t, s, repo, dg(m), 300)
	man := meta.Manifest{
		Digest:    dg(m),
		MediaType: "application/vnd.oci.image.manifest.v1+json",
		Size:      300,
		Blobs:     []string{dg(cfg), dg(layer)},
	}
	must(t, s.PutManifest(ctx, repo, man, tags))
	return man
}

func testBlobs(t *testing.T, s meta.Store) {
	_, err := s.Blob(ctx, "a", dg(1))
	wantClass(t, "Blob before claim", err, errdefs.ErrNotFound)
	present, err := s.ClaimBlob(ctx, dg(1))
	must(t, err)
	if present {
		t.Error("first claim reports the content present")
	}
	_, err = s.Blob(ctx, "a", dg(1))
	wantClass(t, "Blob while pending", err, errdefs.ErrNotFound)
	_, err = s.GlobalBlob(ctx, dg(1))
	wantClass(t, "GlobalBlob while pending", err, errdefs.ErrNotFound)
	must(t, s.CommitBlob(ctx, "a", dg(1), 42))
	b, err := s.Blob(ctx, "a", dg(1))
	must(t, err)
	if b.Digest != dg(1) || b.Size != 42 || b.State != meta.StatePresent {
		t.Errorf("Blob = %+v", b)
	}
	_, err = s.Blob(ctx, "other", dg(1))
	wantClass(t, "Blob of another repository", err, errdefs.ErrNotFound)
	if _, err := s.GlobalBlob(ctx, dg(1)); err != nil {
		t.Errorf("GlobalBlob: %v", err)
	}
	// A second claim of present content says so; committing again is
	// harmless.
	present, err = s.ClaimBlob(ctx, dg(1))
	must(t, err)
	if !present {
		t.Error("claim of present content does not report it")
	}
	must(t, s.CommitBlob(ctx, "a", dg(1), 42))
	// Commit without a repository links nowhere.
	putBlob(t, s, "", dg(2), 7)
	if _, err := s.GlobalBlob(ctx, dg(2)); err != nil {
		t.Errorf("GlobalBlob of an unlinked blob: %v", err)
	}
	repos, err := s.BlobRepositories(ctx, dg(2), 10)
	must(t, err)
	if len(repos) != 0 {
		t.Errorf("unlinked blob is in %v", repos)
	}
	// Committing a digest nobody claimed is refused.
	wantClass(t, "CommitBlob without claim", s.CommitBlob(ctx, "a", dg(3), 1), errdefs.ErrUnavailable)
}

func testMount(t *testing.T, s meta.Store) {
	putBlob(t, s, "src", dg(1), 5)
	wantClass(t, "LinkBlob of an unknown blob", s.LinkBlob(ctx, "dst", dg(2)), errdefs.ErrNotFound)
	must(t, s.LinkBlob(ctx, "dst", dg(1)))
	if _, err := s.Blob(ctx, "dst", dg(1)); err != nil {
		t.Errorf("Blob after mount: %v", err)
	}
	repos, err := s.BlobRepositories(ctx, dg(1), 10)
	must(t, err)
	if diff := cmp.Diff([]string{"dst", "src"}, repos); diff != "" {
		t.Errorf("BlobRepositories (-want +got):\n%s", diff)
	}
	repos, _ = s.BlobRepositories(ctx, dg(1), 1)
	if len(repos) != 1 {
		t.Errorf("limit 1 gave %v", repos)
	}
}

func testUnlink(t *testing.T, s meta.Store) {
	putImage(t, s, "r", 1, 2, 3, "latest")
	putBlob(t, s, "r", dg(4), 1)
	wantClass(t, "UnlinkBlob of a referenced layer", s.UnlinkBlob(ctx, "r", dg(3)), errdefs.ErrConflict)
	wantClass(t, "UnlinkBlob of a manifest's content", s.UnlinkBlob(ctx, "r", dg(1)), errdefs.ErrConflict)
	must(t, s.UnlinkBlob(ctx, "r", dg(4)))
	wantClass(t, "UnlinkBlob twice", s.UnlinkBlob(ctx, "r", dg(4)), errdefs.ErrNotFound)
	_, err := s.Blob(ctx, "r", dg(4))
	wantClass(t, "Blob after unlink", err, errdefs.ErrNotFound)
	must(t, s.DeleteManifest(ctx, "r", dg(1)))
	must(t, s.UnlinkBlob(ctx, "r", dg(3)))
}

func testManifestNeedsBlobs(t *testing.T, s meta.Store) {
	putBlob(t, s, "r", dg(1), 10)
	putBlob(t, s, "elsewhere", dg(2), 100)
	putBlob(t, s, "r", dg(9), 300)
	m := meta.Manifest{Digest: dg(9), MediaType: "application/vnd.oci.image.manifest.v1+json", Size: 300, Blobs: []string{dg(1), dg(2)}}
	err := s.PutManifest(ctx, "r", m, []string{"v1"})
	var miss *meta.MissingError
	if !errors.As(err, &miss) || miss.Digest != dg(2) || miss.Manifest {
		t.Fatalf("PutManifest with a blob of another repository: %v", err)
	}
	wantClass(t, "MissingError class", err, errdefs.ErrNotFound)
	_, err = s.Tag(ctx, "r", "v1")
	wantClass(t, "Tag after a refused put", err, errdefs.ErrNotFound)
	must(t, s.LinkBlob(ctx, "r", dg(2)))
	must(t, s.PutManifest(ctx, "r", m, []string{"v1"}))
	got, err := s.Tag(ctx, "r", "v1")
	must(t, err)
	if got.Digest != dg(9) || got.MediaType != m.MediaType || got.Size != 300 {
		t.Errorf("Tag = %+v", got)
	}
	// Content claimed (written) but not committed becomes present with
	// its manifest.
	_, err = s.ClaimBlob(ctx, dg(11))
	must(t, err)
	must(t, s.PutManifest(ctx, "r", meta.Manifest{Digest: dg(11), MediaType: m.MediaType, Size: 5, Blobs: []string{dg(1)}}, nil))
	if b, err := s.Blob(ctx, "r", dg(11)); err != nil || b.Size != 5 {
		t.Errorf("manifest content after put: %+v, %v", b, err)
	}
	// Content nobody claimed is refused.
	bad := meta.Manifest{Digest: dg(10), MediaType: m.MediaType, Size: 1}
	if err := s.PutManifest(ctx, "r", bad, nil); err == nil {
		t.Error("PutManifest of content never committed succeeded")
	}
}

// The sizes a manifest states for its blobs and index entries must be the
// stored ones.
func testManifestSizes(t *testing.T, s meta.Store) {
	img := putImage(t, s, "r", 1, 2, 3)
	for _, tc := range []struct {
		name string
		m    meta.Manifest
		want *meta.SizeError
	}{
		{"blob", meta.Manifest{Digest: dg(10), MediaType: "application/vnd.oci.image.manifest.v1+json", Size: 5,
			Blobs: []string{dg(2), dg(3)}, Sizes: map[string]int64{dg(2): 10, dg(3): 99}},
			&meta.SizeError{Repo: "r", Digest: dg(3), Stated: 99, Stored: 100}},
		{"index entry", meta.Manifest{Digest: dg(11), MediaType: "application/vnd.oci.image.index.v1+json", Size: 5,
			Manifests: []string{img.Digest}, Sizes: map[string]int64{img.Digest: 301}},
			&meta.SizeError{Repo: "r", Digest: img.Digest, Manifest: true, Stated: 301, Stored: 300}},
		{"true sizes", meta.Manifest{Digest: dg(12), MediaType: "application/vnd.oci.image.manifest.v1+json", Size: 5,
			Blobs: []string{dg(2), dg(3)}, Sizes: map[string]int64{dg(2): 10, dg(3): 100}}, nil},
	} {
		putBlob(t, s, "r", tc.m.Digest, tc.m.Size)
		err := s.PutManifest(ctx, "r", tc.m, []string{"t"})
		var se *meta.SizeError
		if tc.want == nil {
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
			}
			continue
		}
		if !errors.As(err, &se) {
			t.Errorf("%s: got %v, want a *SizeError", tc.name, err)
			continue
		}
		if diff := cmp.Diff(tc.want, se); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.name, diff)
		}
		wantClass(t, tc.name, err, errdefs.ErrInvalidArgument)
		if _, err := s.Manifest(ctx, "r", tc.m.Digest); !errdefs.IsNotFound(err) {
			t.Errorf("%s: refused manifest stored (%v)", tc.name, err)
		}
	}
}

func testTags(t *testing.T, s meta.Store) {
	_, err := s.Tags(ctx, "r", "", -1)
	wantClass(t, "Tags of an unknown repository", err, errdefs.ErrNotFound)
	tags := []string{"b", "a", "B", "latest", "1.0", "1.0-rc", "_x", "a.b"}
	putImage(t, s, "r", 1, 2, 3, tags...)
	want := slices.Clone(tags)
	slices.Sort(want) // byte order
	got, err := s.Tags(ctx, "r", "", -1)
	must(t, err)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Tags (-want +got):\n%s", diff)
	}
	got, _ = s.Tags(ctx, "r", "", 3)
	if diff := cmp.Diff(want[:3], got); diff != "" {
		t.Errorf("Tags n=3 (-want +got):\n%s", diff)
	}
	got, _ = s.Tags(ctx, "r", want[2], 3)
	if diff := cmp.Diff(want[3:6], got); diff != "" {
		t.Errorf("Tags after %s (-want +got):\n%s", want[2], diff)
	}
	got, _ = s.Tags(ctx, "r", "", 0)
	if len(got) != 0 {
		t.Errorf("Tags n=0: %v", got)
	}
	// Retag moves a tag.
	putImage(t, s, "r", 4, 2, 3, "latest")
	m, err := s.Tag(ctx, "r", "latest")
	must(t, err)
	if m.Digest != dg(4) {
		t.Errorf("latest -> %s after retag", m.Digest)
	}
	must(t, s.DeleteTag(ctx, "r", "latest"))
	wantClass(t, "DeleteTag twice", s.DeleteTag(ctx, "r", "latest"), errdefs.ErrNotFound)
	if _, err := s.Manifest(ctx, "r", dg(4)); err != nil {
		t.Errorf("DeleteTag deleted the manifest: %v", err)
	}
	// Deleting a manifest deletes its tags.
	must(t, s.DeleteManifest(ctx, "r", dg(1)))
	got, _ = s.Tags(ctx, "r", "", -1)
	if len(got) != 0 {
		t.Errorf("tags left after DeleteManifest: %v", got)
	}
	wantClass(t, "DeleteManifest twice", s.DeleteManifest(ctx, "r", dg(1)), errdefs.ErrNotFound)
	_, err = s.Manifest(ctx, "r", dg(1))
	wantClass(t, "Manifest after delete", err, errdefs.ErrNotFound)
}

func testIndex(t *testing.T, s meta.Store) {
	putImage(t, s, "r", 1, 2, 3)
	putBlob(t, s, "r", dg(10), 500)
	idx := meta.Manifest{Digest: dg(10), MediaType: "application/vnd.oci.image.index.v1+json", Size: 500, Manifests: []string{dg(1), dg(5)}}
	err := s.PutManifest(ctx, "r", idx, []string{"multi"})
	var miss *meta.MissingError
	if !errors.As(err, &miss) || miss.Digest != dg(5) || !miss.Manifest {
		t.Fatalf("PutManifest of an index with a missing entry: %v", err)
	}
	putImage(t, s, "r", 5, 2, 6)
	must(t, s.PutManifest(ctx, "r", idx, []string{"multi"}))
	wantClass(t, "DeleteManifest of an index entry", s.DeleteManifest(ctx, "r", dg(5)), errdefs.ErrConflict)
	must(t, s.DeleteManifest(ctx, "r", dg(10)))
	must(t, s.DeleteManifest(ctx, "r", dg(5)))
}

func testReferrers(t *testing.T, s meta.Store) {
	subject := putImage(t, s, "r", 1, 2, 3)
	got, err := s.Referrers(ctx, "r", subject.Digest, "")
	must(t, err)
	if len(got) != 0 {
		t.Errorf("referrers before any: %v", got)
	}
	add := func(m int, at string, ann map[string]string) meta.Descriptor {
		putBlob(t, s, "r", dg(m), int64(m))
		man := meta.Manifest{Digest: dg(m), MediaType: "application/vnd.oci.image.manifest.v1+json", Size: int64(m), ArtifactType: at, Subject: subject.Digest, Annotations: ann, Blobs: []string{dg(2)}}
		must(t, s.PutManifest(ctx, "r", man, nil))
		return meta.Descriptor{MediaType: man.MediaType, Digest: man.Digest, Size: man.Size, ArtifactType: at, Annotations: ann}
	}
	sig := add(20, "application/vnd.example.sig", map[string]string{"k": "v", "org.opencontainers.image.created": "2024-01-01T00:00:00Z"})
	sbom := add(21, "application/spdx+json", nil)
	// A referrer whose subject does not exist is accepted and listed.
	putBlob(t, s, "r", dg(30), 30)
	must(t, s.PutManifest(ctx, "r", meta.Manifest{Digest: dg(30), MediaType: "application/vnd.oci.image.manifest.v1+json", Size: 30, ArtifactType: "x/y", Subject: dg(99)}, nil))

	sortD := cmpopts.SortSlices(func(a, b meta.Descriptor) bool { return a.Digest < b.Digest })
	got, err = s.Referrers(ctx, "r", subject.Digest, "")
	must(t, err)
	if diff := cmp.Diff([]meta.Descriptor{sig, sbom}, got, sortD); diff != "" {
		t.Errorf("Referrers (-want +got):\n%s", diff)
	}
	got, _ = s.Referrers(ctx, "r", subject.Digest, "application/spdx+json")
	if diff := cmp.Diff([]meta.Descriptor{sbom}, got); diff != "" {
		t.Errorf("Referrers filtered (-want +got):\n%s", diff)
	}
	got, _ = s.Referrers(ctx, "other", subject.Digest, "")
	if len(got) != 0 {
		t.Errorf("referrers from another repository: %v", got)
	}
	got, _ = s.Referrers(ctx, "r", dg(99), "")
	if len(got) != 1 || got[0].Digest != dg(30) {
		t.Errorf("referrers of a missing subject: %v", got)
	}
}

func testRepositories(t *testing.T, s meta.Store) {
	names := []string{"b/x", "a", "b", "a-b", "a/b", "z"}
	for i, n := range names {
		putBlob(t, s, n, dg(i), 1)
	}
	want := slices.Clone(names)
	slices.Sort(want)
	got, err := s.Repositories(ctx, "", -1)
	must(t, err)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Repositories (-want +got):\n%s", diff)
	}
	got, _ = s.Repositories(ctx, want[1], 2)
	if diff := cmp.Diff(want[2:4], got); diff != "" {
		t.Errorf("Repositories page (-want +got):\n%s", diff)
	}
}

func testUploads(t *testing.T, s meta.Store) {
	u := meta.Upload{ID: "u1", Repo: "r"}
	must(t, s.CreateUpload(ctx, u))
	got, err := s.Upload(ctx, "r", "u1")
	must(t, err)
	if got.Size != 0 || len(got.Chunks) != 0 || got.Created.IsZero() {
		t.Errorf("new upload = %+v", got)
	}
	_, err = s.Upload(ctx, "other", "u1")
	wantClass(t, "Upload from another repository", err, errdefs.ErrNotFound)
	u.Size, u.Chunks, u.HashState = 10, []string{"c0"}, []byte{1, 2, 3}
	must(t, s.UpdateUpload(ctx, u, 0))
	wantClass(t, "UpdateUpload from a stale offset", s.UpdateUpload(ctx, u, 0), errdefs.ErrConflict)
	got, _ = s.Upload(ctx, "r", "u1")
	if diff := cmp.Diff(u, got, cmpopts.IgnoreFields(meta.Upload{}, "Created", "Updated")); diff != "" {
		t.Errorf("updated upload (-want +got):\n%s", diff)
	}
	u2 := u
	u2.Size, u2.Chunks = 25, []string{"c0", "c10"}
	must(t, s.UpdateUpload(ctx, u2, 10))
	ok, _ := s.UploadExists(ctx, "u1")
	if !ok {
		t.Error("UploadExists false")
	}
	stale, err := s.StaleUploads(ctx, time.Now().Add(time.Hour), 10)
	must(t, err)
	if len(stale) != 1 || stale[0].ID != "u1" {
		t.Errorf("StaleUploads = %v", stale)
	}
	stale, _ = s.StaleUploads(ctx, time.Now().Add(-time.Hour), 10)
	if len(stale) != 0 {
		t.Errorf("fresh upload listed stale: %v", stale)
	}
	// Closing claims the content's digest with the same rules as
	// ClaimBlob, in the same step.
	_, err = s.CloseUpload(ctx, "r", "u1", 10, dg(50))
	wantClass(t, "CloseUpload at a stale size", err, errdefs.ErrConflict)
	_, err = s.CloseUpload(ctx, "other", "u1", 25, dg(50))
	wantClass(t, "CloseUpload from another repository", err, errdefs.ErrNotFound)
	putBlob(t, s, "r", dg(51), 1)
	ok, err = s.MarkDeleting(ctx, lock(t, s), dg(51), time.Now().Add(time.Hour))
	must(t, err)
	if !ok {
		t.Fatal("not marked")
	}
	_, err = s.CloseUpload(ctx, "r", "u1", 25, dg(51))
	wantClass(t, "CloseUpload of a digest being collected", err, errdefs.ErrUnavailable)
	if ok, _ := s.UploadExists(ctx, "u1"); !ok {
		t.Fatal("a refused CloseUpload ended the session")
	}
	must(t, s.CreateUpload(ctx, meta.Upload{ID: "u2", Repo: "r"}))
	present, err := s.CloseUpload(ctx, "r", "u2", 0, dg(52))
	must(t, err)
	if present {
		t.Error("CloseUpload of new content says present")
	}
	must(t, s.CommitBlob(ctx, "r", dg(52), 0))
	wantClass(t, "DeleteUpload at a stale size", s.DeleteUpload(ctx, "r", "u1", 10), errdefs.ErrConflict)
	must(t, s.DeleteUpload(ctx, "r", "u1", 25))
	wantClass(t, "DeleteUpload twice", s.DeleteUpload(ctx, "r", "u1", -1), errdefs.ErrNotFound)
	wantClass(t, "UpdateUpload of a deleted session", s.UpdateUpload(ctx, u2, 25), errdefs.ErrNotFound)
}

func candidates(t *testing.T, s meta.Store, before time.Time) []string {
	t.Helper()
	var out []string
	after := ""
	for {
		bs, err := s.GCCandidates(ctx, before, after, 2)
		must(t, err)
		if len(bs) == 0 {
			return out
		}
		for _, b := range bs {
			out = append(out, b.Digest)
		}
		after = bs[len(bs)-1].Digest
	}
}

func testGCGrace(t *testing.T, s meta.Store) {
	putBlob(t, s, "r", dg(1), 1)
	_, err := s.ClaimBlob(ctx, dg(2)) // a write in flight
	must(t, err)
	past, future := time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
	if got := candidates(t, s, past); len(got) != 0 {
		t.Errorf("fresh blobs are candidates: %v", got)
	}
	// A claim protects its write whatever the grace window.
	if diff := cmp.Diff([]string{dg(1)}, candidates(t, s, future)); diff != "" {
		t.Errorf("old blobs (-want +got):\n%s", diff)
	}
	if ok, _ := s.MarkDeleting(ctx, lock(t, s), dg(2), future); ok {
		t.Error("MarkDeleting took a blob being written")
	}
	ok, err := s.MarkDeleting(ctx, lock(t, s), dg(1), past)
	must(t, err)
	if ok {
		t.Error("MarkDeleting ignored the grace window")
	}
	ok, err = s.MarkDeleting(ctx, lock(t, s), dg(1), future)
	must(t, err)
	if !ok {
		t.Fatal("MarkDeleting refused an old unreferenced blob")
	}
	_, err = s.Blob(ctx, "r", dg(1))
	wantClass(t, "Blob while deleting", err, errdefs.ErrNotFound)
	must(t, s.ForgetBlob(ctx, dg(1)))
	repos, _ := s.BlobRepositories(ctx, dg(1), 10)
	if len(repos) != 0 {
		t.Errorf("links left after ForgetBlob: %v", repos)
	}
	// A claim on present content (a second push of it) protects it too,
	// until the commit.
	putBlob(t, s, "r", dg(4), 1)
	if present, err := s.ClaimBlob(ctx, dg(4)); err != nil || !present {
		t.Fatalf("reclaim: %v %v", present, err)
	}
	if ok, _ := s.MarkDeleting(ctx, lock(t, s), dg(4), future); ok {
		t.Error("MarkDeleting took a claimed present blob")
	}
	// Two writers claim it; the first commit leaves the second's claim.
	if _, err := s.ClaimBlob(ctx, dg(4)); err != nil {
		t.Fatal(err)
	}
	must(t, s.CommitBlob(ctx, "r", dg(4), 1))
	if ok, _ := s.MarkDeleting(ctx, lock(t, s), dg(4), future); ok {
		t.Error("a commit released another writer's claim")
	}
	must(t, s.CommitBlob(ctx, "r", dg(4), 1))
	if ok, _ := s.MarkDeleting(ctx, lock(t, s), dg(4), future); !ok {
		t.Error("the commits did not release the claims")
	}
	// A recent link (a mount) protects an old blob.
	putBlob(t, s, "r", dg(3), 1)
	must(t, s.LinkBlob(ctx, "s", dg(3)))
	ok, _ = s.MarkDeleting(ctx, lock(t, s), dg(3), time.Now().Add(-time.Minute))
	if ok {
		t.Error("MarkDeleting took a freshly mounted blob")
	}
}

func testGCProtectsReferenced(t *testing.T, s meta.Store) {
	putImage(t, s, "r", 1, 2, 3, "v1")
	future := time.Now().Add(time.Hour)
	if got := candidates(t, s, future); len(got) != 0 {
		t.Errorf("referenced blobs are candidates: %v", got)
	}
	for _, d := range []int{1, 2, 3} {
		if ok, _ := s.MarkDeleting(ctx, lock(t, s), dg(d), future); ok {
			t.Errorf("MarkDeleting took referenced %s", dg(d))
		}
	}
	must(t, s.DeleteManifest(ctx, "r", dg(1)))
	if diff := cmp.Diff([]string{dg(1), dg(2), dg(3)}, candidates(t, s, future)); diff != "" {
		t.Errorf("after manifest delete (-want +got):\n%s", diff)
	}
}

// testGCCandidatesUntagged checks the dry run of a collection with
// delete_untagged: what GCCandidatesUntagged foresees is what
// GCCandidates finds once the untagged manifests are deleted.
func testGCCandidatesUntagged(t *testing.T, s meta.Store) {
	putImage(t, s, "r", 1, 2, 3, "v1")
	putImage(t, s, "r", 4, 5, 3)       // untagged; its layer is shared with v1
	putImage(t, s, "r", 6, 7, 8)       // untagged, but tagged in r2
	putImage(t, s, "r2", 6, 7, 8, "x") // keeps 6, 7 and 8
	future := time.Now().Add(time.Hour)
	untagged := func() []string {
		var out []string
		after := ""
		for {
			bs, err := s.GCCandidatesUntagged(ctx, future, future, after, 2)
			must(t, err)
			if len(bs) == 0 {
				return out
			}
			for _, b := range bs {
				out = append(out, b.Digest)
			}
			after = bs[len(bs)-1].Digest
		}
	}
	if got := candidates(t, s, future); len(got) != 0 {
		t.Errorf("candidates before: %v", got)
	}
	want := []string{dg(4), dg(5)}
	if diff := cmp.Diff(want, untagged()); diff != "" {
		t.Errorf("foreseen (-want +got):\n%s", diff)
	}
	// Created after the cutoff: not deleted, so nothing is foreseen.
	bs, err := s.GCCandidatesUntagged(ctx, future, time.Now().Add(-time.Hour), "", 100)
	must(t, err)
	if len(bs) != 0 {
		t.Errorf("foreseen with an earlier cutoff: %v", bs)
	}
	for _, m := range []int{4, 6} {
		must(t, s.DeleteManifest(ctx, "r", dg(m)))
	}
	if diff := cmp.Diff(want, candidates(t, s, future)); diff != "" {
		t.Errorf("after deleting the untagged manifests (-foreseen +got):\n%s", diff)
	}
}

func testGCClaimWhileDeleting(t *testing.T, s meta.Store) {
	putBlob(t, s, "r", dg(1), 1)
	ok, err := s.MarkDeleting(ctx, lock(t, s), dg(1), time.Now().Add(time.Hour))
	must(t, err)
	if !ok {
		t.Fatal("not marked")
	}
	_, err = s.ClaimBlob(ctx, dg(1))
	wantClass(t, "ClaimBlob while deleting", err, errdefs.ErrUnavailable)
	wantClass(t, "LinkBlob while deleting", s.LinkBlob(ctx, "s", dg(1)), errdefs.ErrNotFound)
	// Interrupted collections are resumed: deleting rows stay candidates.
	if diff := cmp.Diff([]string{dg(1)}, candidates(t, s, time.Now().Add(-time.Hour))); diff != "" {
		t.Errorf("deleting blob not a candidate (-want +got):\n%s", diff)
	}
	must(t, s.ForgetBlob(ctx, dg(1)))
	// Once forgotten the digest can be written again.
	putBlob(t, s, "r", dg(1), 1)
	if _, err := s.Blob(ctx, "r", dg(1)); err != nil {
		t.Errorf("Blob after rewrite: %v", err)
	}
}

func testGCOrphan(t *testing.T, s meta.Store) {
	// Content in storage without a row (a crash between write and commit).
	ok, err := s.MarkDeleting(ctx, lock(t, s), dg(7), time.Now())
	must(t, err)
	if !ok {
		t.Fatal("orphan not marked")
	}
	_, err = s.ClaimBlob(ctx, dg(7))
	wantClass(t, "ClaimBlob of an orphan being deleted", err, errdefs.ErrUnavailable)
	must(t, s.ForgetBlob(ctx, dg(7)))
	_, err = s.ClaimBlob(ctx, dg(7))
	must(t, err)
}

// A blob marked deleting waits for its collector while the collector
// lives, and is taken over at once when its lock is gone (released here
// without forgetting the blob, as a killed collector leaves it). One
// collection holds the lock at a time.
func testGCDeadCollector(t *testing.T, s meta.Store) {
	putBlob(t, s, "r", dg(1), 1)
	l, err := s.LockCollection(ctx)
	must(t, err)
	defer l.Release()
	if l.ID() == 0 {
		t.Fatal("the collection lock has no identity")
	}
	must(t, l.Check(ctx))
	ok, err := s.MarkDeleting(ctx, l, dg(1), time.Now().Add(time.Hour))
	must(t, err)
	if !ok {
		t.Fatal("not marked")
	}
	_, err = s.ClaimBlob(ctx, dg(1))
	wantClass(t, "ClaimBlob while its collector lives", err, errdefs.ErrUnavailable)
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	_, err = s.LockCollection(short)
	cancel()
	wantClass(t, "a second collection while one runs", err, context.DeadlineExceeded)

	must(t, l.Release())
	present, err := s.ClaimBlob(ctx, dg(1))
	if err != nil {
		t.Fatalf("ClaimBlob after its collector died: %v", err)
	}
	if present {
		t.Error("a blob taken over from a dead collector is reported present")
	}
	must(t, s.CommitBlob(ctx, "r", dg(1), 1))
	if _, err := s.Blob(ctx, "r", dg(1)); err != nil {
		t.Errorf("Blob after the takeover: %v", err)
	}
	// The next collection starts, and leaves the taken-over blob alone
	// while the commit is fresh.
	l2, err := s.LockCollection(ctx)
	must(t, err)
	defer l2.Release()
	if l2.ID() == l.ID() {
		t.Error("two collections with one identity")
	}
	if ok, _ := s.MarkDeleting(ctx, l2, dg(1), time.Now().Add(-time.Minute)); ok {
		t.Error("the next collection took the rewritten blob")
	}
}

// testGCRace pushes images while a collector that considers everything old
// runs; afterwards every stored manifest's blobs must be present.
func testGCRace(t *testing.T, s meta.Store) {
	const pushers, images = 4, 8
	stop := make(chan struct{})
	var gcWG sync.WaitGroup
	gcWG.Go(func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
			}
			future := time.Now().Add(time.Hour)
			bs, err := s.GCCandidates(ctx, future, "", 100)
			if err != nil {
				t.Errorf("GCCandidates: %v", err)
				return
			}
			for _, b := range bs {
				ok, err := s.MarkDeleting(ctx, lock(t, s), b.Digest, future)
				if err != nil {
					t.Errorf("MarkDeleting: %v", err)
					return
				}
				if ok {
					s.ForgetBlob(ctx, b.Digest)
				}
			}
		}
	})
	var wg sync.WaitGroup
	for p := range pushers {
		wg.Go(func() {
			repo := fmt.Sprintf("r%d", p)
			for i := range images {
				base := 1000*(p+1) + 10*i
				if err := pushRetrying(s, repo, base); err != nil {
					t.Errorf("push %s/%d: %v", repo, i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	gcWG.Wait()
	for p := range pushers {
		for i := range images {
			base := 1000*(p+1) + 10*i
			repo := fmt.Sprintf("r%d", p)
			if _, err := s.Manifest(ctx, repo, dg(base)); err != nil {
				t.Errorf("manifest %d: %v", base, err)
			}
			for _, d := range []int{base, base + 1, base + 2} {
				if _, err := s.Blob(ctx, repo, dg(d)); err != nil {
					t.Errorf("blob %s of a stored manifest: %v", dg(d), err)
				}
			}
		}
	}
}

// pushRetrying pushes an image the way the registry does: claim, commit,
// then put the manifest, starting again when the collector got in between.
func pushRetrying(s meta.Store, repo string, base int) error {
	var err error
	for attempt := 0; attempt < 500; attempt++ {
		err = push(s, repo, base)
		if err == nil {
			return nil
		}
		if !errdefs.IsNotFound(err) && !errors.Is(err, errdefs.ErrUnavailable) {
			return err
		}
		time.Sleep(time.Millisecond)
	}
	return err
}

func push(s meta.Store, repo string, base int) error {
	for _, d := range []int{base + 1, base + 2, base} {
		if _, err := s.ClaimBlob(ctx, dg(d)); err != nil {
			return err
		}
		if err := s.CommitBlob(ctx, repo, dg(d), 1); err != nil {
			return err
		}
	}
	return s.PutManifest(ctx, repo, meta.Manifest{
		Digest: dg(base), MediaType: "application/vnd.oci.image.manifest.v1+json", Size: 1,
		Blobs: []string{dg(base + 1), dg(base + 2)},
	}, []string{fmt.Sprintf("t%d", base)})
}

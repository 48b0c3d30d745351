package server_test

import (
	"context"
	"io/fs"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"

	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/artifact"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/gc"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/models"
	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
)

// blobFiles maps each blob content file under a storage root to its size,
// read from the file system.
func blobFiles(t *testing.T, root string) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	err := filepath.WalkDir(filepath.Join(root, "blobs"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() != "data" {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		out[p] = fi.Size()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestGarbageCollectionDryRunFrees checks a dry run's figures (Harbor's
// "N blobs and M manifests eligible for deletion" and "could free up")
// against what the real run that follows takes off the disk: an untagged
// artifact whose base layer a tagged one shares (the shared layer stays),
// and a deleted artifact whose blobs nothing references.
func TestGarbageCollectionDryRunFrees(t *testing.T) {
	srv := lifecycleServer(t)
	a := srv.Admin()
	ctx := context.Background()
	newProject(t, a, "gcd")
	layer := func() v1.Layer {
		l, err := random.Layer(40<<10, "application/vnd.oci.image.layer.v1.tar+gzip")
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	base := layer()
	image := func(ls ...v1.Layer) v1.Image {
		img, err := mutate.AppendLayers(empty.Image, ls...)
		if err != nil {
			t.Fatal(err)
		}
		return img
	}
	for tag, img := range map[string]v1.Image{"keep": image(base, layer()), "untag": image(base, layer()), "drop": image(layer(), layer())} {
		if err := srv.Push(ctx, img, "gcd/app", tag, admin, adminPW); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := a.Artifact.DeleteTag(ctx, artifact.NewDeleteTagParams().WithProjectName("gcd").WithRepositoryName("app").WithReference("untag").WithTagName("untag")); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Artifact.DeleteArtifact(ctx, artifact.NewDeleteArtifactParams().WithProjectName("gcd").WithRepositoryName("app").WithReference("drop")); err != nil {
		t.Fatal(err)
	}
	root := srv.Config.Storage.Filesystem.Root
	runGC := func(dry bool) string {
		t.Helper()
		_, err := a.GC.CreateGCSchedule(ctx, gc.NewCreateGCScheduleParams().WithSchedule(&models.Schedule{
			Schedule: &models.ScheduleObj{Type: "Manual"}, Parameters: map[string]any{"dry_run": dry, "delete_untagged": true}}))
		if err != nil {
			t.Fatalf("starting gc: %v", err)
		}
		h := waitGC(t, a)
		if h.JobStatus != "Success" {
			t.Fatalf("gc (dry run %v): %+v", dry, h)
		}
		log, err := a.GC.GetGCLog(ctx, gc.NewGetGCLogParams().WithGCID(h.ID))
		if err != nil {
			t.Fatal(err)
		}
		return log.Payload
	}
	before := blobFiles(t, root)
	log := runGC(true)
	if diff := cmp.Diff(before, blobFiles(t, root)); diff != "" {
		t.Fatalf("the dry run changed the storage (-before +after):\n%s", diff)
	}
	eligible := regexp.MustCompile(`(\d+) blobs and (\d+) manifests eligible for deletion`).FindStringSubmatch(log)
	free := regexp.MustCompile(`The GC could free up \d+ MB space \((\d+) bytes\), the size is a rough estimation`).FindStringSubmatch(log)
	if eligible == nil || free == nil {
		t.Fatalf("the dry run's log lacks Harbor's summary lines:\n%s", log)
	}
	blobs, _ := strconv.Atoi(eligible[1])
	manifests, _ := strconv.Atoi(eligible[2])
	bytes, _ := strconv.ParseInt(free[1], 10, 64)

	runGC(false)
	after := blobFiles(t, root)
	gone, freed := 0, int64(0)
	for p, n := range before {
		if _, ok := after[p]; !ok {
			gone++
			freed += n
		}
	}
	// The untagged artifact's manifest, config and own layer; the
	// deleted one's manifest, config and two layers.
	if gone != 7 {
		t.Errorf("the real run removed %d blob files, want 7", gone)
	}
	if got, want := [3]int64{int64(blobs), int64(manifests), bytes}, [3]int64{int64(gone), 1, freed}; got != want {
		t.Errorf("the dry run said %d blobs, %d manifests, %d bytes; the real run removed %d blob files (%d bytes) and %d untagged manifest",
			blobs, manifests, bytes, gone, freed, 1)
	}
	if _, err := srv.Pull(ctx, "gcd/app:keep", admin, adminPW); err != nil {
		t.Errorf("the tagged artifact (and its shared base layer) must stay: %v", err)
	}
}

package server_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/artifact"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/replication"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/repository"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/models"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/lading-dev/lading/internal/harbortest"
	"github.com/lading-dev/lading/internal/registrytest"
	"github.com/lading-dev/lading/internal/testenv"
)

// TestReplicationOverride: docker-registry already has library/app:v1
// naming another image. A run with override off leaves that tag alone
// (the manifest arrives by digest only) and its task log says the tag was
// skipped; with override on, the tag is replaced.
func TestReplicationOverride(t *testing.T) {
	ctx := context.Background()
	dist := registrytest.Start(t, registrytest.None)
	srv := loopbackServer(t)

	theirs, ours := harbortest.Image(t), harbortest.Image(t)
	ref, err := name.ParseReference(dist.Host+"/library/app:v1", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, theirs, remote.WithContext(ctx)); err != nil {
		t.Fatal(err)
	}
	if err := srv.Push(ctx, ours, "library/app", "v1", "admin", harbortest.AdminPassword); err != nil {
		t.Fatal(err)
	}
	reg := createRegistry(t, srv, "distribution", "docker-registry", "http://"+dist.Host, "", "")
	policy := createPolicy(t, srv, &models.ReplicationPolicy{
		Name: "no-override", DestRegistry: &models.Registry{ID: reg}, Override: false,
		Filters: []*models.ReplicationFilter{{Type: "name", Value: "library/app"}},
		Trigger: &models.ReplicationTrigger{Type: "manual"},
	})

	ex := runPolicy(t, srv, policy)
	_, logs := taskLogs(t, srv, ex.ID)
	if ex.Status != "Succeed" {
		t.Fatalf("execution with override off: %+v\n%s", ex, logs)
	}
	if got := skopeoDigest(t, dist.Host+"/library/app:v1", ""); got != digestOf(t, theirs) {
		t.Errorf("with override off the destination's library/app:v1 is %s, want the image it had (%s)", got, digestOf(t, theirs))
	}
	if got := skopeoDigest(t, dist.Host+"/library/app@"+digestOf(t, ours), ""); got != digestOf(t, ours) {
		t.Errorf("with override off the source's manifest did not arrive by digest: %q", got)
	}
	if !strings.Contains(logs, "override is off: tag skipped") {
		t.Errorf("the task log does not say the tag was skipped:\n%s", logs)
	}

	got, err := srv.Admin().Replication.GetReplicationPolicy(ctx, &replication.GetReplicationPolicyParams{ID: policy})
	if err != nil {
		t.Fatal(err)
	}
	p := got.Payload
	p.Override = true
	if _, err := srv.Admin().Replication.UpdateReplicationPolicy(ctx, &replication.UpdateReplicationPolicyParams{ID: policy, Policy: p}); err != nil {
		t.Fatalf("turning override on: %v", err)
	}
	ex = runPolicy(t, srv, policy)
	_, logs = taskLogs(t, srv, ex.ID)
	if ex.Status != "Succeed" {
		t.Fatalf("execution with override on: %+v\n%s", ex, logs)
	}
	if got := skopeoDigest(t, dist.Host+"/library/app:v1", ""); got != digestOf(t, ours) {
		t.Errorf("with override on the destination's library/app:v1 is %s, want the source's %s", got, digestOf(t, ours))
	}
	if !strings.Contains(logs, "replaced (override)") {
		t.Errorf("the task log does not say the tag was replaced:\n%s", logs)
	}
}

// TestReplicationScheduled: a policy with an hourly cron trigger fires
// when its time comes (the database's clock moved two hours on, as the
// job service's scheduler reads it): one execution with trigger
// "scheduled", which copies the artifact.
func TestReplicationScheduled(t *testing.T) {
	ctx := context.Background()
	dist := registrytest.Start(t, registrytest.None)
	srv := loopbackServer(t)
	img := harbortest.Image(t)
	if err := srv.Push(ctx, img, "library/cron", "v1", "admin", harbortest.AdminPassword); err != nil {
		t.Fatal(err)
	}
	reg := createRegistry(t, srv, "distribution", "docker-registry", "http://"+dist.Host, "", "")
	policy := createPolicy(t, srv, &models.ReplicationPolicy{
		Name: "hourly", DestRegistry: &models.Registry{ID: reg},
		Filters: []*models.ReplicationFilter{{Type: "name", Value: "library/cron"}},
		Trigger: &models.ReplicationTrigger{Type: "scheduled", TriggerSettings: &models.ReplicationTriggerSettings{Cron: "0 0 * * * *"}},
	})
	executions := func() []*models.ReplicationExecution {
		t.Helper()
		res, err := srv.Admin().Replication.ListReplicationExecutions(ctx, &replication.ListReplicationExecutionsParams{PolicyID: &policy})
		if err != nil {
			t.Fatal(err)
		}
		return res.Payload
	}
	if got := executions(); len(got) != 0 {
		t.Fatalf("the scheduled policy ran before its time: %+v", got)
	}

	srv.DB.SetClock(func() time.Time { return time.Now().Add(2 * time.Hour) })
	defer srv.DB.SetClock(time.Now)
	deadline := time.Now().Add(60 * time.Second)
	var ex *models.ReplicationExecution
	for ex == nil {
		if got := executions(); len(got) > 0 {
			ex = waitExecution(t, srv, got[0].ID)
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the hourly schedule did not start a run two hours later")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if ex.Trigger != "scheduled" || ex.Status != "Succeed" {
		_, logs := taskLogs(t, srv, ex.ID)
		t.Fatalf("the scheduled execution: %+v\n%s", ex, logs)
	}
	if got := skopeoDigest(t, dist.Host+"/library/cron:v1", ""); got != digestOf(t, img) {
		t.Errorf("after the scheduled run the destination's library/cron:v1 is %q, want %s", got, digestOf(t, img))
	}
	// One tick, one run.
	if got := executions(); len(got) != 1 {
		t.Errorf("%d executions after one tick, want 1: %+v", len(got), got)
	}
}

// TestReplicationCosignAccessories signs an image with the real cosign
// twice, in its tag layout (sha256-HEX.sig) and as a Sigstore bundle
// (an OCI 1.1 referrer), replicates the image to docker-registry with a
// tag filter that names only the image's tag, and verifies both
// signatures at the destination with cosign: the accessories followed
// their subject, digests unchanged. docker-registry has no referrers
// API: the bundle is found there through the referrers tag schema.
func TestReplicationCosignAccessories(t *testing.T) {
	cosign := testenv.Tool(t, "cosign", cosignTool)
	ctx := context.Background()
	dist := registrytest.Start(t, registrytest.None)
	srv := loopbackServer(t)
	env, key, pub := cosignSetup(t, srv, cosign)

	img := harbortest.Image(t)
	if err := srv.Push(ctx, img, "library/signed", "v1", "admin", harbortest.AdminPassword); err != nil {
		t.Fatal(err)
	}
	dgst := digestOf(t, img)
	cosignSign(t, env, cosign, key, srv.Host+"/library/signed@"+dgst, false)
	cosignSign(t, env, cosign, key, srv.Host+"/library/signed@"+dgst, true)
	sigTag := "sha256-" + strings.TrimPrefix(dgst, "sha256:") + ".sig"
	creds := "admin:" + harbortest.AdminPassword
	wantSig := skopeoDigest(t, srv.Host+"/library/signed:"+sigTag, creds)
	if wantSig == "" {
		t.Fatalf("cosign made no %s tag in lading", sigTag)
	}

	reg := createRegistry(t, srv, "distribution", "docker-registry", "http://"+dist.Host, "", "")
	policy := createPolicy(t, srv, &models.ReplicationPolicy{
		Name: "signed", DestRegistry: &models.Registry{ID: reg},
		Filters: []*models.ReplicationFilter{
			{Type: "name", Value: "library/signed"},
			{Type: "tag", Value: "v1", Decoration: "matches"},
		},
		Trigger: &models.ReplicationTrigger{Type: "manual"},
	})
	ex := runPolicy(t, srv, policy)
	_, logs := taskLogs(t, srv, ex.ID)
	if ex.Status != "Succeed" {
		t.Fatalf("execution: %+v\n%s", ex, logs)
	}
	if got := skopeoDigest(t, dist.Host+"/library/signed:v1", ""); got != dgst {
		t.Fatalf("the destination's library/signed:v1 is %q, want %s", got, dgst)
	}
	if got := skopeoDigest(t, dist.Host+"/library/signed:"+sigTag, ""); got != wantSig {
		t.Errorf("the destination's %s is %q, want %s (lading's)", sigTag, got, wantSig)
	}
	// The bundle arrived as a referrer: docker-registry lists it under the
	// referrers tag schema's tag (sha256-HEX, an index).
	if got := skopeoDigest(t, dist.Host+"/library/signed:"+strings.TrimSuffix(sigTag, ".sig"), ""); got == "" {
		t.Errorf("the destination has no referrers tag for %s: the bundle did not follow its subject", dgst)
	}
	ref := dist.Host + "/library/signed@" + dgst
	cosignVerify(t, env, cosign, pub, ref, false)
	cosignVerify(t, env, cosign, pub, ref, true)
}

// TestReplicationEventDeleteToDistribution: two event-based policies push
// to docker-registry, one with replicate_deletion. Pushes replicate on
// their own; deleting the artifacts through Harbor's API deletes, at the
// destination, only the one whose policy says so; so does deleting a
// repository, and deleting a tag (docker-registry cannot delete tags:
// the manifest goes, as with Harbor).
func TestReplicationEventDeleteToDistribution(t *testing.T) {
	ctx := context.Background()
	dist := registrytest.Start(t, registrytest.None)
	srv := loopbackServer(t)
	reg := createRegistry(t, srv, "distribution", "docker-registry", "http://"+dist.Host, "", "")
	withDeletion := createPolicy(t, srv, &models.ReplicationPolicy{
		Name: "mirror-deletions", DestRegistry: &models.Registry{ID: reg}, ReplicateDeletion: true,
		Filters: []*models.ReplicationFilter{{Type: "name", Value: "library/gone{,-repo,-tag}"}},
		Trigger: &models.ReplicationTrigger{Type: "event_based"},
	})
	withoutDeletion := createPolicy(t, srv, &models.ReplicationPolicy{
		Name: "keep-deletions", DestRegistry: &models.Registry{ID: reg},
		Filters: []*models.ReplicationFilter{{Type: "name", Value: "library/kept"}},
		Trigger: &models.ReplicationTrigger{Type: "event_based"},
	})
	executions := func(policy int64) []*models.ReplicationExecution {
		t.Helper()
		res, err := srv.Admin().Replication.ListReplicationExecutions(ctx, &replication.ListReplicationExecutionsParams{PolicyID: &policy})
		if err != nil {
			t.Fatal(err)
		}
		return res.Payload
	}
	// waitAll waits until a policy has n executions, all ended, and
	// returns them newest first.
	waitAll := func(policy int64, n int) []*models.ReplicationExecution {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for {
			got := executions(policy)
			if len(got) == n {
				for i, e := range got {
					got[i] = waitExecution(t, srv, e.ID)
				}
				return got
			}
			if time.Now().After(deadline) {
				t.Fatalf("policy %d has %d executions after 60s, want %d", policy, len(got), n)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	gone, kept, goneRepo, goneTag := harbortest.Image(t), harbortest.Image(t), harbortest.Image(t), harbortest.Image(t)
	for _, c := range []struct {
		repo   string
		img    v1.Image
		policy int64
		n      int
	}{{"library/gone", gone, withDeletion, 1}, {"library/kept", kept, withoutDeletion, 1}, {"library/gone-repo", goneRepo, withDeletion, 2}, {"library/gone-tag", goneTag, withDeletion, 3}} {
		if err := srv.Push(ctx, c.img, c.repo, "v1", "admin", harbortest.AdminPassword); err != nil {
			t.Fatal(err)
		}
		if ex := waitAll(c.policy, c.n)[0]; ex.Status != "Succeed" || ex.Trigger != "event_based" {
			_, logs := taskLogs(t, srv, ex.ID)
			t.Fatalf("the push of %s replicated as %+v\n%s", c.repo, ex, logs)
		}
		if got := skopeoDigest(t, dist.Host+"/"+c.repo+":v1", ""); got != digestOf(t, c.img) {
			t.Fatalf("after the push the destination's %s:v1 is %q, want %s", c.repo, got, digestOf(t, c.img))
		}
	}

	for _, repo := range []string{"kept", "gone"} {
		if _, err := srv.Admin().Artifact.DeleteArtifact(ctx, &artifact.DeleteArtifactParams{ProjectName: "library", RepositoryName: repo, Reference: "v1"}); err != nil {
			t.Fatalf("deleting library/%s:v1: %v", repo, err)
		}
	}
	// A repository's deletion is its artifacts' deletions.
	if _, err := srv.Admin().Repository.DeleteRepository(ctx, &repository.DeleteRepositoryParams{ProjectName: "library", RepositoryName: "gone-repo"}); err != nil {
		t.Fatalf("deleting library/gone-repo: %v", err)
	}
	// A tag's deletion: docker-registry cannot delete tags (it answers
	// 400), so the manifest the tag names goes, as Harbor does.
	if _, err := srv.Admin().Artifact.DeleteTag(ctx, &artifact.DeleteTagParams{ProjectName: "library", RepositoryName: "gone-tag", Reference: "v1", TagName: "v1"}); err != nil {
		t.Fatalf("deleting the tag library/gone-tag:v1: %v", err)
	}
	deletions := waitAll(withDeletion, 6)[:3]
	if _, logs := taskLogs(t, srv, deletions[0].ID); !strings.Contains(logs, "cannot delete a tag: deleting the manifest it names") {
		t.Errorf("the tag deletion's log does not say the manifest was deleted instead:\n%s", logs)
	}
	for _, ex := range deletions {
		tasks, logs := taskLogs(t, srv, ex.ID)
		if ex.Status != "Succeed" || len(tasks) != 1 || tasks[0].Operation != "deletion" {
			t.Fatalf("a deletion replicated as %+v, tasks %+v\n%s", ex, tasks, logs)
		}
	}
	for _, c := range []struct{ repo, dgst string }{{"library/gone", digestOf(t, gone)}, {"library/gone-repo", digestOf(t, goneRepo)}, {"library/gone-tag", digestOf(t, goneTag)}} {
		if got := skopeoDigest(t, dist.Host+"/"+c.repo+"@"+c.dgst, ""); got != "" {
			t.Errorf("the destination still has %s@%s after its deletion was replicated", c.repo, c.dgst)
		}
	}
	if got := executions(withoutDeletion); len(got) != 1 {
		t.Errorf("a policy without replicate_deletion ran on a deletion: %+v", got)
	}
	if got := skopeoDigest(t, dist.Host+"/library/kept:v1", ""); got != digestOf(t, kept) {
		t.Errorf("the destination's library/kept:v1 is %q after a deletion its policy does not replicate, want %s", got, digestOf(t, kept))
	}
}

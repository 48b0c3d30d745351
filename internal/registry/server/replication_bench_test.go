package server_test

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/goharbor/go-client/pkg/sdk/v2.0/models"

	"github.com/lading-dev/lading/internal/corpustest"
	"github.com/lading-dev/lading/internal/harbortest"
	"github.com/lading-dev/lading/internal/registrytest"
	"github.com/lading-dev/lading/internal/testenv"
)

// BenchmarkReplicationCorpus replicates the corpus's OCI images (pushed
// into lading with skopeo) to Debian's docker-registry, and, in the same
// run, copies the same repositories with skopeo sync from lading to the
// same registry; each iteration writes to fresh repositories of both.
// It reports both times and their ratio (lading/skopeo).
func BenchmarkReplicationCorpus(b *testing.B) {
	skopeo := testenv.Tool(b, "skopeo", "skopeo")
	files, _ := filepath.Glob(filepath.Join(corpustest.Dir(b), "images", "*.oci.tar"))
	if len(files) == 0 {
		testenv.Skip(b, "no OCI images in the corpus")
	}
	dist := registrytest.Start(b, registrytest.None)
	srv := loopbackServer(b)
	creds := "admin:" + harbortest.AdminPassword
	var repos []string
	for _, f := range files {
		repo := "library/" + strings.TrimSuffix(filepath.Base(f), ".oci.tar")
		out, err := exec.Command(skopeo, "copy", "-q", "--all", "--dest-tls-verify=false", "--dest-creds", creds,
			"oci-archive:"+f, "docker://"+srv.Host+"/"+repo+":v1").CombinedOutput()
		if err != nil {
			b.Fatalf("pushing %s: %v\n%s", f, err, out)
		}
		repos = append(repos, repo)
	}
	reg := createRegistry(b, srv, "distribution", "docker-registry", "http://"+dist.Host, "", "")
	b.ResetTimer()
	var lading, sync time.Duration
	for i := 0; i < b.N; i++ {
		policy := createPolicy(b, srv, &models.ReplicationPolicy{
			Name: fmt.Sprintf("corpus%d", i), DestRegistry: &models.Registry{ID: reg}, DestNamespace: fmt.Sprintf("rep%d", i),
			Filters: []*models.ReplicationFilter{{Type: "name", Value: "library/**"}},
		})
		start := time.Now()
		ex := runPolicy(b, srv, policy)
		lading += time.Since(start)
		if ex.Status != "Succeed" || ex.Succeed != int64(len(repos)) {
			b.Fatalf("execution: %+v", ex)
		}
		start = time.Now()
		for _, repo := range repos {
			out, err := exec.Command(skopeo, "sync", "--all", "--src", "docker", "--dest", "docker", "--src-tls-verify=false", "--dest-tls-verify=false",
				"--src-creds", creds, srv.Host+"/"+repo, fmt.Sprintf("%s/sync%d", dist.Host, i)).CombinedOutput()
			if err != nil {
				b.Fatalf("skopeo sync %s: %v\n%s", repo, err, out)
			}
		}
		sync += time.Since(start)
	}
	b.StopTimer()
	s := func(d time.Duration) float64 { return d.Seconds() / float64(b.N) }
	b.ReportMetric(s(lading), "lading-s")
	b.ReportMetric(s(sync), "skopeo-sync-s")
	b.ReportMetric(float64(lading)/float64(sync), "lading/skopeo")
}

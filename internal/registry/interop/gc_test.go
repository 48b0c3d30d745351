package interop

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	reg "github.com/lading-dev/lading/internal/registry"
	"github.com/lading-dev/lading/internal/registry/storage"
)

// Garbage collection on S3 and PostgreSQL: what crane pushed and deleted
// leaves the bucket, what is still tagged stays pullable.
func TestGCOnS3Postgres(t *testing.T) {
	crane := tool(t, "crane")
	lading := start(t, withS3Postgres)
	dir := t.TempDir()
	env := []string{"DOCKER_CONFIG=" + dir}
	run(t, env, crane, "auth", "login", lading.host, "-u", user, "-p", password)
	for i, name := range []string{"keep", "drop"} {
		layer := filepath.Join(dir, name+".tar")
		writeFile(t, layer, tarOf(t, "etc/"+name, strings.Repeat(name, 1000+i)))
		run(t, env, crane, "append", "--insecure", "-f", layer, "-t", lading.host+"/gc/"+name+":v1")
	}
	drop := strings.TrimSpace(run(t, env, crane, "digest", "--insecure", lading.host+"/gc/drop:v1"))
	run(t, env, crane, "delete", "--insecure", lading.host+"/gc/drop@"+drop)

	blobs := func() int {
		n := 0
		err := lading.srv.Driver.Walk(context.Background(), "blobs", func(storage.FileInfo) error { n++; return nil })
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := blobs()
	rep, err := lading.srv.Collector.Collect(context.Background(), reg.GCOptions{Grace: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	// drop's manifest, config and layer; keep's share nothing with it
	// (both configs and layers differ).
	if rep.BlobsDeleted != 3 {
		t.Errorf("collection: %+v", rep)
	}
	if after := blobs(); after != before-3 {
		t.Errorf("%d objects under blobs/ after the collection, %d before", after, before)
	}
	run(t, env, crane, "pull", "--insecure", lading.host+"/gc/keep:v1", filepath.Join(dir, "keep-pulled.tar"))
}

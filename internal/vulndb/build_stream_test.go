package vulndb

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func liveHeap() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// A Builder keeps in memory what merging needs, not the records: 64 MiB of
// descriptions and versions lists cost it a few MiB, and come back intact.
func TestBuilderSpillsRecords(t *testing.T) {
	const n = 1024
	desc := strings.Repeat("a long description of a flaw. ", 2048) // 60 KiB
	versions := make([]string, 200)
	for i := range versions {
		versions[i] = fmt.Sprintf("1.%d.0", i)
	}
	b := NewBuilder(discard, WithBuildTempDir(t.TempDir()))
	before := liveHeap()
	for i := range n {
		b.Add(Record{
			ID: fmt.Sprintf("GHSA-test-%04d", i), Aliases: []string{fmt.Sprintf("CVE-2099-%04d", i)}, Source: "osv:PyPI",
			Description: fmt.Sprintf("%d: %s", i, desc),
			Affected:    []Affected{{Namespace: "PyPI", Package: fmt.Sprintf("pkg%d", i%97), Versions: versions}},
		})
	}
	grown := int64(liveHeap()) - int64(before)
	if grown > 8<<20 {
		t.Errorf("the builder holds %d MiB after %d records of 60 KiB each", grown>>20, n)
	}
	path := filepath.Join(t.TempDir(), FileName)
	meta, err := b.Write(context.Background(), path, Metadata{})
	if err != nil {
		t.Fatal(err)
	}
	if meta.Vulnerabilities != n || meta.Advisories != n || meta.Packages != 97 {
		t.Errorf("metadata %+v", meta)
	}
	db, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	advs, err := db.Advisories(context.Background(), "PyPI", "pkg5")
	if err != nil || len(advs) == 0 {
		t.Fatalf("advisories %v %v", advs, err)
	}
	v, err := db.Vulnerability(context.Background(), advs[0])
	if err != nil || !strings.HasSuffix(v.Description, desc[:len(desc)-1]) || len(advs[0].Versions) != len(versions) {
		t.Errorf("vulnerability %s: %d bytes of description, %d versions, %v", v.ID, len(v.Description), len(advs[0].Versions), err)
	}
}

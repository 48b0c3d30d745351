package analyze

import (
	"context"
	"fmt"
	"io/fs"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/lading-dev/lading/internal/pkg"
)

// mergeCase is a crafted layer stack and the files (with their content and
// the layer they come from) that the merged view shows to an analyzer that
// wants everything. The same cases run against the kernel's overlayfs in
// kernel_test.go.
type mergeCase struct {
	name   string
	layers [][]ent
	want   []string // "path=content@layer"
	// noKernel says why the kernel comparison does not apply.
	noKernel string
}

func mergeCases() []mergeCase {
	return []mergeCase{
		{
			name: "whiteout file",
			layers: [][]ent{
				{dir("etc"), file("etc/motd", "hi"), file("etc/issue", "alpine")},
				{whiteout("etc/motd")},
			},
			want: []string{"etc/issue=alpine@0"},
		},
		{
			name: "whiteout dir hides its subtree",
			layers: [][]ent{
				{dir("media"), dir("media/cdrom"), file("media/cdrom/x", "x"), dir("media/cdrom/d"), file("media/cdrom/d/y", "y"), file("media/keep", "k")},
				{whiteout("media/cdrom")},
			},
			want: []string{"media/keep=k@0"},
		},
		{
			name: "whiteout and a new file of the same name in one layer",
			layers: [][]ent{
				{file("a", "old"), dir("d"), file("d/x", "x")},
				{whiteout("a"), file("a", "new"), whiteout("d"), dir("d"), file("d/y", "y")},
			},
			want: []string{"a=new@1", "d/y=y@1"},
		},
		{
			name: "opaque dir hides lower content only",
			layers: [][]ent{
				{dir("etc"), dir("etc/periodic"), dir("etc/periodic/hourly"), file("etc/periodic/hourly/a", "a"), file("etc/periodic/x", "x"), file("etc/keep", "k")},
				{opaque("etc/periodic"), dir("etc/periodic/daily"), file("etc/periodic/daily/b", "b")},
			},
			want: []string{"etc/keep=k@0", "etc/periodic/daily/b=b@1"},
		},
		{
			name: "opaque root hides every lower layer",
			layers: [][]ent{
				{file("old", "old"), dir("etc"), file("etc/x", "x")},
				{opaque("."), file("new", "new")},
			},
			want:     []string{"new=new@1"},
			noKernel: "the kernel never looks up a lower root, so it ignores the opaque xattr there; containerd and umoci apply the marker",
		},
		{
			name: "file replaced by a file",
			layers: [][]ent{
				{file("a", "v1"), file("b", "b")},
				{file("a", "v2")},
				{file("a", "v3")},
			},
			want: []string{"a=v3@2", "b=b@0"},
		},
		{
			name: "file replaced by a dir",
			layers: [][]ent{
				{file("a", "file"), file("b", "b")},
				{dir("a"), file("a/x", "x")},
			},
			want: []string{"a/x=x@1", "b=b@0"},
		},
		{
			name: "file replaced by an implied dir",
			layers: [][]ent{
				{file("a", "file")},
				{file("a/x", "x")},
			},
			want: []string{"a/x=x@1"},
		},
		{
			name: "dir replaced by a file",
			layers: [][]ent{
				{dir("a"), dir("a/sub"), file("a/sub/x", "x")},
				{file("a", "nowfile")},
			},
			want: []string{"a=nowfile@1"},
		},
		{
			// trivy#2637: the files under the old directory are gone.
			name: "dir replaced by a symlink",
			layers: [][]ent{
				{dir("lib"), dir("lib/apk"), dir("lib/apk/db"), file("lib/apk/db/installed", "db"), dir("usr"), dir("usr/lib"), file("usr/lib/y", "y")},
				{symlink("lib", "usr/lib")},
			},
			want: []string{"usr/lib/y=y@0"},
		},
		{
			name: "symlink replaced by a dir through a child",
			layers: [][]ent{
				{symlink("lib", "usr/lib"), dir("usr"), dir("usr/lib"), file("usr/lib/y", "y")},
				{file("lib/foo", "foo")},
			},
			want: []string{"lib/foo=foo@1", "usr/lib/y=y@0"},
		},
		{
			name: "file replaced by a symlink",
			layers: [][]ent{
				{dir("etc"), file("etc/os-release", "real")},
				{symlink("etc/os-release", "../usr/lib/os-release"), file("usr/lib/os-release", "other")},
			},
			want: []string{"usr/lib/os-release=other@1"},
		},
		{
			name: "whiteout in a middle layer, file again on top",
			layers: [][]ent{
				{file("a", "v1")},
				{whiteout("a")},
				{file("a", "v3")},
			},
			want: []string{"a=v3@2"},
		},
		{
			name: "whiteout of an ancestor three layers up",
			layers: [][]ent{
				{dir("x"), dir("x/y"), file("x/y/z", "z")},
				{file("other", "o")},
				{file("x/y/more", "m")},
				{whiteout("x")},
			},
			want: []string{"other=o@1"},
		},
		{
			name: "hard link keeps a whited-out file visible",
			layers: [][]ent{
				{file("a", "content"), hardlink("b", "a")},
				{whiteout("a")},
			},
			want: []string{"b=content@0"},
		},
		{
			name: "hard link to a lower layer",
			layers: [][]ent{
				{file("a", "content")},
				{hardlink("b", "a")},
			},
			want: []string{"a=content@0", "b=content@1"},
		},
		{
			name: "hard link to a lower file that is later replaced",
			layers: [][]ent{
				{file("a", "v1")},
				{hardlink("b", "a")},
				{file("a", "v2")},
			},
			want: []string{"a=v2@2", "b=v1@1"},
		},
		{
			name: "nothing hides a sibling with a common prefix",
			layers: [][]ent{
				{file("ab", "ab"), dir("a"), file("a/x", "x"), file("a.d", "ad")},
				{whiteout("a")},
			},
			want: []string{"a.d=ad@0", "ab=ab@0"},
		},
	}
}

func TestMergeOverlayRules(t *testing.T) {
	for _, tc := range mergeCases() {
		t.Run(tc.name, func(t *testing.T) {
			inv, err := Layers(context.Background(), sourcesOf(stack(t, tc.layers...)), WithAnalyzers(echo{}))
			if err != nil {
				t.Fatal(err)
			}
			if len(inv.Warnings) > 0 {
				t.Errorf("warnings: %v", inv.Warnings)
			}
			if diff := cmp.Diff(tc.want, view(inv)); diff != "" {
				t.Errorf("merged view (-want +got):\n%s", diff)
			}
		})
	}
}

// apkDB is an apk installed database with one stanza per "name=version".
func apkDB(pkgs ...string) string {
	var b strings.Builder
	for _, p := range pkgs {
		n, v, _ := strings.Cut(p, "=")
		fmt.Fprintf(&b, "C:Q1x=\nP:%s\nV:%s\nA:x86_64\no:%s\nL:MIT\n\n", n, v, n)
	}
	return b.String()
}

type attr struct {
	Name, Version       string
	Introduced, Changed int
}

func attrs(ps []pkg.Package) []attr {
	var out []attr
	for _, p := range ps {
		out = append(out, attr{p.Name, p.Version, p.Layer.Introduced.Index, p.Layer.Changed.Index})
	}
	return out
}

func TestAttributionAndRemoved(t *testing.T) {
	db := "lib/apk/db/installed"
	layers := stack(t,
		[]ent{file("etc/alpine-release", "3.20.3\n"), file(db, apkDB("musl=1.2.5-r0", "busybox=1.36-r1", "scanelf=1.3-r2"))},
		[]ent{file(db, apkDB("musl=1.2.5-r0", "busybox=1.36-r1", "scanelf=1.3-r2", "curl=8.0-r0"))}, // adds curl
		[]ent{file(db, apkDB("musl=1.2.5-r0", "busybox=1.36-r2", "curl=8.0-r0"))},                   // upgrades busybox, removes scanelf
		[]ent{file("app/x", "unrelated")},
		[]ent{file(db, apkDB("musl=1.2.5-r0", "busybox=1.36-r2", "curl=8.0-r0", "jq=1.7-r0"))}, // rewrites, adds jq
		[]ent{file(db, apkDB("musl=1.2.5-r0", "busybox=1.36-r2", "curl=8.0-r0"))},              // removes jq
	)
	inv, err := Layers(context.Background(), sourcesOf(layers))
	if err != nil {
		t.Fatal(err)
	}
	if inv.OS == nil || inv.OS.ID != "alpine" || inv.OS.VersionID != "3.20.3" {
		t.Errorf("OS = %+v", inv.OS)
	}
	want := []attr{
		{"busybox", "1.36-r2", 2, 2},
		{"curl", "8.0-r0", 1, 1},
		{"musl", "1.2.5-r0", 0, 0},
	}
	if diff := cmp.Diff(want, attrs(inv.Packages())); diff != "" {
		t.Errorf("attribution (-want +got):\n%s", diff)
	}
	type rm struct {
		Pkg       attr
		RemovedIn int
	}
	var got []rm
	for _, r := range inv.Removed {
		got = append(got, rm{attrs([]pkg.Package{r.Package})[0], r.RemovedIn.Index})
	}
	wantRm := []rm{
		{attr{"jq", "1.7-r0", 4, 4}, 5},
		{attr{"scanelf", "1.3-r2", 0, 0}, 2},
	}
	if diff := cmp.Diff(wantRm, got); diff != "" {
		t.Errorf("removed (-want +got):\n%s", diff)
	}
	p := inv.Targets[0].Packages[2]
	if p.PURL != "pkg:apk/alpine/musl@1.2.5-r0?arch=x86_64&distro=alpine-3.20.3" {
		t.Errorf("purl = %s", p.PURL)
	}
	if inv.Targets[0].Path != "/"+db || inv.Targets[0].Class != ClassOS {
		t.Errorf("target = %+v", inv.Targets[0])
	}
}

// A changed record with the same version (a package reinstalled with other
// fields) is a change, not an introduction.
func TestAttributionChangedRecord(t *testing.T) {
	db := "lib/apk/db/installed"
	v1 := "P:a\nV:1-r0\nA:x86_64\nL:MIT\n\n"
	v1b := "P:a\nV:1-r0\nA:x86_64\nL:MIT\no:a-origin\n\n" // another origin: a changed record
	inv, err := Layers(context.Background(), sourcesOf(stack(t,
		[]ent{file(db, v1)},
		[]ent{file(db, v1b)},
		[]ent{file(db, v1b)},
	)))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]attr{{"a", "1-r0", 0, 1}}, attrs(inv.Packages())); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// sized wants executables of 1000 bytes or more, as the binary analyzers
// do (a size of 0 is unknown: a hard link to a lower layer).
type sized struct{ echo }

func (sized) Wants(_ string, info fs.FileInfo) bool {
	return info.Mode().Perm()&0o111 != 0 && (info.Size() >= 1000 || info.Size() == 0)
}

// A hard link is asked for with its target's size, so an analyzer that
// wants large files sees every name of a large file.
func TestHardLinksOfLargeFiles(t *testing.T) {
	big := strings.Repeat("x", 2000)
	// tar writes a hard link with its file's mode.
	xlink := func(name, target string) ent { e := hardlink(name, target); e.h.Mode = 0o755; return e }
	layers := stack(t,
		[]ent{exe("bin/a", big), xlink("bin/b", "bin/a"), exe("bin/small", "tiny"), xlink("bin/small2", "bin/small")},
		[]ent{xlink("bin/c", "bin/a")},
	)
	inv, err := Layers(context.Background(), sourcesOf(layers), WithAnalyzers(sized{}))
	if err != nil {
		t.Fatal(err)
	}
	v := contentVersion([]byte(big))
	want := []string{"bin/a=" + v + "@0", "bin/b=" + v + "@0", "bin/c=" + v + "@1"}
	if diff := cmp.Diff(want, view(inv)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}
